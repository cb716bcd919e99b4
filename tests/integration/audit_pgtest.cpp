// Configuration audit over real HTTP and PostgreSQL: the baseline set, rule validation and
// explanation, runs as background jobs, findings with their lifecycle and waivers, runs as of
// an earlier instant from history, the score series, the debounced run after an import.

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "audit/rule_engine.hpp"
#include "jobs/audit_executor.hpp"
#include "model/timestamp.hpp"
#include "store/audit_repository.hpp"
#include "store/db_pool.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

class AuditApi : public ServerTest {
 protected:
  // Queues a run and waits for it; returns the finished run.
  json::object RunAudit(const std::string& body = "{}") {
    HttpResult r = Post("/api/v1/audit/runs", body);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return {};
    return WaitForRun(r.json().at("id").as_int64());
  }

  json::object WaitForRun(std::int64_t id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResult r = Get("/api/v1/audit/runs/" + std::to_string(id));
      const std::string state(r.json().at("state").as_string());
      if (state == "succeeded" || state == "failed") {
        EXPECT_EQ(state, "succeeded") << r.body;
        return r.json().as_object();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "audit run " << id << " did not finish";
    return {};
  }

  // The runs, newest first, once the newest one succeeded (or after 30 s): for runs the
  // server queues by itself.
  json::array RunsOnceTheLatestSucceeded() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    json::array runs;
    while (std::chrono::steady_clock::now() < deadline) {
      runs = Get("/api/v1/audit/runs").json().at("items").as_array();
      if (!runs.empty() && runs[0].at("state").as_string() == "succeeded") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return runs;
  }

  static std::int64_t Count(const json::object& run, const std::string& rule, const char* what) {
    return run.at("rules").at(rule).at(what).as_int64();
  }

  // The findings of `query` (e.g. "rule=x&state=open").
  json::array Findings(const std::string& query) {
    HttpResult r = Get("/api/v1/audit/findings?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().at("items").as_array();
  }

  std::int64_t FindingOf(const std::string& rule, std::int64_t ci) {
    json::array items = Findings("rule=" + rule + "&ci=" + std::to_string(ci));
    for (const auto& f : items) {
      if (f.at("state").as_string() != "resolved") return f.at("id").as_int64();
    }
    return 0;
  }
};

TEST_F(AuditApi, AFreshDatabaseShipsTheBaselineSet) {
  HttpResult set = Get("/api/v1/audit/rule-sets/baseline");
  ASSERT_EQ(set.status, 200) << set.body;
  const json::array& keys = set.json().at("rules").as_array();
  EXPECT_GE(keys.size(), 10U);
  std::set<std::string> kpis;
  for (const auto& key : keys) {
    HttpResult rule = Get("/api/v1/audit/rules/" + std::string(key.as_string()));
    ASSERT_EQ(rule.status, 200) << rule.body;
    kpis.insert(std::string(rule.json().at("kpi").as_string()));
  }
  EXPECT_EQ(kpis,
            (std::set<std::string>{"completeness", "correctness", "compliance", "relationships"}));
  EXPECT_EQ(Get("/api/v1/audit/rules").json().at("items").as_array().size(), keys.size());
  EXPECT_EQ(Get("/api/v1/audit/rule-sets").json().at("items").as_array().size(), 1U);
  // A baseline run over an empty estate succeeds with nothing failing.
  json::object run = RunAudit();
  EXPECT_EQ(run.at("set").as_string(), "baseline");
  EXPECT_EQ(run.at("total").at("fail").as_int64(), 0);
}

TEST_F(AuditApi, BadRulesAreRefusedNamingTheJsonPointer) {
  HttpResult r = Post("/api/v1/audit/rules", R"({"key": "bad", "title": "t", "kpi": "completeness",
      "scope": {"type": "vm"},
      "check": {"all": [{"present": "attr.serial"}, {"regex": {"name": "(["}},
                        {"relations": {"type": "runs_on", "min": 2, "max": 1}},
                        {"explode": true}]},
      "message": "{{name}}"})");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array()) {
    fields.insert(std::string(e.at("field").as_string()));
  }
  EXPECT_EQ(fields, (std::set<std::string>{"/check/all/0/present", "/check/all/1/regex/name",
                                           "/check/all/2/relations/min", "/check/all/3/explode"}));
  EXPECT_EQ(Get("/api/v1/audit/rules/bad").status, 404);  // nothing written
  // Hostile: nesting past the rule limit is refused naming where; past the JSON limit, the
  // body is refused whole. The server stays up.
  std::string deep = R"({"present": "owner"})";
  for (int i = 0; i < 20; ++i) deep = R"({"not": )" + deep + "}";
  r = Put("/api/v1/audit/rules/deep",
          R"({"title": "t", "kpi": "compliance", "check": )" + deep + R"(, "message": "m"})");
  EXPECT_EQ(r.status, 422) << r.body;
  for (int i = 0; i < 200; ++i) deep = R"({"not": )" + deep + "}";
  r = Put("/api/v1/audit/rules/deep",
          R"({"title": "t", "kpi": "compliance", "check": )" + deep + R"(, "message": "m"})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Put("/api/v1/audit/rules/huge", R"({"title": "t", "kpi": "compliance", "check": {"regex":
          {"name": ")" + std::string(100000, 'a') +
                                          R"("}}, "message": "m"})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Get("/health").status, 200);
  // Viewers read rules but do not write them.
  const std::string viewer = TokenFor("vera", R"(["viewer"])");
  HttpResult refused = PostAs(viewer, "/api/v1/audit/rules",
                              R"({"key": "x", "title": "t", "kpi": "compliance",
                                  "check": {"present": "owner"}, "message": "m"})");
  EXPECT_EQ(refused.status, 403) << refused.body;
}

TEST_F(AuditApi, ARuleIsVersionedAndExplainsOneCi) {
  const std::int64_t vm = CreateCi(R"({"type": "vm", "name": "vm-<a&b>", "owner": "ops"})");
  const std::string rule = R"({"title": "VMs run on a host", "kpi": "relationships",
      "severity": "high", "scope": {"type": ["vm"]},
      "check": {"relations": {"type": "hosted_on", "to_type": ["server"], "min": 1}},
      "message": "{{name}} has no host"})";
  HttpResult created = Put("/api/v1/audit/rules/vm-hosted", rule);
  ASSERT_EQ(created.status, 201) << created.body;
  HttpResult test = Post("/api/v1/audit/rules/vm-hosted/test?ci=" + std::to_string(vm), "");
  ASSERT_EQ(test.status, 200) << test.body;
  EXPECT_EQ(test.json().at("outcome").as_string(), "fail");
  EXPECT_EQ(test.json().at("message").as_string(), "vm-<a&b> has no host");
  EXPECT_EQ(test.json().at("why").as_array().at(0).as_string(),
            "/check/relations: 0 matching relations, wanted at least 1");
  const std::int64_t host = CreateCi(R"({"type": "server", "name": "hv-1"})");
  Relate(vm, host, "hosted_on");
  test = Post("/api/v1/audit/rules/vm-hosted/test?ci=" + std::to_string(vm), "");
  EXPECT_EQ(test.json().at("outcome").as_string(), "pass") << test.body;
  // A server is out of the rule's scope.
  test = Post("/api/v1/audit/rules/vm-hosted/test?ci=" + std::to_string(host), "");
  EXPECT_EQ(test.json().at("outcome").as_string(), "not_applicable") << test.body;
  EXPECT_EQ(Post("/api/v1/audit/rules/vm-hosted/test?ci=999999", "").status, 404);
  // A second version; the history keeps both.
  HttpResult updated = Put("/api/v1/audit/rules/vm-hosted",
                           std::string(rule).replace(rule.find("\"high\""), 6, "\"low\""), "\"1\"");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.json().at("version").as_int64(), 2);
  EXPECT_EQ(Put("/api/v1/audit/rules/vm-hosted", rule, "\"1\"").status, 412);
  // A rule as GET answers it can be sent back as is.
  HttpResult again = Put("/api/v1/audit/rules/vm-hosted", updated.body, "\"2\"");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("version").as_int64(), 3);
  HttpResult history = Get("/api/v1/audit/rules/vm-hosted/history");
  ASSERT_EQ(history.json().at("items").as_array().size(), 3U);
  EXPECT_EQ(history.json().at("items").at(2).at("rule").at("severity").as_string(), "high");
  // A rule in a set cannot be deleted until it is taken out.
  ASSERT_EQ(Put("/api/v1/audit/rule-sets/mine", R"({"rules": ["vm-hosted"]})").status, 201);
  EXPECT_EQ(Put("/api/v1/audit/rule-sets/mine", R"({"rules": ["no-such-rule"]})").status, 422);
  EXPECT_EQ(Delete("/api/v1/audit/rules/vm-hosted").status, 409);
  ASSERT_EQ(Put("/api/v1/audit/rule-sets/mine", R"({"rules": []})").status, 200);
  EXPECT_EQ(Delete("/api/v1/audit/rules/vm-hosted").status, 204);
  EXPECT_EQ(Get("/api/v1/audit/rules/vm-hosted/history").json().at("items").at(0).at("deleted"),
            json::value(true));
}

TEST_F(AuditApi, FindingsOpenResolveAndAreWaivedUntilTheWaiverExpires) {
  const std::int64_t orphan =
      CreateCi(R"({"type": "server", "name": "orphan", "status": "active"})");
  const std::int64_t owned = CreateCi(R"({"type": "server", "name": "owned", "owner": "ops"})");
  const std::int64_t dup1 = CreateCi(
      R"({"type": "server", "name": "d1", "owner": "ops", "attributes": {"serial": " SN-9 "}})");
  const std::int64_t dup2 = CreateCi(
      R"({"type": "network_device", "name": "d2", "owner": "net", "attributes": {"serial": "sn-9"}})");
  json::object first = RunAudit(R"({"set": "baseline"})");
  EXPECT_EQ(Count(first, "active-has-owner", "fail"), 1);
  EXPECT_EQ(Count(first, "active-has-owner", "pass"), 3);
  EXPECT_EQ(Count(first, "unique-serial", "fail"), 2);
  EXPECT_EQ(Count(first, "unique-serial", "not_applicable"), 2);
  const std::int64_t finding = FindingOf("active-has-owner", orphan);
  ASSERT_NE(finding, 0);
  EXPECT_EQ(FindingOf("active-has-owner", owned), 0);
  EXPECT_NE(FindingOf("unique-serial", dup1), 0);
  EXPECT_NE(FindingOf("unique-serial", dup2), 0);
  // One CI's audit finds its duplicate live (a server and a network device: " SN-9 " and
  // "sn-9" are the same serial trimmed and in lower case).
  HttpResult dup = Get("/api/v1/cis/" + std::to_string(dup1) + "/audit");
  ASSERT_EQ(dup.status, 200) << dup.body;
  bool explained = false;
  for (const auto& r : dup.json().at("results").as_array()) {
    if (r.at("rule").as_string() != "unique-serial") continue;
    EXPECT_EQ(r.at("outcome").as_string(), "fail") << r;
    explained =
        std::string(r.at("why").at(0).as_string()).find(std::to_string(dup2)) != std::string::npos;
  }
  EXPECT_TRUE(explained) << dup.body;
  HttpResult f = Get("/api/v1/audit/findings/" + std::to_string(finding));
  EXPECT_EQ(f.json().at("message").as_string(), "server orphan has no owner");
  EXPECT_EQ(f.json().at("first_run_id").as_int64(), first.at("id").as_int64());
  // Still failing on the next run: the same finding, its last run moves on.
  json::object second = RunAudit();
  f = Get("/api/v1/audit/findings/" + std::to_string(finding));
  EXPECT_EQ(f.json().at("state").as_string(), "open");
  EXPECT_EQ(f.json().at("first_run_id").as_int64(), first.at("id").as_int64());
  EXPECT_EQ(f.json().at("last_run_id").as_int64(), second.at("id").as_int64());
  // Waivers: a reason and an end in the future; only asset admins.
  EXPECT_EQ(Post("/api/v1/audit/findings/" + std::to_string(finding) + "/waive",
                 R"({"reason": "", "until": "2001-01-01T00:00:00Z"})")
                .status,
            422);
  const std::string viewer = TokenFor("vic", R"(["viewer"])");
  EXPECT_EQ(PostAs(viewer, "/api/v1/audit/findings/" + std::to_string(finding) + "/waive",
                   R"({"reason": "r", "until": "2099-01-01T00:00:00Z"})")
                .status,
            403);
  const std::string until = model::FormatTimestamp(
      model::Timestamp{model::Timestamp::Now().micros + 30LL * 24 * 3600 * 1000000});
  HttpResult waived = Post("/api/v1/audit/findings/" + std::to_string(finding) + "/waive",
                           R"({"reason": "owner being hired", "until": ")" + until + R"("})");
  ASSERT_EQ(waived.status, 200) << waived.body;
  EXPECT_EQ(waived.json().at("state").as_string(), "waived");
  EXPECT_EQ(waived.json().at("waiver").at("by").as_string(), "admin");
  RunAudit();  // still failing: stays waived
  EXPECT_EQ(Findings("state=waived&rule=active-has-owner").size(), 1U);
  // The waiver expires by itself: the finding reads as open again, and stays open.
  Sql("UPDATE audit_findings SET waived_until = now() - interval '1 second' WHERE id = $1",
      {std::to_string(finding)});
  EXPECT_EQ(Get("/api/v1/audit/findings/" + std::to_string(finding)).json().at("state").as_string(),
            "open");
  EXPECT_EQ(Findings("state=waived").size(), 0U);
  const json::object last_failing = RunAudit();
  EXPECT_EQ(Findings("state=open&rule=active-has-owner").size(), 1U);
  // Fixed: the finding resolves itself, keeping its first and last failing runs.
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(orphan), R"({"owner": "ops"})").status, 200);
  ASSERT_EQ(
      Patch("/api/v1/cis/" + std::to_string(dup2), R"({"attributes": {"serial": "SN-10"}})").status,
      200);
  json::object fixed = RunAudit();
  f = Get("/api/v1/audit/findings/" + std::to_string(finding));
  EXPECT_EQ(f.json().at("state").as_string(), "resolved") << f.body;
  EXPECT_EQ(f.json().at("resolved_run_id").as_int64(), fixed.at("id").as_int64());
  EXPECT_EQ(f.json().at("first_run_id").as_int64(), first.at("id").as_int64());
  EXPECT_EQ(f.json().at("last_run_id").as_int64(), last_failing.at("id").as_int64());
  EXPECT_EQ(f.json().at("last_failed_at"), last_failing.at("evaluated_at"));
  EXPECT_EQ(FindingOf("unique-serial", dup1), 0);
  // It fails again: a new finding opens (the resolved one stays as the record).
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(orphan), R"({"owner": null})").status, 200);
  RunAudit();
  const std::int64_t again = FindingOf("active-has-owner", orphan);
  EXPECT_NE(again, 0);
  EXPECT_NE(again, finding);
  // One CI's results across rules, with its live findings.
  HttpResult ci = Get("/api/v1/cis/" + std::to_string(orphan) + "/audit");
  ASSERT_EQ(ci.status, 200) << ci.body;
  std::map<std::string, std::string> outcomes;
  for (const auto& r : ci.json().at("results").as_array()) {
    outcomes[std::string(r.at("rule").as_string())] = std::string(r.at("outcome").as_string());
  }
  EXPECT_EQ(outcomes["active-has-owner"], "fail");
  EXPECT_EQ(outcomes["server-identified"], "fail");  // no serial, machine id, FQDN or hostname
  EXPECT_EQ(outcomes["server-seen-30-days"], "fail");
  EXPECT_EQ(outcomes["nothing-depends-on-retired"], "pass");
  EXPECT_EQ(outcomes["vm-one-hypervisor"], "not_applicable");
  // Its live findings are exactly the rules it fails.
  std::set<std::string> failing, found;
  for (const auto& [rule, outcome] : outcomes) {
    if (outcome == "fail") failing.insert(rule);
  }
  for (const auto& live : ci.json().at("findings").as_array()) {
    found.insert(std::string(live.at("rule").as_string()));
  }
  EXPECT_EQ(found, failing);
}

TEST_F(AuditApi, RunsAsOfAnEarlierInstantScoreTheEstateAsItWasAndFeedTheSeries) {
  const std::int64_t a = CreateCi(R"({"type": "server", "name": "a"})");
  const std::int64_t b = CreateCi(R"({"type": "server", "name": "b"})");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string before = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(a), R"({"owner": "ops"})").status, 200);
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(b), R"({"owner": "ops"})").status, 200);
  CreateCi(R"({"type": "server", "name": "c"})");  // created after `before`
  json::object now = RunAudit();
  EXPECT_EQ(Count(now, "active-has-owner", "pass"), 2);
  EXPECT_EQ(Count(now, "active-has-owner", "fail"), 1);
  json::object past = RunAudit(R"({"as_of": ")" + before + R"("})");
  EXPECT_EQ(past.at("as_of").as_string(), before);
  EXPECT_EQ(Count(past, "active-has-owner", "pass"), 0);
  EXPECT_EQ(Count(past, "active-has-owner", "fail"), 2);
  // An as-of run leaves the findings of the present alone.
  EXPECT_EQ(Findings("rule=active-has-owner&state=open").size(), 1U);
  // The series: the past run's point comes first, at its instant.
  HttpResult series = Get("/api/v1/audit/scores?group_by=rule");
  ASSERT_EQ(series.status, 200) << series.body;
  bool seen = false;
  for (const auto& s : series.json().at("series").as_array()) {
    if (s.at("group").as_string() != "active-has-owner") continue;
    seen = true;
    const json::array& points = s.at("points").as_array();
    ASSERT_EQ(points.size(), 2U);
    EXPECT_EQ(points[0].at("at").as_string(), before);
    EXPECT_EQ(points[0].at("score").as_double(), 0.0);
    EXPECT_NEAR(points[1].at("score").as_double(), 2.0 / 3.0, 1e-9);
  }
  EXPECT_TRUE(seen);
  // A rule reading when CIs changed and their tags (columns a baseline run does not read).
  ASSERT_EQ(Put("/api/v1/audit/rules/fresh", R"({"title": "Changed today", "kpi": "correctness",
      "check": {"all": [{"changed_within": {"days": 1}}, {"absent": "tags"}]}, "message": "m"})")
                .status,
            201);
  ASSERT_EQ(Put("/api/v1/audit/rule-sets/fresh", R"({"rules": ["fresh"]})").status, 201);
  EXPECT_EQ(Count(RunAudit(R"({"set": "fresh"})"), "fresh", "pass"), 3);
  HttpResult owners = Get("/api/v1/audit/scores?group_by=owner&from=" + before);
  ASSERT_EQ(owners.status, 200);
  EXPECT_EQ(Get("/api/v1/audit/scores?group_by=colour").status, 400);
  EXPECT_EQ(Post("/api/v1/audit/runs", R"({"as_of": "2999-01-01T00:00:00Z"})").status, 422);
  EXPECT_EQ(Post("/api/v1/audit/runs", R"({"set": "nope"})").status, 404);
}

TEST_F(AuditApi, ImportsTriggerOneDebouncedRun) {
  server::ServeConfig config = Config();
  config.audit_debounce = std::chrono::seconds(1);
  Restart(config);
  for (int i = 0; i < 3; ++i) {
    HttpResult r = Post("/api/v1/import", R"({"cis": [{"type": "server", "name": "imp-)" +
                                              std::to_string(i) + R"("}]})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const json::array runs = RunsOnceTheLatestSucceeded();
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].at("trigger").as_string(), "import");
  EXPECT_EQ(runs[0].at("state").as_string(), "succeeded");
  EXPECT_EQ(Count(runs[0].as_object(), "active-has-owner", "fail"), 3);
}

TEST_F(AuditApi, DiscoveryRunsTriggerAnAuditWhereUnmatchedAssetsCountAgainstCompliance) {
  server::ServeConfig config = Config();
  config.audit_debounce = std::chrono::seconds(1);
  Restart(config);
  const std::int64_t db = CreateCi(R"({"type": "server", "name": "db-01", "owner": "ops",
      "attributes": {"serial": "S1", "hostname": "db-01"}})");
  HttpResult source = Post("/api/v1/discovery/sources", R"({"name": "agents", "kind": "agent"})");
  ASSERT_EQ(source.status, 201) << source.body;
  const std::int64_t source_id = source.json().at("id").as_int64();
  HttpResult run = Post("/api/v1/discovery/runs?source=" + std::to_string(source_id),
                        R"({"items": [
      {"type": "server", "identity": {"serial": "S1"}, "attributes": {"hostname": "db-01"}},
      {"type": "server", "identity": {"serial": "S9"}, "attributes": {"hostname": "rogue"}}]})");
  ASSERT_EQ(run.status, 202) << run.body;
  const json::array runs = RunsOnceTheLatestSucceeded();
  ASSERT_EQ(runs.size(), 1U);
  const json::object& audit = runs[0].as_object();
  EXPECT_EQ(audit.at("trigger").as_string(), "discovery");
  // One observation matched db-01, one matched nothing: 1 passed, 1 failed.
  EXPECT_EQ(Count(audit, "discovered-assets-registered", "pass"), 1);
  EXPECT_EQ(Count(audit, "discovered-assets-registered", "fail"), 1);
  // The sighting counts: db-01 was seen within 30 days.
  EXPECT_EQ(Count(audit, "server-seen-30-days", "pass"), 1);
  EXPECT_EQ(Count(audit, "server-seen-30-days", "fail"), 0);
  json::array findings = Findings("rule=discovered-assets-registered&state=open");
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0].at("subject").as_string(), "discovery_source");
  EXPECT_EQ(findings[0].at("source_id").as_int64(), source_id);
  EXPECT_TRUE(findings[0].at("ci_id").is_null());
  EXPECT_EQ(findings[0].at("message").as_string().find("source agents: 1 discovered assets"), 0U)
      << findings[0];
  EXPECT_EQ(FindingOf("server-seen-30-days", db), 0);
}

TEST_F(AuditApi, ACiTheRuleCannotDecideIsAnErrorAndKeepsItsFinding) {
  server::ServeConfig config = Config();
  config.audit_worker = false;  // the runs are executed below, one with a tight search bound
  Restart(config);
  const std::int64_t service = CreateCi(R"({"type": "business_service", "name": "shop"})");
  const std::int64_t app = CreateCi(R"({"type": "application", "name": "shop-web"})");
  Relate(service, app);
  ASSERT_EQ(Put("/api/v1/audit/rules/shop-on-metal", R"({"title": "Services reach a server",
      "kpi": "relationships", "scope": {"type": "business_service"},
      "check": {"reaches": {"to_type": "server", "max_depth": 5}}, "message": "{{name}}"})")
                .status,
            201);
  ASSERT_EQ(Put("/api/v1/audit/rule-sets/metal", R"({"rules": ["shop-on-metal"]})").status, 201);
  store::DbSession work = store::DbSession::Connect(dsn_);
  store::DbSession progress = store::DbSession::Connect(dsn_);
  const model::AuditRun first = store::AuditRepository(work).QueueRun(
      "metal", std::nullopt, model::AuditTrigger::kApi, "test");
  ASSERT_TRUE(jobs::ExecuteAuditRun(work, progress, first.id));
  EXPECT_EQ(Count(WaitForRun(first.id), "shop-on-metal", "fail"), 1);
  const std::int64_t finding = FindingOf("shop-on-metal", service);
  ASSERT_NE(finding, 0);
  // A run whose search bound is too small to decide: error for that CI, the run succeeds and
  // the finding stays open (an error is not a pass).
  const model::AuditRun queued = store::AuditRepository(work).QueueRun(
      "metal", std::nullopt, model::AuditTrigger::kApi, "test");
  audit::EvaluatorOptions tight;
  tight.max_visits = 1;
  ASSERT_TRUE(jobs::ExecuteAuditRun(work, progress, queued.id, tight));
  const json::object run = WaitForRun(queued.id);
  EXPECT_EQ(Count(run, "shop-on-metal", "error"), 1);
  EXPECT_EQ(Count(run, "shop-on-metal", "fail"), 0);
  EXPECT_EQ(Get("/api/v1/audit/findings/" + std::to_string(finding)).json().at("state").as_string(),
            "open");
}

TEST_F(AuditApi, RunsOfThePresentAtOnceOpenEachFindingOnce) {
  server::ServeConfig config = Config();
  config.audit_worker = false;  // the two runs are executed below, side by side
  Restart(config);
  for (int i = 0; i < 20; ++i) {
    CreateCi(R"({"type": "vm", "name": "vm-)" + std::to_string(i) + R"("})");
  }
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 2; ++i) {
    store::DbSession db = store::DbSession::Connect(dsn_);
    ids.push_back(store::AuditRepository(db)
                      .QueueRun("baseline", std::nullopt, model::AuditTrigger::kApi, "test")
                      .id);
  }
  std::vector<std::thread> threads;
  std::atomic<int> succeeded{0};
  for (std::int64_t id : ids) {
    threads.emplace_back([this, id, &succeeded] {
      store::DbSession work = store::DbSession::Connect(dsn_);
      store::DbSession progress = store::DbSession::Connect(dsn_);
      if (jobs::ExecuteAuditRun(work, progress, id)) ++succeeded;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(succeeded.load(), 2);
  // 20 VMs without owner and without host: one live finding each per rule, not two.
  EXPECT_EQ(Findings("rule=active-has-owner&state=open&limit=100").size(), 20U);
  EXPECT_EQ(Findings("rule=vm-one-hypervisor&state=open&limit=100").size(), 20U);
}

// The audit worker keeps the estate of its latest run of the present and brings it up to date
// from the change log (graph_changes) instead of reading it all again. After every kind of
// write — CI fields, owners, tags and attributes, deletes with their relations, relations
// added and removed, imported CIs, discovery sightings — a run over the kept estate must
// score exactly as a run that reads the whole estate; a pruned log or a TRUNCATE-like entry
// loads in full.
TEST_F(AuditApi, AnEstateKeptBetweenRunsScoresExactlyAsAFullRead) {
  server::ServeConfig config = Config();
  config.audit_worker = false;  // runs are executed below, with and without the kept estate
  Restart(config);
  ASSERT_EQ(Put("/api/v1/audit/rules/pci-has-serial", R"({"title": "PCI servers have a serial",
      "kpi": "completeness", "scope": {"tag": "pci"}, "check": {"present": "attr.serial"},
      "message": "{{name}} ({{owner}}) has no serial {{attr.serial}}"})")
                .status,
            201);
  ASSERT_EQ(Put("/api/v1/audit/rules/changed-today", R"({"title": "Servers changed today",
      "kpi": "correctness", "scope": {"type": "server"},
      "check": {"changed_within": {"days": 1}}, "message": "{{name}}"})")
                .status,
            201);
  json::array rules = Get("/api/v1/audit/rule-sets/baseline").json().at("rules").as_array();
  rules.push_back("pci-has-serial");
  rules.push_back("changed-today");
  ASSERT_EQ(
      Put("/api/v1/audit/rule-sets/kept", json::serialize(json::object{{"rules", rules}})).status,
      201);
  // A small estate with something for every rule to say.
  std::vector<std::int64_t> servers, vms;
  for (int i = 0; i < 6; ++i) {
    servers.push_back(
        CreateCi(R"({"type": "server", "name": "srv-)" + std::to_string(i) +
                 R"(", "owner": "ops", "tags": ["pci"], "attributes": {"serial": "S)" +
                 std::to_string(i % 4) + R"(", "mac_addresses": ["aa:bb:cc:dd:ee:0)" +
                 std::to_string(i % 3) + R"("]}})"));
  }
  for (int i = 0; i < 8; ++i) {
    vms.push_back(CreateCi(R"({"type": "vm", "name": "vm-)" + std::to_string(i) + R"("})"));
    if (i % 3 != 0)
      Relate(vms.back(), servers[static_cast<std::size_t>(i) % servers.size()], "hosted_on");
  }
  const std::int64_t service = CreateCi(R"({"type": "business_service", "name": "shop"})");
  const std::int64_t app = CreateCi(R"({"type": "application", "name": "shop-web"})");
  Relate(service, app);
  Relate(app, vms[1], "runs_on");

  store::DbSession work = store::DbSession::Connect(dsn_);
  store::DbSession progress = store::DbSession::Connect(dsn_);
  store::AuditRepository::EstateCache cache;
  // One run of `kept`, with the cache or reading everything: its counts per rule and its
  // score rows, as text; whether it refreshed the kept estate.
  struct Scored {
    std::string counts;
    std::string scores;
    bool refreshed = false;
  };
  auto run = [&](bool kept) {
    const model::AuditRun queued = store::AuditRepository(work).QueueRun(
        "kept", std::nullopt, model::AuditTrigger::kApi, "test");
    EXPECT_TRUE(jobs::ExecuteAuditRun(work, progress, queued.id, {}, kept ? &cache : nullptr));
    const json::object done = WaitForRun(queued.id);
    Scored out;
    out.counts = json::serialize(done.at("rules"));
    const SqlResult rows =
        Sql("SELECT string_agg(concat_ws(' ', group_kind, group_key, pass, fail, not_applicable, "
            "error), '; ' ORDER BY group_kind, group_key) FROM audit_scores WHERE run_id = $1",
            {P(queued.id)});
    out.scores = std::string(rows.Text(0, 0));
    const json::value* refreshed = done.at("timings").as_object().if_contains("estate_refreshed");
    out.refreshed = refreshed != nullptr && refreshed->as_bool();
    return out;
  };
  auto same_as_full_read = [&](const std::string& after, bool expect_refresh = true) {
    const Scored kept = run(true);
    const Scored full = run(false);
    EXPECT_EQ(kept.counts, full.counts) << "after " << after;
    EXPECT_EQ(kept.scores, full.scores) << "after " << after;
    EXPECT_EQ(kept.refreshed, expect_refresh) << "after " << after;
  };
  same_as_full_read("the first run", /*expect_refresh=*/false);
  same_as_full_read("nothing");
  // Fields the graph does not hold: owner, tags, attributes.
  ASSERT_EQ(
      Patch("/api/v1/cis/" + std::to_string(servers[0]), R"({"owner": null, "tags": []})").status,
      200);
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(servers[1]),
                  R"({"attributes": {"serial": null, "mac_addresses": ["AA-BB-CC-DD-EE-02"]}})")
                .status,
            200);
  Sql("UPDATE configuration_items SET owner = 'dba' WHERE id = $1", {P(servers[2])});
  same_as_full_read("owner, tag and attribute updates");
  // Graph fields, a delete with its relations, relations added and removed.
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(servers[3]), R"({"status": "retired"})").status,
            200);
  ASSERT_EQ(Delete("/api/v1/cis/" + std::to_string(servers[4])).status, 204);
  Relate(vms[0], servers[5], "hosted_on");
  Relate(vms[2], servers[0], "hosted_on");  // vm-2 now on two hypervisors
  Sql("DELETE FROM relations WHERE from_ci = $1 AND to_ci = $2", {P(app), P(vms[1])});
  same_as_full_read("status, delete and relation changes");
  // Imported CIs (new ids) and their relations.
  HttpResult imported = Post("/api/v1/import", R"({"cis": [
      {"type": "server", "name": "imp-1", "owner": "ops", "attributes": {"serial": "S7"}},
      {"type": "vm", "name": "imp-vm", "owner": "ops"}],
    "relations": [{"from": {"type": "vm", "name": "imp-vm"}, "to": {"type": "server",
      "name": "imp-1"}, "type": "hosted_on"}]})");
  ASSERT_EQ(imported.status, 200) << imported.body;
  same_as_full_read("an import");
  // Discovery sightings (server-seen-30-days reads them).
  HttpResult source = Post("/api/v1/discovery/sources", R"({"name": "agents", "kind": "agent"})");
  ASSERT_EQ(source.status, 201) << source.body;
  HttpResult discovered =
      Post("/api/v1/discovery/runs?source=" + std::to_string(source.json().at("id").as_int64()),
           R"({"items": [{"type": "server", "identity": {"serial": "S2"}}]})");
  ASSERT_EQ(discovered.status, 202) << discovered.body;
  const std::string discovery_run =
      "/api/v1/discovery/runs/" + std::to_string(discovered.json().at("id").as_int64());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Get(discovery_run).json().at("state").as_string() != "succeeded" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(Get(discovery_run).json().at("state").as_string(), "succeeded");
  same_as_full_read("a discovery run");
  // The log pruned past the kept estate's snapshot, or a TRUNCATE: read in full.
  Sql("UPDATE graph_change_horizon SET pruned_below = pg_current_xact_id()");
  same_as_full_read("the log pruned", /*expect_refresh=*/false);
  Sql("INSERT INTO graph_changes (kind) VALUES ('all')");
  same_as_full_read("a TRUNCATE in the log", /*expect_refresh=*/false);
  same_as_full_read("nothing again");
}

TEST_F(AuditApi, TheNightlyRunIsQueuedOncePerDayAndRequestsAreDebounced) {
  server::ServeConfig config = Config();
  config.audit_worker = false;  // the schedule is driven by hand below
  Restart(config);
  store::DbSession db = store::DbSession::Connect(dsn_);
  store::AuditRepository repo(db);
  const model::Timestamp now = model::Timestamp::Now();
  const model::Timestamp later{now.micros + 61LL * 1000000};
  // A fresh database had its "nightly" today: nothing is due.
  EXPECT_EQ(repo.QueueDueRuns(now, std::chrono::seconds(60)), 0);
  Sql("UPDATE audit_schedule SET last_nightly = (now() AT TIME ZONE 'UTC')::date - 1, "
      "nightly_at = '00:00'");
  EXPECT_EQ(repo.QueueDueRuns(now, std::chrono::seconds(60)), 1);
  EXPECT_EQ(repo.QueueDueRuns(now, std::chrono::seconds(60)), 0);  // once a day
  json::array runs = Get("/api/v1/audit/runs").json().at("items").as_array();
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].at("trigger").as_string(), "schedule");
  // Requests wait for `debounce` of quiet; a run already waiting absorbs them.
  repo.RequestRun(model::AuditTrigger::kImport);
  repo.RequestRun(model::AuditTrigger::kImport);
  EXPECT_EQ(repo.QueueDueRuns(now, std::chrono::seconds(60)), 0);
  EXPECT_EQ(repo.QueueDueRuns(later, std::chrono::seconds(60)), 0);  // the nightly one waits
  Sql("UPDATE audit_runs SET state = 'succeeded'");
  repo.RequestRun(model::AuditTrigger::kDiscovery);
  EXPECT_EQ(repo.QueueDueRuns(now, std::chrono::seconds(60)), 0);
  EXPECT_EQ(repo.QueueDueRuns(later, std::chrono::seconds(60)), 1);
  EXPECT_EQ(repo.QueueDueRuns(later, std::chrono::seconds(60)), 0);
  runs = Get("/api/v1/audit/runs").json().at("items").as_array();
  ASSERT_EQ(runs.size(), 2U);
  EXPECT_EQ(runs[0].at("trigger").as_string(), "discovery");
}

}  // namespace
}  // namespace cmdb::testing
