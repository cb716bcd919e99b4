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

}  // namespace
}  // namespace cmdb::testing
