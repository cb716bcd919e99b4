// The estate's reports over real HTTP and PostgreSQL: the inventory now and as of an instant
// (the CSV streamed), the compare of two instants with attribute-level diffs, drift, the audit
// trend and the change calendar with its collisions, as JSON, CSV, HTML and iCalendar.

#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include "model/timestamp.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

std::string Now() { return model::FormatTimestamp(model::Timestamp::Now()); }

std::string In(int hours) {
  return model::FormatTimestamp(
      model::Timestamp{model::Timestamp::Now().micros + std::int64_t{hours} * 3600 * 1000000});
}

// A pause so that two instants compare strictly.
void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

std::int64_t Count(const json::value& groups, const std::string& key) {
  for (const json::value& g : groups.as_array()) {
    if (g.at("key") == key.c_str()) return g.at("count").as_int64();
  }
  return 0;
}

class ReportsApi : public ServerTest {};

TEST_F(ReportsApi, InventoryNowAndAsOfAnInstant) {
  const std::int64_t a = CreateCi(
      R"({"type": "server", "name": "fin-01", "owner": "finance", "tags": ["prod", "pci"]})");
  CreateCi(R"({"type": "server", "name": "fin-02", "owner": "finance", "tags": ["prod"]})");
  CreateCi(R"({"type": "database", "name": "ledger", "owner": "dba"})");
  Tick();
  const std::string before = Now();
  Tick();
  ASSERT_EQ(
      Patch("/api/v1/cis/" + std::to_string(a), R"({"status": "retired", "owner": "archive"})")
          .status,
      200);
  CreateCi(R"({"type": "server", "name": "fin-03"})");

  json::value now = Get("/api/v1/reports/inventory").json();
  EXPECT_EQ(now.at("total"), 4);
  EXPECT_EQ(Count(now.at("groups"), "server"), 3);
  json::value then = Get("/api/v1/reports/inventory?group_by=owner&as_of=" + before).json();
  EXPECT_EQ(then.at("total"), 3);
  EXPECT_EQ(Count(then.at("groups"), "finance"), 2);
  EXPECT_EQ(Count(Get("/api/v1/reports/inventory?group_by=owner").json().at("groups"), "finance"),
            1);
  json::value tags = Get("/api/v1/reports/inventory?group_by=tag&type=server").json();
  EXPECT_EQ(Count(tags.at("groups"), "prod"), 2);
  EXPECT_EQ(Count(tags.at("groups"), "pci"), 1);
  EXPECT_EQ(Count(tags.at("groups"), ""), 1);  // fin-03 has no tag
  json::value status = Get("/api/v1/reports/inventory?group_by=status").json();
  EXPECT_EQ(Count(status.at("groups"), "retired"), 1);

  EXPECT_EQ(Get("/api/v1/reports/inventory?group_by=colour").status, 400);
  EXPECT_EQ(Get("/api/v1/reports/inventory?as_of=" + In(24)).status, 400);
  EXPECT_EQ(Get("/api/v1/reports/inventory?format=ics").status, 400);
}

TEST_F(ReportsApi, InventoryCsvIsStreamedWithEveryCiAndNoFormulas) {
  // More CIs than one batch of the cursor, and names a spreadsheet would run.
  std::string doc = R"({"cis": [)";
  for (int i = 0; i < 12000; ++i) {
    doc +=
        std::string(i ? "," : "") + R"({"type": "vm", "name": "vm-)" + std::to_string(i) + R"("})";
  }
  doc += "]}";
  ASSERT_EQ(Post("/api/v1/import", doc).status, 200);
  CreateCi(R"j({"type": "server", "name": "=HYPERLINK(\"http://evil\",\"x\")", "owner": "@ops"})j");
  CreateCi(R"({"type": "server", "name": "财务系统, 主机"})");
  HttpResult csv = Get("/api/v1/reports/inventory?format=csv&bom=true");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.header("transfer-encoding"), "chunked");
  EXPECT_EQ(csv.header("content-type"), "text/csv; charset=utf-8; header=present");
  EXPECT_EQ(
      csv.body.rfind("\xEF\xBB\xBFid,type,name,status,owner,tags,attributes,version,since\r\n", 0),
      0U);
  std::size_t lines = 0;
  for (std::size_t p = csv.body.find("\r\n"); p != std::string::npos;
       p = csv.body.find("\r\n", p + 2))
    ++lines;
  EXPECT_EQ(lines, 1U + 12002U);
  EXPECT_NE(csv.body.find(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",active,'@ops,"),
            std::string::npos);
  EXPECT_NE(csv.body.find(",\"财务系统, 主机\",active,,"), std::string::npos);
  EXPECT_NE(csv.body.find(",vm-11999,"), std::string::npos);
  // The cursor gave its connection back: the server still answers many requests.
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(Get("/api/v1/reports/inventory?format=csv&type=server").status, 200);
}

TEST_F(ReportsApi, CompareListsAddedRemovedAndChangedWithAttributeDiffs) {
  const std::int64_t db = CreateCi(
      R"({"type": "database", "name": "ledger", "attributes": {"engine": "postgresql", "engine_version": "14"}})");
  const std::int64_t host = CreateCi(R"({"type": "server", "name": "db-host"})");
  const std::int64_t gone = CreateCi(R"({"type": "server", "name": "old-host"})");
  const std::int64_t same = CreateCi(R"({"type": "server", "name": "steady"})");
  Tick();
  const std::string t1 = Now();
  Tick();
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(db),
                  R"({"attributes": {"engine_version": "15"}, "owner": "dba"})")
                .status,
            200);
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(same), R"({"name": "moving"})").status, 200);
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(same), R"({"name": "steady"})").status, 200);
  ASSERT_EQ(Delete("/api/v1/cis/" + std::to_string(gone)).status, 204);
  const std::int64_t added = CreateCi(R"({"type": "application", "name": "<b>ledger-ui</b>"})");
  Relate(db, host);
  Tick();
  const std::string t2 = Now();

  HttpResult r = Get("/api/v1/reports/inventory/compare?from=" + t1 + "&to=" + t2);
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value& body = r.json();
  EXPECT_EQ(body.at("summary").at("cis").at("added"), 1);
  EXPECT_EQ(body.at("summary").at("cis").at("removed"), 1);
  EXPECT_EQ(body.at("summary").at("cis").at("changed"), 1);  // "steady" changed and back: none
  EXPECT_EQ(body.at("summary").at("relations").at("added"), 1);
  bool saw_db = false;
  for (const json::value& c : body.at("cis").as_array()) {
    const std::int64_t id = c.at("id").as_int64();
    if (id == db) {
      saw_db = true;
      EXPECT_EQ(c.at("change"), "changed");
      EXPECT_EQ(c.at("diff").at("attributes.engine_version"),
                json::parse(R"({"from": "14", "to": "15"})"));
      EXPECT_EQ(c.at("diff").at("owner"), json::parse(R"({"from": null, "to": "dba"})"));
      EXPECT_FALSE(c.at("diff").as_object().contains("attributes.engine"));
    }
    if (id == gone) {
      EXPECT_EQ(c.at("change"), "removed");
    }
    if (id == added) {
      EXPECT_EQ(c.at("change"), "added");
    }
    EXPECT_NE(id, same);
  }
  EXPECT_TRUE(saw_db);
  // Narrowed by type.
  HttpResult servers =
      Get("/api/v1/reports/inventory/compare?type=server&from=" + t1 + "&to=" + t2);
  EXPECT_EQ(servers.json().at("cis").as_array().size(), 1U);  // old-host
  // CSV: one row per field; HTML escapes names.
  HttpResult csv = Get("/api/v1/reports/inventory/compare?format=csv&from=" + t1 + "&to=" + t2);
  EXPECT_NE(csv.body.find("ci," + std::to_string(db) +
                          ",ledger,database,changed,attributes.engine_version,14,15\r\n"),
            std::string::npos)
      << csv.body;
  HttpResult html =
      Get("/api/v1/reports/inventory/compare?format=html&lang=en&from=" + t1 + "&to=" + t2);
  EXPECT_EQ(html.body.find("<b>ledger-ui</b>"), std::string::npos);
  EXPECT_NE(html.body.find("&lt;b&gt;ledger-ui&lt;/b&gt;"), std::string::npos);

  EXPECT_EQ(Get("/api/v1/reports/inventory/compare?from=" + t1).status, 400);
  EXPECT_EQ(Get("/api/v1/reports/inventory/compare?from=" + t2 + "&to=" + t1).status, 400);
  EXPECT_EQ(Get("/api/v1/reports/inventory/compare?from=" + t1 + "&to=" + In(5)).status, 400);
}

TEST_F(ReportsApi, DriftBySourceTypeOwnerAndAge) {
  const std::int64_t host = CreateCi(R"({"type": "server", "name": "h1", "owner": "ops"})");
  const std::int64_t db = CreateCi(R"({"type": "database", "name": "d1", "owner": "dba"})");
  HttpResult source =
      Post("/api/v1/discovery/sources", R"({"name": "nightly nmap", "kind": "agent"})");
  ASSERT_EQ(source.status, 201) << source.body;
  Sql("INSERT INTO discovery_runs (id, source_id, state) VALUES (77, $1, 'succeeded')",
      {P(source.json().at("id").as_int64())});
  auto finding = [&](std::int64_t ci, const char* attr, const char* state, bool authorized,
                     int detected_days_ago, int closed_days_ago) {
    Sql("INSERT INTO drift_findings (ci_id, attribute, state, authorized, run_id, last_run_id, "
        "detected_at, observed_at, closed_at) VALUES ($1, $2, $3, $4::boolean, 77, 77, now() - "
        "make_interval(days => $5::int), now(), CASE WHEN $6::int < 0 THEN NULL ELSE now() - "
        "make_interval(days => $6::int) END)",
        {P(ci), P(attr), P(state), P(authorized ? "true" : "false"), P(detected_days_ago),
         P(closed_days_ago)});
  };
  finding(host, "os", "open", false, 3, -1);            // new, unauthorised
  finding(host, "ram", "open", true, 45, -1);           // old, authorised, 31-90 days
  finding(db, "version", "accepted", false, 10, 2);     // closed within
  finding(db, "port", "resolved", false, 100, 50);      // closed before the period
  json::value r = Get("/api/v1/reports/drift").json();  // the last 30 days
  EXPECT_EQ(r.at("opened"), 2);
  EXPECT_EQ(r.at("by_state").at("open"), 2);
  EXPECT_EQ(r.at("by_state").at("accepted"), 1);
  EXPECT_EQ(r.at("by_state").at("resolved"), 0);
  EXPECT_EQ(r.at("unauthorised_open"), 1);
  EXPECT_EQ(r.at("age_of_open_days").at("0-7"), 1);
  EXPECT_EQ(r.at("age_of_open_days").at("31-90"), 1);
  EXPECT_EQ(r.at("by_source").at(0).at("key"), "nightly nmap");
  EXPECT_EQ(r.at("by_source").at(0).at("open"), 2);
  for (const json::value& g : r.at("by_owner").as_array()) {
    if (g.at("key") == "ops") {
      EXPECT_EQ(g.at("unauthorised_open"), 1);
    }
    if (g.at("key") == "dba") {
      EXPECT_EQ(g.at("open"), 0);
    }
  }
  HttpResult csv = Get("/api/v1/reports/drift?format=csv");
  EXPECT_NE(csv.body.find(",h1,server,ops,os,open,false,nightly nmap,"), std::string::npos)
      << csv.body;
  EXPECT_EQ(Get("/api/v1/reports/drift?from=" + In(1) + "&to=" + In(-1)).status, 400);
}

TEST_F(ReportsApi, AuditTrendAndWorstRulesAndOwners) {
  Sql("INSERT INTO audit_runs (id, set_name, state, submitted_by) VALUES (501, 'baseline', "
      "'succeeded', 't'), (502, 'baseline', 'succeeded', 't')");
  Sql("INSERT INTO audit_scores (run_id, set_name, at, group_kind, group_key, pass, fail, "
      "not_applicable, error) VALUES "
      "(501, 'baseline', now() - interval '40 days', 'overall', '', 60, 40, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'overall', '', 90, 10, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'rule', 'ci-has-owner', 45, 5, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'rule', 'unique-serials', 45, 5, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'rule', 'app-runs-on', 10, 0, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'owner', 'ops', 30, 10, 0, 0), "
      "(502, 'baseline', now() - interval '1 day', 'owner', 'dba', 60, 0, 0, 0)");
  json::value r = Get("/api/v1/reports/audit").json();
  ASSERT_EQ(r.at("trend").as_array().size(), 2U);
  EXPECT_DOUBLE_EQ(r.at("trend").at(0).at("score").as_double(), 0.6);
  EXPECT_DOUBLE_EQ(r.at("trend").at(1).at("score").as_double(), 0.9);
  EXPECT_EQ(r.at("latest_run"), 502);
  ASSERT_EQ(r.at("worst_rules").as_array().size(),
            2U);  // rules that failed nothing are not "worst"
  EXPECT_EQ(r.at("worst_rules").at(0).at("key"), "ci-has-owner");  // ties by name
  EXPECT_EQ(r.at("worst_owners").at(0).at("key"), "ops");
  json::value recent = Get("/api/v1/reports/audit?from=" + In(-24 * 7)).json();
  EXPECT_EQ(recent.at("trend").as_array().size(), 1U);
  HttpResult html = Get("/api/v1/reports/audit?format=html&lang=zh");
  EXPECT_NE(html.body.find("配置审计报告"), std::string::npos);
  EXPECT_NE(html.body.find("<polyline"), std::string::npos);
}

TEST_F(ReportsApi, ChangeCalendarWithCollisionsAlsoAsICalendar) {
  const std::int64_t db = CreateCi(R"({"type": "database", "name": "ledger"})");
  const std::int64_t other = CreateCi(R"({"type": "server", "name": "print-01"})");
  auto change = [&](const std::string& title, int start, int end, std::int64_t ci) {
    HttpResult r = Post("/api/v1/changes", R"({"title": ")" + title + R"(", "planned_start": ")" +
                                               In(start) + R"(", "planned_end": ")" + In(end) +
                                               R"(", "ci_ids": [)" + std::to_string(ci) + "]}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  };
  const std::int64_t a = change("升级财务系统数据库, 主备切换; 第一阶段", 24, 28, db);
  const std::int64_t b = change("patch ledger", 26, 30, db);
  const std::int64_t c = change("printer firmware", 25, 27, other);  // overlaps, no shared CI
  const std::int64_t d = change("later ledger work", 40, 42, db);    // shares, no overlap
  json::value r = Get("/api/v1/reports/changes?from=" + In(0) + "&to=" + In(24 * 7)).json();
  ASSERT_EQ(r.at("changes").as_array().size(), 4U);
  ASSERT_EQ(r.at("collisions").as_array().size(), 1U);
  EXPECT_EQ(r.at("collisions").at(0).at("changes"), (json::array{a, b}));
  for (const json::value& ch : r.at("changes").as_array()) {
    const std::int64_t id = ch.at("id").as_int64();
    EXPECT_EQ(ch.at("collides_with").as_array().size(), (id == a || id == b) ? 1U : 0U) << id;
  }
  EXPECT_EQ(Post("/api/v1/changes/" + std::to_string(b) + "/cancel", "{}").status, 200);
  EXPECT_EQ(Get("/api/v1/reports/changes?from=" + In(0) + "&to=" + In(24 * 7))
                .json()
                .at("collisions")
                .as_array()
                .size(),
            0U);
  (void)c;
  (void)d;
  HttpResult ics = Get("/api/v1/reports/changes?format=ics&from=" + In(0) + "&to=" + In(24 * 7));
  ASSERT_EQ(ics.status, 200);
  EXPECT_EQ(ics.header("content-type"), "text/calendar; charset=utf-8");
  EXPECT_EQ(ics.body.rfind("BEGIN:VCALENDAR\r\n", 0), 0U);
  std::size_t events = 0;
  for (std::size_t p = ics.body.find("BEGIN:VEVENT"); p != std::string::npos;
       p = ics.body.find("BEGIN:VEVENT", p + 1))
    ++events;
  EXPECT_EQ(events, 4U);
  EXPECT_NE(ics.body.find("UID:change-" + std::to_string(a) + "@cmdb\r\n"), std::string::npos);
  EXPECT_NE(ics.body.find("STATUS:CANCELLED\r\n"), std::string::npos);
  EXPECT_NE(ics.body.find("STATUS:TENTATIVE\r\n"), std::string::npos);
  for (std::size_t p = 0, e; (e = ics.body.find("\r\n", p)) != std::string::npos; p = e + 2) {
    EXPECT_LE(e - p, 75U);
  }
  EXPECT_EQ(Get("/api/v1/reports/changes?format=pdf").status, 400);
}

}  // namespace
}  // namespace cmdb::testing
