#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "model/error.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class RelationsApi : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    app_id_ = CreateCi(R"({"type": "application", "name": "shop"})");
    db_id_ = CreateCi(R"({"type": "database", "name": "shop-db"})");
    host_id_ = CreateCi(R"({"type": "server", "name": "db-srv"})");
  }
  std::string Rel(const std::string& type, std::int64_t from, std::int64_t to) {
    return R"({"type": ")" + type + R"(", "from": )" + std::to_string(from) + R"(, "to": )" +
           std::to_string(to) + "}";
  }
  // The error `query` fails with on `conn` (kInternal and a failure when it succeeds).
  static model::Error FailureOf(SqlConnection& conn, const std::string& query) {
    try {
      conn.Query(query);
    } catch (const model::Error& e) {
      return e;
    }
    ADD_FAILURE() << "succeeded: " << query;
    return model::Error(model::ErrorCode::kInternal, "succeeded");
  }
  // Waits until a session of the test database waits for a lock.
  void AwaitLockWait() {
    for (int i = 0; i < 500; ++i) {
      if (Sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
              "wait_event_type = 'Lock'")
              .Int(0, 0) > 0) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no session waited for a lock";
  }
  std::string Insert(const std::string& type, std::int64_t from, std::int64_t to) {
    return "INSERT INTO relations (type, from_ci, to_ci) VALUES ('" + type + "', " +
           std::to_string(from) + ", " + std::to_string(to) + ")";
  }
  std::int64_t app_id_ = 0;
  std::int64_t db_id_ = 0;
  std::int64_t host_id_ = 0;
};

// The foreign keys of a relation became checks once per statement
// (0015_relation_checks_per_statement.sql); they refuse what the foreign keys refused, for any
// writer.
TEST_F(RelationsApi, TypesAndEndsAreCheckedAsStrictlyAsForeignKeys) {
  SqlConnection conn(dsn_);
  EXPECT_EQ(FailureOf(conn, Insert("depends_on", app_id_, 987654)).code(),
            model::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(FailureOf(conn, Insert("loves", app_id_, db_id_)).code(),
            model::ErrorCode::kFailedPrecondition);
  // One bad row refuses the whole statement.
  EXPECT_EQ(FailureOf(conn, "INSERT INTO relations (type, from_ci, to_ci) VALUES ('depends_on', " +
                                std::to_string(app_id_) + ", " + std::to_string(db_id_) +
                                "), ('runs_on', " + std::to_string(db_id_) + ", 987655)")
                .code(),
            model::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(Sql("SELECT count(*) FROM relations").Int(0, 0), 0);
  conn.Query(Insert("runs_on", db_id_, host_id_));
  const std::string rel = "(SELECT id FROM relations LIMIT 1)";
  EXPECT_EQ(FailureOf(conn, "UPDATE relations SET to_ci = 987656 WHERE id = " + rel).code(),
            model::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(FailureOf(conn, "UPDATE relations SET type = 'loves' WHERE id = " + rel).code(),
            model::ErrorCode::kFailedPrecondition);
  // What is referenced cannot go.
  EXPECT_EQ(
      FailureOf(conn, "DELETE FROM configuration_items WHERE id = " + std::to_string(host_id_))
          .code(),
      model::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(FailureOf(conn, "DELETE FROM relation_types WHERE name = 'runs_on'").code(),
            model::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(
      FailureOf(conn, "UPDATE relation_types SET name = 'runs_upon' WHERE name = 'runs_on'").code(),
      model::ErrorCode::kFailedPrecondition);
  conn.Query("BEGIN");
  EXPECT_EQ(FailureOf(conn, "TRUNCATE configuration_items").code(),
            model::ErrorCode::kFailedPrecondition);
  conn.Query("ROLLBACK");
  conn.Query("BEGIN");
  conn.Query("TRUNCATE relations, configuration_items");  // both at once is fine
  conn.Query("ROLLBACK");
  // An unused CI or relation type still goes.
  conn.Query("DELETE FROM configuration_items WHERE id = " + std::to_string(app_id_));
  conn.Query("INSERT INTO relation_types (name, propagation) VALUES ('unused', 'none')");
  conn.Query("DELETE FROM relation_types WHERE name = 'unused'");
  EXPECT_EQ(Get("/api/v1/relations").json().at("items").as_array().size(), 1U);
}

TEST_F(RelationsApi, AConcurrentDeleteOfAnEndIsRefusedInEitherOrder) {
  // The relation first: the delete waits for it, then sees it and is refused.
  {
    SqlConnection writer(dsn_);
    SqlConnection deleter(dsn_);
    writer.Query("BEGIN");
    writer.Query(Insert("depends_on", app_id_, db_id_));
    std::future<model::Error> deleted = std::async(std::launch::async, [&] {
      return FailureOf(deleter,
                       "DELETE FROM configuration_items WHERE id = " + std::to_string(db_id_));
    });
    AwaitLockWait();
    writer.Query("COMMIT");
    EXPECT_EQ(deleted.get().code(), model::ErrorCode::kFailedPrecondition);
  }
  // The delete first: the relation waits for it, then finds no CI and is refused, through
  // the import as through SQL.
  for (const bool through_import : {false, true}) {
    const std::int64_t doomed = CreateCi(R"({"type": "server", "name": "doomed-)" +
                                         std::to_string(through_import) + R"("})");
    SqlConnection deleter(dsn_);
    SqlConnection writer(dsn_);
    deleter.Query("BEGIN");
    deleter.Query("DELETE FROM configuration_items WHERE id = " + std::to_string(doomed));
    std::future<int> written = std::async(std::launch::async, [&] {
      if (through_import) {
        return Post("/api/v1/import", R"({"relations": [{"type": "runs_on", "from": )" +
                                          std::to_string(db_id_) + R"(, "to": )" +
                                          std::to_string(doomed) + "}]}")
            .status;
      }
      return FailureOf(writer, Insert("runs_on", db_id_, doomed)).code() ==
                     model::ErrorCode::kFailedPrecondition
                 ? 422
                 : 0;
    });
    AwaitLockWait();
    deleter.Query("COMMIT");
    EXPECT_EQ(written.get(), 422) << (through_import ? "import" : "SQL");
    EXPECT_EQ(Sql("SELECT count(*) FROM relations WHERE to_ci = $1", {P(doomed)}).Int(0, 0), 0);
  }
}

// A bulk relation import writes a batch at once when its keys look new, and checks row by row
// when that attempt meets a recorded relation or a missing CI: the outcome is the same.
TEST_F(RelationsApi, BulkImportsFallBackToRowChecksWithTheSameOutcome) {
  std::string cis = R"({"cis": [)";
  for (int i = 0; i < 101; ++i) {
    cis += std::string(i > 0 ? "," : "") + R"({"type": "server", "name": "bulk-)" +
           std::to_string(i) + R"("})";
  }
  HttpResult created = Post("/api/v1/import", cis + "]}");
  ASSERT_EQ(created.status, 200) << created.body;
  std::vector<std::int64_t> ids;
  for (const auto& id : created.json().at("ci_ids").as_array()) ids.push_back(id.as_int64());
  // A chain of 100 relations; `bad` replaces the end of relation `at` by a missing CI.
  auto chain = [&](int at, std::int64_t bad) {
    std::string body = R"({"relations": [)";
    for (int i = 0; i < 100; ++i) {
      body += std::string(i > 0 ? "," : "") + R"({"type": "depends_on", "from": )" +
              std::to_string(ids[i]) + R"(, "to": )" + std::to_string(i == at ? bad : ids[i + 1]) +
              "}";
    }
    return body + "]}";
  };
  auto relations = [&](const HttpResult& r) { return r.json().at("relations"); };
  // The third key in index order is outside the sample of the attempt: it fails on it.
  ASSERT_EQ(Post("/api/v1/relations", Rel("depends_on", ids[2], ids[3])).status, 201);
  HttpResult again = Post("/api/v1/import", chain(-1, 0));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(relations(again).at("created"), 99);
  EXPECT_EQ(relations(again).at("unchanged"), 1);
  auto attempted = [](const HttpResult& r) {
    return r.json().at("timings").as_object().contains("relations.attempt");
  };
  EXPECT_TRUE(attempted(again));
  // Everything recorded: the sample says so, no attempt.
  HttpResult unchanged = Post("/api/v1/import", chain(-1, 0));
  EXPECT_EQ(relations(unchanged).at("unchanged"), 100);
  EXPECT_FALSE(attempted(unchanged));
  // A missing CI, by id: refused in an atomic import, reported and left out in a partial one.
  Sql("DELETE FROM relation_versions");
  Sql("DELETE FROM relations");
  HttpResult atomic = Post("/api/v1/import", chain(50, 987654));
  ASSERT_EQ(atomic.status, 422) << atomic.body;
  EXPECT_EQ(atomic.json().at("errors").at(0).at("field"), "relations[50].to");
  EXPECT_EQ(Sql("SELECT count(*) FROM relations").Int(0, 0), 0);
  HttpResult partial = Post("/api/v1/import?mode=partial", chain(50, 987654));
  ASSERT_EQ(partial.status, 200) << partial.body;
  EXPECT_EQ(relations(partial).at("created"), 99);
  EXPECT_EQ(relations(partial).at("rejected"), 1);
  EXPECT_TRUE(attempted(partial));
  EXPECT_EQ(Sql("SELECT count(*) FROM relations").Int(0, 0), 99);
  EXPECT_EQ(Sql("SELECT count(*) FROM relation_history").Int(0, 0), 99);
}

// Ends named by type and name, of types the import writes no CI of, are found by one query
// for the batch: one match, none and several are told apart as with the identity index.
TEST_F(RelationsApi, EndsNamedByTypeAndNameResolveInOneLookUp) {
  CreateCi(R"({"type": "server", "name": "db-srv"})");  // a second one: ambiguous
  const std::int64_t odd = CreateCi(R"({"type": "server", "name": "db \"prod\" <α> ✓"})");
  HttpResult r = Post("/api/v1/import?mode=partial", R"({"relations": [
    {"type": "depends_on", "from": {"type": "application", "name": "shop"},
     "to": {"type": "database", "name": "shop-db"}},
    {"type": "runs_on", "from": {"type": "database", "name": "shop-db"},
     "to": {"type": "server", "name": "db-srv"}},
    {"type": "runs_on", "from": {"type": "application", "name": "nope"},
     "to": {"type": "server", "name": "db \"prod\" <α> ✓"}},
    {"type": "runs_on", "from": {"type": "database", "name": "shop-db"},
     "to": {"type": "server", "name": "db \"prod\" <α> ✓"}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("relations").at("created"), 2);
  EXPECT_EQ(r.json().at("relations").at("rejected"), 2);
  const auto& errors = r.json().at("errors").as_array();
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_EQ(errors[0].at("field"), "relations[1].to");
  EXPECT_NE(std::string(errors[0].at("message").as_string()).find("matches 2 CIs"),
            std::string::npos);
  EXPECT_EQ(errors[1].at("field"), "relations[2].from");
  EXPECT_EQ(errors[1].at("message"), "matches no CI");
  EXPECT_EQ(Sql("SELECT count(*) FROM relations WHERE from_ci = $1 AND to_ci = $2",
                {P(app_id_), P(db_id_)})
                .Int(0, 0),
            1);
  EXPECT_EQ(
      Sql("SELECT count(*) FROM relations WHERE from_ci = $1 AND to_ci = $2", {P(db_id_), P(odd)})
          .Int(0, 0),
      1);
}

// Relations an import creates have their creation in history like those the API creates,
// though PostgreSQL writes their first versions from the rows.
TEST_F(RelationsApi, ImportedRelationsHaveTheirCreationInHistory) {
  ASSERT_EQ(Post("/api/v1/relations",
                 R"({"type": "depends_on", "from": )" + std::to_string(app_id_) + R"(, "to": )" +
                     std::to_string(db_id_) + R"(, "attributes": {"port": 5432}})")
                .status,
            201);
  HttpResult imported =
      Post("/api/v1/import", R"({"relations": [{"type": "runs_on", "from": )" +
                                 std::to_string(db_id_) + R"(, "to": )" + std::to_string(host_id_) +
                                 R"(, "attributes": {"port": 5432}}]})");
  ASSERT_EQ(imported.status, 200) << imported.body;
  const HttpResult all = Get("/api/v1/relations");
  for (const auto& rel : all.json().at("items").as_array()) {
    const std::string id = std::to_string(rel.at("id").as_int64());
    auto history = Get("/api/v1/relations/" + id + "/history").json().at("items").as_array();
    ASSERT_EQ(history.size(), 1U);
    EXPECT_EQ(history[0].at("operation"), "create");
    const boost::json::object& diff = history[0].at("diff").as_object();
    EXPECT_EQ(diff.at("type"), (boost::json::object{{"old", nullptr}, {"new", rel.at("type")}}));
    EXPECT_EQ(diff.at("from"), (boost::json::object{{"old", nullptr}, {"new", rel.at("from")}}));
    EXPECT_EQ(diff.at("to"), (boost::json::object{{"old", nullptr}, {"new", rel.at("to")}}));
    EXPECT_EQ(diff.at("port"), (boost::json::object{{"old", nullptr}, {"new", 5432}}));
    EXPECT_EQ(diff.size(), 4U);
  }
}

TEST_F(RelationsApi, CreatesListsAndDeletesRelations) {
  HttpResult created = Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_));
  ASSERT_EQ(created.status, 201) << created.body;
  std::int64_t rel = created.json().at("id").as_int64();
  EXPECT_EQ(created.header("location"), "/api/v1/relations/" + std::to_string(rel));
  ASSERT_EQ(Post("/api/v1/relations", Rel("runs_on", db_id_, host_id_)).status, 201);

  auto of_db = Get("/api/v1/relations?ci=" + std::to_string(db_id_)).json().at("items").as_array();
  EXPECT_EQ(of_db.size(), 2U);
  auto typed = Get("/api/v1/relations?ci=" + std::to_string(db_id_) + "&type=runs_on")
                   .json()
                   .at("items")
                   .as_array();
  ASSERT_EQ(typed.size(), 1U);
  EXPECT_EQ(typed[0].at("to"), host_id_);

  EXPECT_EQ(Delete("/api/v1/relations/" + std::to_string(rel), "\"9\"").status, 412);
  EXPECT_EQ(Delete("/api/v1/relations/" + std::to_string(rel)).status, 204);
  EXPECT_EQ(Get("/api/v1/relations/" + std::to_string(rel)).status, 404);
  auto history =
      Get("/api/v1/relations/" + std::to_string(rel) + "/history").json().at("items").as_array();
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[0].at("operation"), "delete");
}

// A relation's history pages like a CI's: a truncated page says where the next one starts.
TEST_F(RelationsApi, HistoryPagesWithACursor) {
  HttpResult created = Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::int64_t rel = created.json().at("id").as_int64();
  ASSERT_EQ(Delete("/api/v1/relations/" + std::to_string(rel)).status, 204);
  const std::string history = "/api/v1/relations/" + std::to_string(rel) + "/history";
  HttpResult first = Get(history + "?limit=1");
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(first.json().at("items").at(0).at("version"), 2);
  ASSERT_TRUE(first.json().at("next_cursor").is_string()) << first.body;
  HttpResult second =
      Get(history + "?limit=1&cursor=" + std::string(first.json().at("next_cursor").as_string()));
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(second.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(second.json().at("items").at(0).at("version"), 1);
  EXPECT_EQ(second.json().at("items").at(0).at("operation"), "create");
  EXPECT_TRUE(second.json().at("next_cursor").is_null());
}

TEST_F(RelationsApi, BadRelationsNameTheFieldAndWriteNothing) {
  HttpResult unknown_type = Post("/api/v1/relations", Rel("loves", app_id_, db_id_));
  EXPECT_EQ(unknown_type.status, 422);
  EXPECT_EQ(unknown_type.json().at("errors").at(0).at("field"), "type");
  HttpResult missing = Post("/api/v1/relations", Rel("depends_on", app_id_, 999999));
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(missing.json().at("errors").at(0).at("field"), "to");
  EXPECT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, app_id_)).status, 422);
  EXPECT_EQ(
      Post("/api/v1/relations", R"({"type": "depends_on", "from": "x", "to": 1, "weight": 3})")
          .status,
      422);
  ASSERT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).status, 201);
  EXPECT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).status, 409);
  EXPECT_EQ(Get("/api/v1/relations").json().at("items").as_array().size(), 1U);
}

TEST_F(RelationsApi, DeletingACiRemovesItsRelationsWithHistory) {
  std::int64_t r1 =
      Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).json().at("id").as_int64();
  std::int64_t r2 =
      Post("/api/v1/relations", Rel("runs_on", db_id_, host_id_)).json().at("id").as_int64();
  ASSERT_EQ(Delete("/api/v1/cis/" + std::to_string(db_id_)).status, 204);
  EXPECT_EQ(Get("/api/v1/relations").json().at("items").as_array().size(), 0U);
  for (std::int64_t r : {r1, r2}) {
    auto history =
        Get("/api/v1/relations/" + std::to_string(r) + "/history").json().at("items").as_array();
    ASSERT_EQ(history.size(), 2U);
    EXPECT_EQ(history[0].at("operation"), "delete");
    EXPECT_NE(history[0].at("diff").at("reason").as_string().find(std::to_string(db_id_)),
              std::string::npos);
  }
}

// A live relation's version is its own row (0023_relation_current_versions.sql): its history
// says who created it and from where, a relation inserted by SQL has one too, and a delete
// stores the ended version and the tombstone.
TEST_F(RelationsApi, ALiveRelationsVersionIsItsRowAndADeleteStoresBoth) {
  HttpResult created = Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = std::to_string(created.json().at("id").as_int64());
  Sql(Insert("runs_on", db_id_, host_id_));
  const std::string by_sql =
      std::to_string(Sql("SELECT id FROM relations WHERE type = 'runs_on'").Int(0, 0));
  EXPECT_EQ(Sql("SELECT count(*) FROM relation_versions").Int(0, 0), 0);

  auto history = [this](const std::string& relation) {
    HttpResult h = Get("/api/v1/relations/" + relation + "/history");
    EXPECT_EQ(h.status, 200) << h.body;
    return h.json().at("items").as_array();
  };
  boost::json::array api = history(id);
  ASSERT_EQ(api.size(), 1U);
  EXPECT_EQ(api[0].at("operation"), "create");
  EXPECT_EQ(api[0].at("source"), "api");
  EXPECT_FALSE(api[0].at("changed_by").as_string().empty());
  boost::json::array sql = history(by_sql);
  ASSERT_EQ(sql.size(), 1U);
  EXPECT_EQ(sql[0].at("source"), "sql");
  EXPECT_EQ(sql[0].at("diff").at("type"),
            (boost::json::object{{"old", nullptr}, {"new", "runs_on"}}));

  ASSERT_EQ(Delete("/api/v1/relations/" + id).status, 204);
  boost::json::array gone = history(id);
  ASSERT_EQ(gone.size(), 2U);
  EXPECT_EQ(gone[0].at("operation"), "delete");
  EXPECT_EQ(gone[1].at("operation"), "create");
  EXPECT_EQ(gone[1].at("changed_by"), api[0].at("changed_by"));
  EXPECT_EQ(gone[1].at("changed_at"), api[0].at("changed_at"));
  EXPECT_EQ(Sql("SELECT count(*) FROM relation_versions WHERE relation_id = $1", {P(id)}).Int(0, 0),
            2);
  EXPECT_EQ(Sql("SELECT count(*) FROM relation_versions WHERE valid_to IS NULL").Int(0, 0), 0);
}

}  // namespace
}  // namespace cmdb::testing
