#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <libpq-fe.h>

#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class CiTypesApi : public ServerTest {};

const char* kRack = R"({"name": "rack", "description": "A rack",
  "attributes": {"row": {"type": "string", "required": true}, "units": {"type": "integer", "min": 1, "max": 60},
                 "site": {"type": "enum", "values": ["dc1", "dc2"]}},
  "identify_by": [["row"]]})";

TEST_F(CiTypesApi, ListsTheDefaultCatalogue) {
  HttpResult r = Get("/api/v1/ci-types");
  ASSERT_EQ(r.status, 200);
  std::set<std::string> names;
  for (const auto& t : r.json().at("items").as_array())
    names.insert(std::string(t.at("name").as_string()));
  for (const char* n :
       {"server", "vm", "network_device", "database", "application", "business_service"}) {
    EXPECT_TRUE(names.contains(n)) << n;
  }
  HttpResult server = Get("/api/v1/ci-types/server");
  ASSERT_EQ(server.status, 200);
  auto attrs = server.json().at("attributes").as_object();
  for (const char* a :
       {"hostname", "fqdn", "domain", "ip", "ip_addresses", "mac_addresses", "os", "os_version",
        "kernel", "cpu_count", "memory_mb", "serial", "machine_id", "open_ports", "services"}) {
    ASSERT_TRUE(attrs.contains(a)) << a;
    EXPECT_FALSE(attrs.at(a).as_object().contains("required")) << a;
  }
}

TEST_F(CiTypesApi, CreatesReadsReplacesAndDeletesAType) {
  HttpResult created = Post("/api/v1/ci-types", kRack);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), "/api/v1/ci-types/rack");
  EXPECT_EQ(created.header("etag"), "\"1\"");
  EXPECT_EQ(Get("/api/v1/ci-types/rack").json().at("attributes").at("units").at("max"), 60);
  EXPECT_EQ(Post("/api/v1/ci-types", kRack).status, 409);

  std::string replacement =
      R"({"attributes": {"row": {"type": "string"}, "height_mm": {"type": "number"}}})";
  EXPECT_EQ(Put("/api/v1/ci-types/rack", replacement, "\"7\"").status, 412);
  HttpResult replaced = Put("/api/v1/ci-types/rack", replacement, "\"1\"");
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(replaced.json().at("version"), 2);
  EXPECT_FALSE(replaced.json().at("attributes").as_object().contains("units"));

  EXPECT_EQ(Delete("/api/v1/ci-types/rack", "\"1\"").status, 412);
  EXPECT_EQ(Delete("/api/v1/ci-types/rack").status, 204);
  EXPECT_EQ(Get("/api/v1/ci-types/rack").status, 404);
  EXPECT_EQ(Delete("/api/v1/ci-types/rack").status, 404);
}

TEST_F(CiTypesApi, InvalidDefinitionsAreRejectedWithEveryField) {
  HttpResult r = Post("/api/v1/ci-types", R"({"name": "x", "attributes": {
      "a": {"type": "float"}, "b": {"type": "string", "pattern": "[", "min": 1}},
      "identify_by": [["c"]]})");
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"attributes.a.type", "attributes.b.pattern",
                                           "attributes.b.min", "identify_by[0]"}));
  EXPECT_EQ(Get("/api/v1/ci-types/x").status, 404);
}

TEST_F(CiTypesApi, ATypeInUseCannotBeDeletedOrNarrowedUnderItsCis) {
  ASSERT_EQ(Post("/api/v1/ci-types", kRack).status, 201);
  std::int64_t id =
      CreateCi(R"({"type": "rack", "name": "R1", "attributes": {"row": "A", "units": 42}})");
  HttpResult del = Delete("/api/v1/ci-types/rack");
  EXPECT_EQ(del.status, 409);
  EXPECT_NE(del.json().at("detail").as_string().find("1 CIs"), std::string::npos);
  // Dropping `units` would orphan R1's value.
  HttpResult narrowed =
      Put("/api/v1/ci-types/rack", R"({"attributes": {"row": {"type": "string"}}})");
  EXPECT_EQ(narrowed.status, 409);
  EXPECT_EQ(narrowed.json().at("errors").at(0).at("field"),
            boost::json::value("cis[" + std::to_string(id) + "].attributes.units"));
  EXPECT_EQ(Get("/api/v1/ci-types/rack").json().at("version"), 1);
  // After the CI is deleted, its history still names the type, which therefore stays.
  EXPECT_EQ(Delete("/api/v1/cis/" + std::to_string(id)).status, 204);
  EXPECT_EQ(Delete("/api/v1/ci-types/rack").status, 409);
}

TEST_F(CiTypesApi, RelationTypesListBuiltInsAndAcceptNewOnes) {
  HttpResult list = Get("/api/v1/relation-types");
  ASSERT_EQ(list.status, 200);
  EXPECT_GE(list.json().at("items").as_array().size(), 6U);
  HttpResult created =
      Post("/api/v1/relation-types",
           R"({"name": "replicates_to", "propagation": "none", "description": "async copy"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json().at("builtin"), false);
  EXPECT_EQ(
      Post("/api/v1/relation-types", R"({"name": "replicates_to", "propagation": "none"})").status,
      409);
  HttpResult bad = Post("/api/v1/relation-types", R"({"name": "X Y", "propagation": "sideways"})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().at("errors").as_array().size(), 2U);
}

// A connection of its own, for what the database guarantees to any writer, not only cmdb.
class RawConnection {
 public:
  explicit RawConnection(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str()), &PQfinish) {}
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }

  struct Outcome {
    std::string sqlstate;  // empty: succeeded
    std::string message;
  };
  Outcome Run(const std::string& sql) {
    Send(sql);
    return Wait();
  }
  void Send(const std::string& sql) { ASSERT_EQ(PQsendQuery(conn_.get(), sql.c_str()), 1); }
  // True while a sent statement is still waiting (on a lock) after `ms` milliseconds.
  bool StillWaitingAfter(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    PQconsumeInput(conn_.get());
    return PQisBusy(conn_.get()) == 1;
  }
  Outcome Wait() {
    Outcome outcome;
    while (PGresult* r = PQgetResult(conn_.get())) {
      if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char* message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        outcome.sqlstate = state != nullptr ? state : "?";
        outcome.message = message != nullptr ? message : "";
      }
      PQclear(r);
    }
    return outcome;
  }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

// Migration 0013 replaced the per-row foreign key on a CI's type with a check per statement;
// the guarantee must stay the foreign key's, for writers that bypass cmdb too.
TEST_F(CiTypesApi, TheDatabaseKeepsEveryCiOnAnExistingTypeForAnyWriter) {
  ASSERT_EQ(Post("/api/v1/ci-types", kRack).status, 201);
  RawConnection a(dsn_);
  RawConnection b(dsn_);
  ASSERT_TRUE(a.ok() && b.ok());

  // Unknown types are refused whole: a bulk insert with one bad row writes nothing.
  RawConnection::Outcome bad = a.Run(
      "INSERT INTO configuration_items (type, name) VALUES ('rack', 'R1'), ('server', 's1'), "
      "('no_such_type', 'x'), ('also <missing>', 'y')");
  EXPECT_EQ(bad.sqlstate, "23503");
  EXPECT_NE(bad.message.find("'no_such_type'"), std::string::npos) << bad.message;
  EXPECT_NE(bad.message.find("'also <missing>'"), std::string::npos) << bad.message;
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 0);
  // Changing a CI's type is checked too; other updates do not look at the type.
  ASSERT_EQ(a.Run("INSERT INTO configuration_items (type, name) VALUES ('rack', 'R1')").sqlstate,
            "");
  EXPECT_EQ(a.Run("UPDATE configuration_items SET type = 'nope' WHERE name = 'R1'").sqlstate,
            "23503");
  EXPECT_EQ(a.Run("UPDATE configuration_items SET type = 'server' WHERE name = 'R1'").sqlstate, "");
  EXPECT_EQ(a.Run("UPDATE configuration_items SET type = 'rack' WHERE name = 'R1'").sqlstate, "");

  // A type in use cannot be deleted or renamed, whoever tries.
  RawConnection::Outcome in_use = b.Run("DELETE FROM ci_types WHERE name = 'rack'");
  EXPECT_EQ(in_use.sqlstate, "23503");
  EXPECT_NE(in_use.message.find("'rack'"), std::string::npos) << in_use.message;
  EXPECT_EQ(b.Run("UPDATE ci_types SET name = 'rack2' WHERE name = 'rack'").sqlstate, "23503");
  // Under REPEATABLE READ the deleting snapshot could miss a concurrent insert: refused.
  ASSERT_EQ(b.Run("DELETE FROM configuration_items").sqlstate, "");
  EXPECT_EQ(b.Run("BEGIN ISOLATION LEVEL REPEATABLE READ; DELETE FROM ci_types WHERE name = "
                  "'rack'")
                .sqlstate,
            "55000");
  ASSERT_EQ(b.Run("ROLLBACK").sqlstate, "");

  // Insert first: the delete waits for the inserting transaction, then sees its CI.
  ASSERT_EQ(
      a.Run("BEGIN; INSERT INTO configuration_items (type, name) VALUES ('rack', 'R2')").sqlstate,
      "");
  b.Send("DELETE FROM ci_types WHERE name = 'rack'");
  EXPECT_TRUE(b.StillWaitingAfter(300));
  ASSERT_EQ(a.Run("COMMIT").sqlstate, "");
  EXPECT_EQ(b.Wait().sqlstate, "23503");
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_types WHERE name = 'rack'").Int(0, 0), 1);

  // Delete first: the insert waits for the deleting transaction, then finds no type.
  ASSERT_EQ(b.Run("DELETE FROM configuration_items").sqlstate, "");
  ASSERT_EQ(b.Run("BEGIN; DELETE FROM ci_types WHERE name = 'rack'").sqlstate, "");
  a.Send("INSERT INTO configuration_items (type, name) VALUES ('rack', 'R3')");
  EXPECT_TRUE(a.StillWaitingAfter(300));
  ASSERT_EQ(b.Run("COMMIT").sqlstate, "");
  RawConnection::Outcome late = a.Wait();
  EXPECT_EQ(late.sqlstate, "23503");
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 0);
}

}  // namespace
}  // namespace cmdb::testing
