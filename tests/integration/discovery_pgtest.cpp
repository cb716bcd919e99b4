// Discovery over real HTTP and a real PostgreSQL: sources, runs of every collector kind (nmap
// and ansible really run when installed), reconciliation outcomes, the drift lifecycle, dry
// runs, hostile payloads, stale CIs, scheduling, and the run queue shared by several workers.

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <unistd.h>

#include "discovery/decision_log.hpp"
#include "jobs/discovery_executor.hpp"
#include "model/error.hpp"
#include "store/db_pool.hpp"
#include "store/discovery_run_repository.hpp"
#include "store/discovery_source_repository.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;
using namespace std::string_literals;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(CMDB_FIXTURES_DIR) + "/discovery/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Output of a shell command; nullopt when it failed.
std::optional<std::string> Shell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  return pclose(pipe) == 0 ? std::optional<std::string>(out) : std::nullopt;
}

bool Installed(const char* tool) {
  return Shell(std::string("command -v ") + tool + " >/dev/null 2>&1").has_value();
}

class DiscoveryApi : public ServerTest {
 protected:
  std::int64_t CreateSource(const std::string& body) {
    HttpResult r = Post("/api/v1/discovery/sources", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  }

  // Starts a run and waits until it has finished; returns the run with its decisions.
  json::value Run(std::int64_t source, const std::string& body,
                  const std::string& content_type = "application/json",
                  const std::string& extra = "") {
    HttpResult started =
        Post("/api/v1/discovery/runs?source=" + std::to_string(source) + extra, body, content_type);
    EXPECT_EQ(started.status, 202) << started.body;
    if (started.status != 202) return nullptr;
    EXPECT_EQ(started.json().at("state"), "queued");
    return Wait(started.json().at("id").as_int64());
  }

  json::value Wait(std::int64_t run) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResult r = Get("/api/v1/discovery/runs/" + std::to_string(run) + "?limit=1000");
      EXPECT_EQ(r.status, 200) << r.body;
      const json::value& v = r.json();
      if (v.at("state") == "succeeded" || v.at("state") == "failed") return v;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    ADD_FAILURE() << "run " << run << " did not finish";
    return nullptr;
  }

  json::array Findings(const std::string& query) {
    HttpResult r = Get("/api/v1/drift?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().at("items").as_array();
  }

  json::value Ci(std::int64_t id) { return Get("/api/v1/cis/" + std::to_string(id)).json(); }

  std::int64_t CountCis() {
    return static_cast<std::int64_t>(
        Get("/api/v1/cis?limit=1000").json().at("items").as_array().size());
  }
};

TEST_F(DiscoveryApi, SourcesAreValidatedAndManaged) {
  HttpResult bad = Post("/api/v1/discovery/sources",
                        R"({"name": "", "kind": "snmp", "config": {"on_unmatched": "merge", "x": 1},
                            "interval_seconds": 3, "colour": "red"})");
  ASSERT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(bad.header("content-type"), "application/problem+json");
  std::set<std::string> fields;
  for (const auto& e : bad.json().at("errors").as_array()) {
    fields.insert(std::string(e.at("field").as_string()));
  }
  EXPECT_EQ(fields, (std::set<std::string>{"name", "kind", "config.on_unmatched", "config.x",
                                           "interval_seconds", "colour"}));
  HttpResult scheduled_without_input =
      Post("/api/v1/discovery/sources",
           R"({"name": "scan", "kind": "nmap_xml", "interval_seconds": 3600})");
  ASSERT_EQ(scheduled_without_input.status, 422);
  EXPECT_EQ(scheduled_without_input.json().at("errors").at(0).at("field"), "config.path");

  HttpResult created =
      Post("/api/v1/discovery/sources",
           R"({"name": "dc1 scan", "kind": "nmap_xml", "config": {"on_unmatched": "create"}})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string where = created.header("location");
  EXPECT_EQ(created.json().at("config").at("stale_after_runs"), 3);  // full scans go stale
  EXPECT_EQ(created.header("etag"), "\"1\"");
  EXPECT_EQ(Post("/api/v1/discovery/sources", R"({"name": "dc1 scan", "kind": "agent"})").status,
            409);
  EXPECT_EQ(Patch(where, R"({"name": "dc-1 scan"})", "\"7\"").status, 412);
  HttpResult renamed =
      Patch(where, R"({"name": "dc-1 scan", "config": {"stale_after_runs": 5}})", "\"1\"");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(renamed.json().at("name"), "dc-1 scan");
  EXPECT_EQ(renamed.json().at("config").at("stale_after_runs"), 5);
  EXPECT_EQ(renamed.json().at("config").at("on_unmatched"), "create");  // merge patch keeps it
  EXPECT_EQ(Patch(where, R"({"kind": "agent"})").status, 422);
  EXPECT_EQ(Get("/api/v1/discovery/sources").json().at("items").as_array().size(), 1U);
  EXPECT_EQ(Delete(where).status, 204);
  EXPECT_EQ(Get(where).status, 404);
}

TEST_F(DiscoveryApi, AgentRunMatchesRecordsAndFollowsTheDriftLifecycle) {
  std::int64_t db = CreateCi(R"({"type": "server", "name": "db-01", "attributes":
      {"serial": "S1", "hostname": "db-01", "memory_mb": 1024, "os": "Debian"}})");
  std::int64_t source = CreateSource(R"({"name": "agents", "kind": "agent"})");
  const std::string observed =
      R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"hostname": "db-01", "memory_mb": 2048, "os": "Debian"}}]})";

  json::value run = Run(source, observed);
  ASSERT_EQ(run.at("state"), "succeeded") << run;
  EXPECT_EQ(run.at("counts").at("observed"), 1);
  EXPECT_EQ(run.at("counts").at("matched"), 1);
  EXPECT_EQ(run.at("counts").at("drifted"), 1);
  EXPECT_EQ(run.at("progress"), json::parse(R"({"done": 1, "total": 1})"));
  const json::value& decision = run.at("decisions").at(0);
  EXPECT_EQ(decision.at("outcome"), "matched");
  EXPECT_EQ(decision.at("ci"), db);
  EXPECT_EQ(decision.at("identify_by"), json::array({"serial"}));
  EXPECT_EQ(decision.at("drift").at(0).at("action"), "opened");

  json::array open = Findings("state=open&ci=" + std::to_string(db));
  ASSERT_EQ(open.size(), 1U);
  const std::int64_t finding = open[0].at("id").as_int64();
  EXPECT_EQ(open[0].at("attribute"), "memory_mb");
  EXPECT_EQ(open[0].at("expected"), 1024);
  EXPECT_EQ(open[0].at("actual"), 2048);
  EXPECT_EQ(open[0].at("run"), run.at("id"));
  EXPECT_EQ(open[0].at("authorized"), false);
  EXPECT_TRUE(open[0].at("change").is_null());
  // Drift changes nothing in the record; only last_seen_at moves.
  json::value ci = Ci(db);
  EXPECT_EQ(ci.at("version"), 1);
  EXPECT_FALSE(ci.at("last_seen_at").is_null());

  // Seen again the same: still one open finding.
  json::value again = Run(source, observed);
  EXPECT_EQ(again.at("decisions").at(0).at("drift").at(0).at("action"), "still_open");
  open = Findings("state=open");
  ASSERT_EQ(open.size(), 1U);
  EXPECT_EQ(open[0].at("id"), finding);
  EXPECT_EQ(open[0].at("last_run"), again.at("id"));

  // Changed again: the same finding follows the new value.
  json::value moved = Run(
      source, R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 4096}}]})");
  EXPECT_EQ(moved.at("decisions").at(0).at("drift").at(0).at("action"), "updated");
  open = Findings("state=open");
  ASSERT_EQ(open.size(), 1U);
  EXPECT_EQ(open[0].at("actual"), 4096);

  // Reality back at the record: the finding resolves itself.
  json::value back = Run(
      source, R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 1024}}]})");
  EXPECT_EQ(back.at("counts").at("findings_resolved"), 1);
  EXPECT_TRUE(Findings("state=open").empty());
  json::array resolved = Findings("state=resolved");
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_EQ(resolved[0].at("id"), finding);
  EXPECT_EQ(Ci(db).at("version"), 1);
  EXPECT_EQ(Get("/api/v1/drift/" + std::to_string(finding)).json().at("state"), "resolved");
}

TEST_F(DiscoveryApi, AcceptWritesTheObservedValueAndIgnoreSilencesIt) {
  std::int64_t db = CreateCi(R"({"type": "server", "name": "db-01", "attributes":
      {"serial": "S1", "memory_mb": 1024, "os": "Debian", "kernel": "6.1"}})");
  std::int64_t source = CreateSource(R"({"name": "agents", "kind": "agent"})");
  Run(source,
      R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 2048, "os": "Alpine"}}]})");
  json::array open = Findings("state=open&ci=" + std::to_string(db));
  ASSERT_EQ(open.size(), 2U);
  std::int64_t memory = 0;
  std::int64_t os = 0;
  for (const auto& f : open)
    (f.at("attribute") == "memory_mb" ? memory : os) = f.at("id").as_int64();

  EXPECT_EQ(Post("/api/v1/drift/" + std::to_string(memory) + "/accept", "").status, 200);
  json::value ci = Ci(db);
  EXPECT_EQ(ci.at("attributes").at("memory_mb"), 2048);
  json::value history = Get("/api/v1/cis/" + std::to_string(db) + "/history").json();
  EXPECT_EQ(history.at("items").at(0).at("source"), json::value("drift:" + std::to_string(memory)));
  EXPECT_EQ(history.at("items").at(0).at("diff").at("memory_mb"),
            json::parse(R"({"old": 1024, "new": 2048})"));
  HttpResult twice = Post("/api/v1/drift/" + std::to_string(memory) + "/accept", "");
  EXPECT_EQ(twice.status, 409);
  EXPECT_NE(twice.json().at("detail").as_string().find("accepted"), json::string::npos);

  HttpResult ignored = Post("/api/v1/drift/" + std::to_string(os) + "/ignore", "");
  ASSERT_EQ(ignored.status, 200) << ignored.body;
  EXPECT_EQ(ignored.json().at("state"), "ignored");

  // The accepted value is the record now; the ignored difference is not reported again.
  json::value next = Run(
      source,
      R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 2048, "os": "Alpine"}}]})");
  EXPECT_EQ(next.at("decisions").at(0).at("drift").at(0).at("action"), "ignored_before");
  EXPECT_TRUE(Findings("state=open").empty());
  // A new difference on the ignored attribute is reported.
  Run(source, R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"os": "Ubuntu"}}]})");
  open = Findings("state=open");
  ASSERT_EQ(open.size(), 1U);
  EXPECT_EQ(open[0].at("actual"), "Ubuntu");
  EXPECT_EQ(Post("/api/v1/drift/999999/accept", "").status, 404);
  EXPECT_EQ(Post("/api/v1/drift/" + std::to_string(open[0].at("id").as_int64()) + "/ignore", "",
                 "application/json")
                .status,
            200);
}

TEST_F(DiscoveryApi, ReconciliationOutcomesAreExplained) {
  std::int64_t twin_a =
      CreateCi(R"({"type": "server", "name": "twin-a", "attributes": {"hostname": "twin"}})");
  std::int64_t twin_b =
      CreateCi(R"({"type": "server", "name": "twin-b", "attributes": {"hostname": "twin"}})");
  std::int64_t source =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
  json::value run = Run(source, R"({"items": [
      {"identity": {"hostname": "twin"}},
      {"name": "new-01", "identity": {"serial": "NEW1"}, "attributes": {"os": "Debian", "colour": "blue"}},
      {"identity": {"serial": "To be filled by O.E.M."}, "attributes": {"os": "Debian"}},
      {"type": "no_such_type", "identity": {"serial": "X"}},
      {"identity": {"serial": "new1"}}]})");
  ASSERT_EQ(run.at("state"), "succeeded") << run;
  const json::array& d = run.at("decisions").as_array();
  ASSERT_EQ(d.size(), 5U);
  EXPECT_EQ(d[0].at("outcome"), "ambiguous");
  EXPECT_EQ(d[0].at("candidates"), json::array({twin_a, twin_b}));
  EXPECT_EQ(d[1].at("outcome"), "created");
  EXPECT_EQ(d[1].at("notes").at(0).at("attribute"), "colour");
  EXPECT_EQ(d[2].at("outcome"), "unmatched");
  EXPECT_NE(d[2].at("tried").at(0).at("result").as_string().find("placeholder"),
            json::string::npos);
  EXPECT_EQ(d[3].at("outcome"), "rejected");
  EXPECT_EQ(d[4].at("outcome"), "ambiguous");  // the asset registered by #2, seen twice
  EXPECT_EQ(run.at("counts").at("created"), 1);
  EXPECT_EQ(run.at("counts").at("ambiguous"), 2);
  EXPECT_EQ(run.at("counts").at("unmatched"), 1);

  const std::int64_t created = d[1].at("ci").as_int64();
  json::value ci = Ci(created);
  EXPECT_EQ(ci.at("name"), "new-01");
  EXPECT_EQ(ci.at("attributes"), json::parse(R"({"serial": "NEW1", "os": "Debian"})"));
  json::value history = Get("/api/v1/cis/" + std::to_string(created) + "/history").json();
  EXPECT_EQ(history.at("items").at(0).at("source"),
            json::value("discovery:" + std::to_string(run.at("id").as_int64())));
  // Twins are never merged.
  EXPECT_EQ(Ci(twin_a).at("version"), 1);
  EXPECT_EQ(Ci(twin_b).at("version"), 1);
  // The decision log pages and filters.
  HttpResult page = Get("/api/v1/discovery/runs/" + std::to_string(run.at("id").as_int64()) +
                        "?outcome=ambiguous&limit=1");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.json().at("decisions").as_array().size(), 1U);
  EXPECT_FALSE(page.json().at("next_cursor").is_null());
  HttpResult rest = Get("/api/v1/discovery/runs/" + std::to_string(run.at("id").as_int64()) +
                        "?outcome=ambiguous&limit=1&cursor=" +
                        std::string(page.json().at("next_cursor").as_string()));
  EXPECT_EQ(rest.json().at("decisions").at(0).at("seq"), 5);
}

TEST_F(DiscoveryApi, TheDecisionLogPagesInInputOrderAndFiltersByOutcome) {
  std::int64_t source = CreateSource(R"({"name": "agents", "kind": "agent"})");
  std::string body = R"({"items": [)";
  for (int i = 0; i < 1200; ++i) {
    // Every 400th observation names a type that does not exist (rejected); the others are
    // unknown serials (unmatched, reported).
    body += i % 400 == 399 ? R"({"type": "nope", "identity": {"serial": "X"}},)"
                           : R"({"identity": {"serial": "S)" + std::to_string(i) + R"("}},)";
  }
  body.back() = ']';
  body += "}";
  json::value run = Run(source, body);
  ASSERT_EQ(run.at("state"), "succeeded") << run.at("error");
  EXPECT_EQ(run.at("counts").at("unmatched"), 1197);
  EXPECT_EQ(run.at("counts").at("rejected"), 3);
  const std::string base = "/api/v1/discovery/runs/" + std::to_string(run.at("id").as_int64());
  std::vector<std::int64_t> seqs;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    HttpResult r = Get(base + "?limit=700" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200);
    for (const auto& d : r.json().at("decisions").as_array())
      seqs.push_back(d.at("seq").as_int64());
    if (r.json().at("next_cursor").is_null()) break;
    cursor = std::string(r.json().at("next_cursor").as_string());
  }
  ASSERT_EQ(seqs.size(), 1200U);
  for (std::size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i], static_cast<std::int64_t>(i) + 1);
  // One outcome, across the blocks the log is stored in (500 observations each).
  HttpResult rejected = Get(base + "?outcome=rejected&limit=2");
  ASSERT_EQ(rejected.status, 200);
  const json::array& first = rejected.json().at("decisions").as_array();
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(first[0].at("seq"), 400);
  EXPECT_EQ(first[1].at("seq"), 800);
  HttpResult rest = Get(base + "?outcome=rejected&limit=2&cursor=" +
                        std::string(rejected.json().at("next_cursor").as_string()));
  ASSERT_EQ(rest.json().at("decisions").as_array().size(), 1U);
  EXPECT_EQ(rest.json().at("decisions").at(0).at("seq"), 1200);
  EXPECT_TRUE(rest.json().at("next_cursor").is_null());
  EXPECT_TRUE(Get(base + "?outcome=matched").json().at("decisions").as_array().empty());
  HttpResult last = Get(base + "?limit=1&cursor=" + std::string("i") + "4ae");  // after seq 1198
  ASSERT_EQ(last.status, 200);
  EXPECT_EQ(last.json().at("decisions").at(0).at("seq"), 1199);
}

TEST_F(DiscoveryApi, ProgressIsVisibleWhileARunWorks) {
  std::int64_t source = CreateSource(R"({"name": "agents", "kind": "agent"})");
  std::string body = R"({"items": [)";
  for (int i = 0; i < 40000; ++i)
    body += R"({"identity": {"serial": "S)" + std::to_string(i) + R"("}},)";
  body.back() = ']';
  body += "}";
  HttpResult started = Post("/api/v1/discovery/runs?source=" + std::to_string(source), body);
  ASSERT_EQ(started.status, 202);
  const std::string path =
      "/api/v1/discovery/runs/" + std::to_string(started.json().at("id").as_int64()) + "?limit=1";
  bool seen_running = false;
  for (int i = 0; i < 6000; ++i) {
    json::value run = Get(path).json();
    if (run.at("state") == "running" && !run.at("progress").at("total").is_null()) {
      seen_running = true;
      EXPECT_EQ(run.at("progress").at("total"), 40000);
      EXPECT_LE(run.at("progress").at("done").as_int64(), 40000);
      EXPECT_TRUE(run.at("decisions").as_array().empty());  // nothing is visible before commit
    }
    if (run.at("state") == "succeeded") {
      EXPECT_EQ(run.at("progress"), json::parse(R"({"done": 40000, "total": 40000})"));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(seen_running) << "the run was never seen running with its total";
}

TEST_F(DiscoveryApi, DryRunDecidesTheSameAndWritesNothing) {
  std::int64_t db = CreateCi(
      R"({"type": "server", "name": "db-01", "attributes": {"serial": "S1", "memory_mb": 1024}})");
  std::int64_t source =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
  const std::string body =
      R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 2048, "os": "Debian"}},
                                         {"identity": {"serial": "S9"}, "name": "new"}]})";
  json::value dry = Run(source, body, "application/json", "&dry_run=true");
  ASSERT_EQ(dry.at("state"), "succeeded") << dry;
  EXPECT_EQ(dry.at("dry_run"), true);
  EXPECT_EQ(dry.at("counts").at("created"), 1);
  EXPECT_EQ(dry.at("counts").at("drifted"), 1);
  EXPECT_EQ(dry.at("decisions").at(0).at("drift").at(0).at("action"), "opened");
  EXPECT_EQ(dry.at("decisions").at(0).at("filled"), json::parse(R"({"os": "Debian"})"));
  EXPECT_TRUE(dry.at("decisions").at(1).at("ci").is_null());
  EXPECT_EQ(CountCis(), 1);
  EXPECT_TRUE(Findings("").empty());
  json::value ci = Ci(db);
  EXPECT_EQ(ci.at("version"), 1);
  EXPECT_TRUE(ci.at("last_seen_at").is_null());

  json::value real = Run(source, body);
  const json::array& a = dry.at("decisions").as_array();
  const json::array& b = real.at("decisions").as_array();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].at("outcome"), b[i].at("outcome"));
    EXPECT_EQ(a[i].at("reason"), b[i].at("reason"));
  }
  EXPECT_EQ(CountCis(), 2);
  EXPECT_EQ(Findings("state=open").size(), 1U);
}

TEST_F(DiscoveryApi, HostilePayloadsFailTheRunWriteNothingAndOthersGoOn) {
  std::int64_t agent =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
  std::int64_t nmap =
      CreateSource(R"({"name": "scan", "kind": "nmap_xml", "config": {"on_unmatched": "create"}})");
  std::int64_t facts = CreateSource(
      R"({"name": "facts", "kind": "ansible_facts", "config": {"on_unmatched": "create"}})");
  const std::string report = Fixture("nmap_network.xml");
  struct Case {
    std::int64_t source;
    std::string body;
    std::string content_type;
    std::string error;
  };
  const std::vector<Case> cases = {
      {agent, R"({"items": [{"identity": {"serial": "A"}}, {"identity": {"serial": "B"})",
       "application/json", "JSON"},
      {agent, R"({"items": [{"identity": {"serial": "A"}}, 7]})", "application/json", "items[1]"},
      {agent, std::string(100, '[') + std::string(100, ']'), "application/json", "deep"},
      {agent, R"({"items": [{"identity": {"serial": "A"}}]})", "text/csv", "application/json"},
      {nmap, report.substr(0, report.size() / 2), "application/xml", "malformed XML"},
      {nmap,
       R"(<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><nmaprun>&b;</nmaprun>)",
       "application/xml", "entity"},
      {nmap,
       R"(<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]><nmaprun><host><address addr="10.0.0.1" addrtype="ipv4"/><hostnames><hostname name="&x;"/></hostnames></host></nmaprun>)",
       "application/xml", "entity"},
      {nmap, "", "application/xml", "no input"},
      {facts,
       R"({"ansible_facts": {"ansible_hostname": "h", "ansible_all_ipv4_addresses": {"a": 1}}})",
       "application/json", "not a list"},
      {facts, R"({"hosts": []})", "application/json", "setup module"},
      // A NUL byte is stored as sent (payloads are bytes) and refused by the parsers.
      {agent, "{\"items\": [{\"identity\": {\"serial\": \"A\0B\"}}]}"s, "application/json", "JSON"},
      {nmap, "<?xml version=\"1.0\"?>\0<nmaprun/>"s, "application/xml", "malformed XML"},
  };
  for (const Case& c : cases) {
    json::value run = Run(c.source, c.body, c.content_type);
    ASSERT_TRUE(run.is_object());
    EXPECT_EQ(run.at("state"), "failed") << c.body;
    ASSERT_TRUE(run.at("error").is_string()) << run;
    EXPECT_NE(run.at("error").as_string().find(c.error), json::string::npos)
        << run.at("error") << " does not mention " << c.error;
    EXPECT_EQ(run.at("counts").at("created"), 0);
    EXPECT_TRUE(run.at("decisions").as_array().empty());
  }
  EXPECT_EQ(CountCis(), 0);
  EXPECT_EQ(Get("/ready").status, 200);
  // The same sources go on working.
  json::value good = Run(nmap, report, "application/xml");
  ASSERT_EQ(good.at("state"), "succeeded") << good;
  EXPECT_EQ(good.at("counts").at("created"), 3);  // the host that is down is not registered
  EXPECT_EQ(good.at("counts").at("rejected"), 1);

  EXPECT_EQ(Post("/api/v1/discovery/runs", "{}").status, 400);
  EXPECT_EQ(Post("/api/v1/discovery/runs?source=abc", "{}").status, 400);
  EXPECT_EQ(Post("/api/v1/discovery/runs?source=999", "{}").status, 404);
  EXPECT_EQ(Post("/api/v1/discovery/runs?source=1&dry_run=maybe", "{}").status, 400);
  EXPECT_EQ(Post("/api/v1/discovery/runs?source=1&colour=red", "{}").status, 400);
  EXPECT_EQ(Get("/api/v1/discovery/runs/999").status, 404);
  EXPECT_EQ(Get("/api/v1/drift?state=bogus").status, 400);
  EXPECT_EQ(Get("/api/v1/drift?ci=-1").status, 400);
  EXPECT_EQ(Get("/api/v1/discovery/runs/1?outcome=merged").status, 400);
}

// Payloads (discovery runs, import jobs) travel to and from PostgreSQL as bytes, in binary
// format; text parameters still refuse NUL rather than cut the value short.
TEST_F(DiscoveryApi, PayloadBytesRoundTripThroughBinaryParametersAndResults) {
  store::DbSession session = store::DbSession::Connect(dsn_);
  std::string bytes;
  for (int round = 0; round < 3; ++round) {
    for (int c = 0; c < 256; ++c) bytes += static_cast<char>(c);
  }
  Query(session, "CREATE TEMP TABLE blobs (id int, b bytea)");
  store::pg::WriteWithBytes(session, "INSERT INTO blobs VALUES (1, $1::bytea)", {bytes}, 0);
  store::pg::WriteWithBytes(session, "INSERT INTO blobs VALUES ($1::int, $2::bytea)", {P(2), ""},
                            1);
  SqlResult hex = Query(session, "SELECT b FROM blobs ORDER BY id");
  EXPECT_EQ(store::pg::DecodeBytea(hex.Text(0, 0)), bytes);
  auto raw = [&](int id) {
    return store::pg::ReadBinaryRow(session, "SELECT b FROM blobs WHERE id = $1",
                                    {std::to_string(id)});
  };
  ASSERT_TRUE(raw(1) && raw(2));
  EXPECT_EQ(raw(1)->front(), bytes);
  EXPECT_EQ(raw(2)->front(), "");
  EXPECT_EQ(Query(session, "SELECT b IS NULL FROM blobs WHERE id = 2").Bool(0, 0), false);
  EXPECT_THROW(store::sql::Run(session, "SELECT $1::text", soci::use("a\0b"s)), model::Error);
}

// PostgreSQL's jsonb stores an object's keys in its own order (shorter first): a recorded
// json attribute comes back reordered, which is not drift (nmap's `services` met this).
TEST_F(DiscoveryApi, JsonAttributesDoNotDriftWhenOnlyTheirKeyOrderDiffers) {
  const std::int64_t ci = CreateCi(R"({"type": "server", "name": "web-01", "attributes":
      {"serial": "S1", "services": [{"port": 443, "protocol": "tcp", "name": "https"},
                                    {"port": 22, "protocol": "tcp", "name": "ssh"}]}})");
  const std::int64_t source = CreateSource(R"({"name": "agents", "kind": "agent"})");
  json::value same = Run(source, R"({"items": [{"identity": {"serial": "S1"}, "attributes":
      {"services": [{"protocol": "tcp", "name": "ssh", "port": 22.0},
                    {"name": "https", "port": 443, "protocol": "tcp"}]}}]})");
  ASSERT_EQ(same.at("state"), "succeeded") << same;
  EXPECT_EQ(same.at("counts").at("matched"), 1) << same;
  EXPECT_EQ(same.at("counts").at("drifted"), 0) << same;
  json::value moved = Run(source, R"({"items": [{"identity": {"serial": "S1"}, "attributes":
      {"services": [{"protocol": "tcp", "name": "ssh", "port": 2222},
                    {"name": "https", "port": 443, "protocol": "tcp"}]}}]})");
  EXPECT_EQ(moved.at("counts").at("drifted"), 1) << moved;
  json::array open = Findings("state=open&ci=" + std::to_string(ci));
  ASSERT_EQ(open.size(), 1U);
  EXPECT_EQ(open[0].at("attribute"), "services");
}

TEST_F(DiscoveryApi, OversizedPayloadsAreRefusedBeforeTheyAreQueued) {
  server::ServeConfig config = Config();
  config.body_limit = std::size_t{64} * 1024;
  Restart(config);
  std::int64_t agent = CreateSource(R"({"name": "agents", "kind": "agent"})");
  std::string big = R"({"items": [)";
  while (big.size() < std::size_t{70} * 1024) big += R"({"identity": {"serial": "S"}},)";
  big.back() = ']';
  big += "}";
  EXPECT_EQ(Post("/api/v1/discovery/runs?source=" + std::to_string(agent), big).status, 413);
  EXPECT_TRUE(Get("/api/v1/discovery/runs").json().at("items").as_array().empty());
}

TEST_F(DiscoveryApi, RealNmapScanOfThisHost) {
  if (!Installed("nmap")) GTEST_SKIP() << "nmap is not installed (scripts/setup.sh installs it)";
  std::optional<std::string> report =
      Shell("nmap -oX - -Pn -p " + std::to_string(port()) + " 127.0.0.1 2>/dev/null");
  ASSERT_TRUE(report.has_value());
  std::int64_t source = CreateSource(
      R"({"name": "loopback scan", "kind": "nmap_xml", "config": {"on_unmatched": "create"}})");
  json::value run = Run(source, *report, "application/xml");
  ASSERT_EQ(run.at("state"), "succeeded") << run;
  ASSERT_EQ(run.at("counts").at("created"), 1) << run;
  const std::int64_t host = run.at("decisions").at(0).at("ci").as_int64();
  json::value ci = Ci(host);
  EXPECT_EQ(ci.at("attributes").at("ip"), "127.0.0.1");
  EXPECT_EQ(ci.at("attributes").at("open_ports"), json::array({port()}));
  // A scan of loopback addresses is identified by them: the next scan matches the same CI.
  json::value again = Run(source, *report, "application/xml");
  EXPECT_EQ(again.at("counts").at("matched"), 1) << again;
  EXPECT_EQ(again.at("decisions").at(0).at("ci"), host);
  EXPECT_EQ(again.at("counts").at("drifted"), 0) << again;
}

TEST_F(DiscoveryApi, RealAnsibleFactsOfThisHostFromATreeFolder) {
  if (!Installed("ansible"))
    GTEST_SKIP() << "ansible is not installed (scripts/setup.sh installs it)";
  const std::string tree = "/tmp/cmdb-ansible-" + std::to_string(getpid());
  std::filesystem::remove_all(tree);
  ASSERT_TRUE(Shell("ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False "
                    "ansible all -i localhost, -c local -m setup --tree " +
                    tree + " >/dev/null 2>&1")
                  .has_value());
  std::int64_t source = CreateSource(R"({"name": "facts", "kind": "ansible_facts", "config":
      {"on_unmatched": "create", "path": ")" +
                                     tree + R"("}})");
  json::value run = Run(source, "");
  std::filesystem::remove_all(tree);
  ASSERT_EQ(run.at("state"), "succeeded") << run;
  ASSERT_EQ(run.at("counts").at("created"), 1) << run;
  json::value ci = Ci(run.at("decisions").at(0).at("ci").as_int64());
  std::ifstream machine_id("/etc/machine-id");
  std::string id;
  machine_id >> id;
  if (!id.empty()) {
    EXPECT_EQ(ci.at("attributes").at("machine_id"), json::value(id));
  }
  EXPECT_GT(ci.at("attributes").at("memory_mb").as_int64(), 0);
  EXPECT_EQ(ci.at("attributes").at("os"), "Debian");
}

TEST_F(DiscoveryApi, LocalHostRunRegistersThisMachineThenMatchesIt) {
  std::int64_t source = CreateSource(
      R"({"name": "self", "kind": "local_host", "config": {"on_unmatched": "create"}})");
  json::value first = Run(source, "");
  ASSERT_EQ(first.at("state"), "succeeded") << first;
  ASSERT_EQ(first.at("counts").at("created"), 1) << first;
  const std::int64_t host = first.at("decisions").at(0).at("ci").as_int64();
  EXPECT_FALSE(Ci(host).at("attributes").at("hostname").as_string().empty());
  json::value second = Run(source, "");
  EXPECT_EQ(second.at("counts").at("matched"), 1);
  EXPECT_EQ(second.at("decisions").at(0).at("ci"), host);
  EXPECT_EQ(Run(source, "{}").at("state"), "failed");  // this machine needs no payload
}

TEST_F(DiscoveryApi, CisASourceStopsSeeingAreReportedStaleNeverDeleted) {
  std::int64_t source = CreateSource(
      R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create", "stale_after_runs": 2}})");
  json::value first =
      Run(source, R"({"items": [{"identity": {"serial": "A"}}, {"identity": {"serial": "B"}}]})");
  ASSERT_EQ(first.at("counts").at("created"), 2);
  const std::int64_t b = first.at("decisions").at(1).at("ci").as_int64();
  const std::string stale = "/api/v1/discovery/sources/" + std::to_string(source) + "/stale";
  Run(source, R"({"items": [{"identity": {"serial": "A"}}]})");
  EXPECT_TRUE(Get(stale).json().at("items").as_array().empty());  // missed once
  Run(source, R"({"items": [{"identity": {"serial": "A"}}]})", "application/json", "&dry_run=true");
  EXPECT_TRUE(Get(stale).json().at("items").as_array().empty());  // dry runs do not count
  Run(source, R"({"items": [{"identity": {"serial": "A"}}]})");
  json::value report = Get(stale).json();
  ASSERT_EQ(report.at("items").as_array().size(), 1U) << report;
  EXPECT_EQ(report.at("items").at(0).at("ci"), b);
  EXPECT_EQ(report.at("items").at(0).at("missed_runs"), 2);
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(b)).status, 200);
  Run(source, R"({"items": [{"identity": {"serial": "B"}}]})");
  EXPECT_TRUE(Get(stale).json().at("items").as_array().empty());
}

// A run writes only the sightings that changed since the source's previous run; last_seen_at
// must still be the start of the latest run that saw the CI, for every CI.
TEST_F(DiscoveryApi, LastSeenIsTheLatestRunThatSawTheCi) {
  std::int64_t source =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
  const std::string both =
      R"({"items": [{"identity": {"serial": "A"}}, {"identity": {"serial": "B"}}]})";
  const std::string only_a = R"({"items": [{"identity": {"serial": "A"}}]})";
  json::value first = Run(source, both);
  ASSERT_EQ(first.at("counts").at("created"), 2) << first;
  const std::string a =
      "/api/v1/cis/" + std::to_string(first.at("decisions").at(0).at("ci").as_int64());
  const std::string b =
      "/api/v1/cis/" + std::to_string(first.at("decisions").at(1).at("ci").as_int64());
  auto last_seen = [&](const std::string& ci) { return Get(ci).json().at("last_seen_at"); };
  EXPECT_EQ(last_seen(a), first.at("started_at"));
  EXPECT_EQ(last_seen(b), first.at("started_at"));

  json::value second = Run(source, only_a);  // B missed: its streak ends at the first run
  EXPECT_EQ(last_seen(a), second.at("started_at"));
  EXPECT_EQ(last_seen(b), first.at("started_at"));
  json::value third = Run(source, only_a);
  EXPECT_EQ(last_seen(a), third.at("started_at"));
  EXPECT_EQ(last_seen(b), first.at("started_at"));
  json::value dry = Run(source, both, "application/json", "&dry_run=true");
  EXPECT_EQ(dry.at("state"), "succeeded");
  EXPECT_EQ(last_seen(a), third.at("started_at"));  // dry runs see nothing
  EXPECT_EQ(last_seen(b), first.at("started_at"));
  json::value fourth = Run(source, both);  // B is back
  EXPECT_EQ(last_seen(a), fourth.at("started_at"));
  EXPECT_EQ(last_seen(b), fourth.at("started_at"));
  json::value empty = Run(source, R"({"items": []})");  // a run that sees nothing ends both
  ASSERT_EQ(empty.at("state"), "succeeded") << empty;
  EXPECT_EQ(last_seen(a), fourth.at("started_at"));
  json::value fifth = Run(source, both);
  EXPECT_EQ(last_seen(b), fifth.at("started_at"));
  // The page of CIs agrees with the single reads.
  json::value page = Get("/api/v1/cis?type=server&limit=100").json();
  for (const auto& item : page.at("items").as_array()) {
    EXPECT_EQ(item.at("last_seen_at"), fifth.at("started_at")) << item;
  }

  // Sightings outlive their source, at the time of its last run.
  EXPECT_EQ(Delete("/api/v1/discovery/sources/" + std::to_string(source)).status, 204);
  EXPECT_EQ(last_seen(a), fifth.at("started_at"));
  EXPECT_EQ(last_seen(b), fifth.at("started_at"));
  // A second source seeing A later moves A only.
  std::int64_t other =
      CreateSource(R"({"name": "scanner", "kind": "agent", "config": {"on_unmatched": "report"}})");
  json::value seen_again = Run(other, only_a);
  EXPECT_EQ(seen_again.at("counts").at("matched"), 1) << seen_again;
  EXPECT_EQ(last_seen(a), seen_again.at("started_at"));
  EXPECT_EQ(last_seen(b), fifth.at("started_at"));
}

// An open streak is a bit in a block of 1024 CI ids (0014_sighting_blocks.sql): CIs on both
// sides of a block's edge and far away keep their own last_seen_at, the blocks hold exactly
// the CIs in an open streak, and a CI has a row only while its streak is closed.
TEST_F(DiscoveryApi, SightingsOnBothSidesOfABlockEdge) {
  std::int64_t source =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "report"}})");
  std::vector<std::int64_t> ids;
  for (std::int64_t at : {1022, 1023, 1024, 5000}) {
    Sql("SELECT setval(pg_get_serial_sequence('configuration_items', 'id'), $1, false)", {P(at)});
    ids.push_back(CreateCi(R"({"type": "server", "name": "s)" + std::to_string(at) +
                           R"(", "attributes": {"serial": "S)" + std::to_string(at) + R"("}})"));
    ASSERT_EQ(ids.back(), at);
  }
  auto payload = [](const std::vector<std::int64_t>& serials) {
    std::string body = R"({"items": [)";
    for (std::int64_t s : serials) {
      if (body.back() != '[') body += ',';
      body += R"({"identity": {"serial": "S)" + std::to_string(s) + R"("}})";
    }
    return body + "]}";
  };
  auto last_seen = [&](std::int64_t ci) { return Ci(ci).at("last_seen_at"); };
  auto bits = [&]() {  // CI ids with a bit set in the source's blocks
    std::vector<std::int64_t> out;
    SqlResult r =
        Sql("SELECT (block << 10) + i FROM discovery_sighting_blocks, generate_series(0, 1023) i "
            "WHERE source_id = $1 AND get_bit(bits, i) = 1 ORDER BY 1",
            {P(source)});
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.Int(i, 0));
    return out;
  };
  auto rows = [&]() {
    std::vector<std::int64_t> out;
    SqlResult r =
        Sql("SELECT ci_id FROM discovery_sightings WHERE source_id = $1 ORDER BY 1", {P(source)});
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.Int(i, 0));
    return out;
  };

  json::value first = Run(source, payload(ids));
  ASSERT_EQ(first.at("counts").at("matched"), 4) << first;
  for (std::int64_t ci : ids) EXPECT_EQ(last_seen(ci), first.at("started_at")) << ci;
  EXPECT_EQ(bits(), ids);
  EXPECT_TRUE(rows().empty());
  EXPECT_EQ(Sql("SELECT count(*) FROM discovery_sighting_blocks WHERE source_id = $1", {P(source)})
                .Int(0, 0),
            3);  // blocks 0, 1 and 4

  json::value second = Run(source, payload({1022, 5000}));  // 1023 and 1024 missed
  EXPECT_EQ(last_seen(1022), second.at("started_at"));
  EXPECT_EQ(last_seen(1023), first.at("started_at"));
  EXPECT_EQ(last_seen(1024), first.at("started_at"));
  EXPECT_EQ(last_seen(5000), second.at("started_at"));
  EXPECT_EQ(bits(), (std::vector<std::int64_t>{1022, 5000}));
  EXPECT_EQ(rows(), (std::vector<std::int64_t>{1023, 1024}));

  json::value third = Run(source, payload({1024}));
  EXPECT_EQ(last_seen(1022), second.at("started_at"));
  EXPECT_EQ(last_seen(1023), first.at("started_at"));
  EXPECT_EQ(last_seen(1024), third.at("started_at"));
  EXPECT_EQ(bits(), std::vector<std::int64_t>{1024});
  EXPECT_EQ(rows(), (std::vector<std::int64_t>{1022, 1023, 5000}));
  json::value page = Get("/api/v1/cis?type=server&limit=100").json();
  std::map<std::int64_t, json::value> listed;
  for (const auto& item : page.at("items").as_array()) {
    listed[item.at("id").as_int64()] = item.at("last_seen_at");
  }
  for (std::int64_t ci : ids) EXPECT_EQ(listed[ci], last_seen(ci)) << ci;

  // Deleting the source turns its bits into rows at its last run.
  EXPECT_EQ(Delete("/api/v1/discovery/sources/" + std::to_string(source)).status, 204);
  EXPECT_EQ(bits(), std::vector<std::int64_t>{});
  EXPECT_EQ(rows(), ids);
  EXPECT_EQ(last_seen(1022), second.at("started_at"));
  EXPECT_EQ(last_seen(1023), first.at("started_at"));
  EXPECT_EQ(last_seen(1024), third.at("started_at"));
  EXPECT_EQ(last_seen(5000), second.at("started_at"));
}

// A `json` attribute may nest as deep as the API accepts (64 levels); reconciling it, opening
// a finding on it and reading that finding back in the next run must all cope.
TEST_F(DiscoveryApi, DeeplyNestedJsonAttributesReconcile) {
  ASSERT_EQ(
      Post("/api/v1/ci-types", R"({"name": "appliance", "attributes": {"serial": {"type": "string"},
    "config": {"type": "json"}}, "identify_by": [["serial"]]})")
          .status,
      201);
  auto nested = [](int depth, const std::string& leaf) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += R"({"k":)";
    s += leaf;
    for (int i = 0; i < depth; ++i) s += "}";
    return s;
  };
  const std::int64_t ci = CreateCi(
      R"({"type": "appliance", "name": "fw-1", "attributes": {"serial": "F1", "config": )" +
      nested(50, "1") + "}}");
  std::int64_t source = CreateSource(
      R"({"name": "appliances", "kind": "agent", "config": {"ci_type": "appliance"}})");
  const std::string observed =
      R"({"items": [{"identity": {"serial": "F1"}, "attributes": {"config": )" + nested(50, "2") +
      "}}]}";
  json::value first = Run(source, observed);
  ASSERT_EQ(first.at("state"), "succeeded") << first;
  EXPECT_EQ(first.at("counts").at("drifted"), 1);
  json::value again = Run(source, observed);
  ASSERT_EQ(again.at("state"), "succeeded") << again;
  EXPECT_EQ(again.at("decisions").at(0).at("drift").at(0).at("action"), "still_open") << again;
  json::array open = Findings("state=open&ci=" + std::to_string(ci));
  ASSERT_EQ(open.size(), 1U);
  EXPECT_EQ(open[0].at("attribute"), "config");
}

TEST_F(DiscoveryApi, ScheduledSourcesRunByThemselves) {
  std::int64_t source = CreateSource(
      R"({"name": "self", "kind": "local_host", "interval_seconds": 3600, "config": {"on_unmatched": "create"}})");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  json::array runs;
  while (std::chrono::steady_clock::now() < deadline) {
    runs = Get("/api/v1/discovery/runs?source=" + std::to_string(source))
               .json()
               .at("items")
               .as_array();
    if (!runs.empty() && runs[0].at("state") == "succeeded") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].at("trigger"), "schedule");
  EXPECT_EQ(runs[0].at("state"), "succeeded");
  json::value s = Get("/api/v1/discovery/sources/" + std::to_string(source)).json();
  auto next = model::ParseTimestamp(s.at("next_run_at").as_string());
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(next->micros, model::Timestamp::Now().micros + 3000LL * 1000000);
}

TEST_F(DiscoveryApi, ARunLeftRunningByACrashIsFinishedAfterRestart) {
  std::int64_t source =
      CreateSource(R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
  server::ServeConfig config = Config();
  config.discovery_worker = false;
  Restart(config);
  HttpResult queued = Post("/api/v1/discovery/runs?source=" + std::to_string(source),
                           R"({"items": [{"identity": {"serial": "A"}}]})");
  ASSERT_EQ(queued.status, 202);
  const std::int64_t run = queued.json().at("id").as_int64();
  // What a crashed instance leaves: state running, nobody holding the run's lock.
  Sql("UPDATE discovery_runs SET state = 'running', attempts = 1, claimed_by = 'dead:1', "
      "started_at = now() WHERE id = $1",
      {P(run)});
  Restart(Config());
  json::value done = Wait(run);
  EXPECT_EQ(done.at("state"), "succeeded") << done;
  EXPECT_EQ(done.at("attempts"), 2);
  EXPECT_EQ(done.at("counts").at("created"), 1);
}

class DiscoveryWorkers : public PgTest {
 protected:
  static model::DiscoverySource Source(store::DbSession& session, const std::string& body) {
    return store::DiscoverySourceRepository(session).Create(
        model::DiscoverySourceFromJson(json::parse(body)));
  }
  static model::DecisionPage Decisions(store::DbSession& session, std::int64_t run,
                                       const std::optional<std::string>& outcome) {
    store::DiscoveryRunRepository runs(session);
    return discovery::PageDecisions(
        [&](std::int64_t after) { return runs.DecisionBlocks(run, after, outcome, 4); }, outcome, 0,
        100);
  }
};

TEST_F(DiscoveryWorkers, TwoWorkersShareTheQueueAndNoRunExecutesTwice) {
  store::DbPool pool(dsn_, 1);
  std::vector<std::int64_t> runs;
  {
    store::DbSession session = pool.Lease();
    model::DiscoverySource source = Source(
        session, R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})");
    store::DiscoveryRunRepository store(session);
    for (int i = 0; i < 24; ++i) {
      runs.push_back(store
                         .Enqueue(source.id, false, "application/json",
                                  R"({"items": [{"identity": {"serial": "S)" + std::to_string(i) +
                                      R"("}}, {"identity": {"serial": "shared"}}]})")
                         .id);
    }
  }
  jobs::DiscoveryWorker a(dsn_, {"worker-a", std::chrono::milliseconds(50), false, {}});
  jobs::DiscoveryWorker b(dsn_, {"worker-b", std::chrono::milliseconds(50), false, {}});
  int done_a = 0;
  int done_b = 0;
  std::thread ta([&] { done_a = a.RunPending(); });
  std::thread tb([&] { done_b = b.RunPending(); });
  ta.join();
  tb.join();
  EXPECT_EQ(done_a + done_b, 24);
  store::DbSession session = pool.Lease();
  SqlResult r = Query(session, "SELECT state, attempts FROM discovery_runs r ORDER BY id");
  ASSERT_EQ(r.rows(), 24);
  for (int i = 0; i < r.rows(); ++i) {
    const std::int64_t run = runs[static_cast<std::size_t>(i)];
    EXPECT_EQ(r.Text(i, 0), "succeeded");
    EXPECT_EQ(r.Int(i, 1), 1) << "run " << run << " ran twice";
    EXPECT_EQ(Decisions(session, run, std::nullopt).items.size(), 2U) << "run " << run;
  }
  // "shared" was registered once although every run saw it.
  SqlResult shared = Query(
      session, "SELECT count(*) FROM configuration_items WHERE attributes->>'serial' = 'shared'");
  EXPECT_EQ(shared.Int(0, 0), 1);
}

// Decision blocks written before migration 0012 are text; later ones LZ4 blocks. Both read.
TEST_F(DiscoveryWorkers, DecisionBlocksOfBothFormsAreRead) {
  store::DbPool pool(dsn_, 1);
  store::DbSession session = pool.Lease();
  model::DiscoverySource source = Source(session, R"({"name": "agents", "kind": "agent"})");
  const std::int64_t run =
      store::DiscoveryRunRepository(session)
          .Enqueue(source.id, false, "application/json",
                   R"({"items": [{"identity": {"serial": "S"}}, {"identity": {"serial": "T"}}]})")
          .id;
  ASSERT_TRUE(jobs::ExecuteDiscoveryRun(session, run, [](std::int64_t, std::int64_t) {}));
  SqlResult stored =
      Query(session,
            "SELECT count(*) FILTER (WHERE decisions_lz4 IS NOT NULL AND decisions IS NULL) FROM "
            "discovery_decisions WHERE run_id = $1",
            {P(run)});
  EXPECT_EQ(stored.Int(0, 0), 1);
  // An older run's block, as migration 0011 left it: text, after the compressed run's block.
  Query(session,
        "INSERT INTO discovery_decisions (run_id, first_seq, last_seq, outcomes, decisions) "
        "VALUES ($1, 3, 3, '{\"unmatched\": 1}', '[{\"seq\": 3, \"outcome\": "
        "\"unmatched\", \"observation\": \"old <\\\"row\\\">\"}]')",
        {P(run)});
  model::DecisionPage page = Decisions(session, run, std::nullopt);
  ASSERT_EQ(page.items.size(), 3U);
  EXPECT_EQ(page.items[0].at("seq"), 1);
  EXPECT_EQ(page.items[1].at("seq"), 2);
  EXPECT_EQ(page.items[2].at("observation"), "old <\"row\">");
  EXPECT_EQ(Decisions(session, run, std::string("unmatched")).items.size(), 3U);
  // Never both forms, never neither.
  EXPECT_THROW(Query(session,
                     "INSERT INTO discovery_decisions (run_id, first_seq, last_seq, outcomes) "
                     "VALUES ($1, 9, 9, '{}')",
                     {P(run)}),
               model::Error);
}

TEST_F(DiscoveryWorkers, AbandonedRunsAreQueuedAgainThenFailedAndLiveOnesAreLeftAlone) {
  store::DbPool pool(dsn_, 2);
  store::DbSession session = pool.Lease();
  model::DiscoverySource source = Source(session, R"({"name": "agents", "kind": "agent"})");
  store::DiscoveryRunRepository store(session);
  const std::string body = R"({"items": [{"identity": {"serial": "S"}}]})";
  const std::int64_t abandoned = store.Enqueue(source.id, false, "application/json", body).id;
  const std::int64_t hopeless = store.Enqueue(source.id, false, "application/json", body).id;
  const std::int64_t live = store.Enqueue(source.id, false, "application/json", body).id;
  Query(session, "UPDATE discovery_runs SET state = 'running', attempts = 1 WHERE id IN ($1, $2)",
        {P(abandoned), P(live)});
  Query(session, "UPDATE discovery_runs SET state = 'running', attempts = 3 WHERE id = $1",
        {P(hopeless)});
  // Another instance is alive and working on `live`: it holds the run's lock.
  store::DbSession other = pool.Lease();
  Query(other, "SELECT pg_advisory_lock(cmdb_run_lock_key($1))", {P(live)});

  jobs::DiscoveryWorker worker(dsn_, {"worker", std::chrono::milliseconds(50), false, {}});
  EXPECT_EQ(worker.RecoverAbandoned(), 2);
  auto run = [&](std::int64_t id) { return *store.Find(id); };
  EXPECT_EQ(run(abandoned).state, model::JobState::kQueued);
  EXPECT_EQ(run(hopeless).state, model::JobState::kFailed);
  EXPECT_NE(run(hopeless).error->find("abandoned"), std::string::npos);
  EXPECT_EQ(run(live).state, model::JobState::kRunning);
  EXPECT_EQ(worker.RunPending(), 1);
  EXPECT_EQ(run(abandoned).state, model::JobState::kSucceeded);
  EXPECT_EQ(run(abandoned).attempts, 2);
  EXPECT_EQ(run(live).state, model::JobState::kRunning);
}

}  // namespace
}  // namespace cmdb::testing
