#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class ImportApi : public ServerTest {};

const char* kDoc = R"({
  "cis": [
    {"type": "server", "name": "db-01", "attributes": {"serial": "S1", "hostname": "db-01", "memory_mb": 1024}},
    {"type": "server", "name": "db-02", "attributes": {"serial": "S2", "hostname": "db-02"}},
    {"type": "application", "name": "shop", "attributes": {"app_code": "SHOP"}}
  ],
  "relations": [
    {"type": "runs_on", "from": {"type": "application", "name": "shop"}, "to": {"type": "server", "identity": {"serial": "S1"}}},
    {"type": "runs_on", "from": {"type": "application", "identity": {"app_code": "SHOP"}}, "to": {"type": "server", "name": "db-02"}}
  ]})";

TEST_F(ImportApi, CreatesThenUpdatesByIdentityThenLeavesUnchanged) {
  HttpResult first = Post("/api/v1/import", kDoc);
  ASSERT_EQ(first.status, 200) << first.body;
  auto r = first.json();
  EXPECT_EQ(r.at("created"), 3);
  EXPECT_EQ(r.at("updated"), 0);
  EXPECT_EQ(r.at("relations").at("created"), 2);
  std::int64_t db01 = r.at("ci_ids").at(0).as_int64();

  HttpResult again = Post("/api/v1/import", kDoc);
  EXPECT_EQ(again.json().at("unchanged"), 3);
  EXPECT_EQ(again.json().at("relations").at("unchanged"), 2);

  // Same serial, new name and memory: matched by identify_by ["serial"], updated in place.
  HttpResult changed = Post("/api/v1/import", R"({"cis": [
      {"type": "server", "name": "db-01-renamed", "attributes": {"serial": "S1", "memory_mb": 2048}}]})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(changed.json().at("updated"), 1);
  EXPECT_EQ(changed.json().at("ci_ids").at(0), db01);
  auto ci = Get("/api/v1/cis/" + std::to_string(db01)).json();
  EXPECT_EQ(ci.at("name"), "db-01-renamed");
  EXPECT_EQ(ci.at("attributes").at("memory_mb"), 2048);
  EXPECT_EQ(ci.at("attributes").at("hostname"), "db-01");  // attributes not named are kept
  auto history =
      Get("/api/v1/cis/" + std::to_string(db01) + "/history").json().at("items").as_array();
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[0].at("source"), "import");
  EXPECT_EQ(history[0].at("diff").at("memory_mb"),
            boost::json::parse(R"({"old": 1024, "new": 2048})"));
  EXPECT_EQ(
      Get("/api/v1/relations?ci=" + std::to_string(db01)).json().at("items").as_array().size(), 1U);
}

TEST_F(ImportApi, AtomicImportRejectsEverythingAndListsEveryBadRow) {
  HttpResult r = Post("/api/v1/import", R"({"cis": [
      {"type": "server", "name": "ok-1"},
      {"type": "server", "name": "bad-1", "attributes": {"memory_mb": "x"}},
      {"type": "nope", "name": "bad-2"},
      {"type": "server", "name": "ok-2"}],
    "relations": [{"type": "depends_on", "from": 9999, "to": {"type": "server", "name": "ok-1"}}]})");
  ASSERT_EQ(r.status, 422) << r.body;
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_TRUE(fields.contains("cis[1].attributes.memory_mb"));
  EXPECT_TRUE(fields.contains("cis[2].type"));
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 0U);
}

TEST_F(ImportApi, PartialImportCommitsTheGoodRows) {
  HttpResult r = Post("/api/v1/import?mode=partial", R"({"cis": [
      {"type": "server", "name": "ok-1", "attributes": {"serial": "A"}},
      {"type": "server", "name": "bad-1", "attributes": {"memory_mb": "x"}},
      {"type": "server", "name": "dup", "attributes": {"serial": "A"}}],
    "relations": [{"type": "depends_on", "from": 9999, "to": {"type": "server", "name": "ok-1"}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(body.at("created"), 1);
  EXPECT_EQ(body.at("rejected"), 2);
  EXPECT_EQ(body.at("relations").at("rejected"), 1);
  EXPECT_EQ(body.at("ci_ids").at(1), nullptr);
  std::set<std::string> rows;
  for (const auto& e : body.at("errors").as_array())
    rows.insert(std::string(e.at("row").as_string()));
  EXPECT_EQ(rows, (std::set<std::string>{"cis[1]", "cis[2]", "relations[0]"}));
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 1U);
}

TEST_F(ImportApi, AmbiguousMatchesAreNeverMerged) {
  CreateCi(R"({"type": "server", "name": "a", "attributes": {"hostname": "twin"}})");
  CreateCi(R"({"type": "server", "name": "b", "attributes": {"hostname": "twin"}})");
  HttpResult r = Post(
      "/api/v1/import?mode=partial",
      R"({"cis": [{"type": "server", "name": "c", "attributes": {"hostname": "twin", "os": "x"}}]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("rejected"), 1);
  EXPECT_NE(r.json().at("errors").at(0).at("message").as_string().find("matches 2 CIs"),
            std::string::npos);
}

TEST_F(ImportApi, ImportsCsvOfOneType) {
  std::string csv =
      "name,status,owner,tags,hostname,memory_mb,open_ports,ip\r\n"
      "web-01,active,web,prod;web,web-01,4096,80;443,10.0.0.1\r\n"
      "\"web, the second\",planned,,,web-02,,,\r\n";
  HttpResult r = Post("/api/v1/import?type=server", csv, "text/csv");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("created"), 2);
  auto list = Get("/api/v1/cis?q=web").json().at("items").as_array();
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list[0].at("attributes").at("open_ports"), boost::json::parse("[80, 443]"));
  EXPECT_EQ(list[0].at("tags"), boost::json::parse(R"(["prod", "web"])"));
  EXPECT_EQ(list[1].at("name"), "web, the second");
  EXPECT_EQ(list[1].at("status"), "planned");

  HttpResult bad = Post("/api/v1/import?type=server", "name,colour\nx,red\n", "text/csv");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().at("errors").at(0).at("field"), "header.colour");
  HttpResult bad_row =
      Post("/api/v1/import?type=server", "name,memory_mb\nx,lots\ny,1,2\n", "text/csv");
  EXPECT_EQ(bad_row.status, 422);
  EXPECT_EQ(bad_row.json().at("errors").as_array().size(), 2U);
  EXPECT_EQ(Post("/api/v1/import", csv, "text/csv").status, 400);  // no ?type=
  EXPECT_EQ(Post("/api/v1/import?type=toaster", csv, "text/csv").status, 422);
  EXPECT_EQ(Post("/api/v1/import?type=server", "name\n\"open", "text/csv").status, 400);
}

}  // namespace
}  // namespace cmdb::testing
