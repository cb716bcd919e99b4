// The reports over HTTP on the synthetic estate (1M CIs, 4.1M relations by default) with a
// year of operations behind it (100k incidents with their events, callbacks, complaints,
// plans, changes, drift, monthly audit scores): the operations review of one month, the
// compare of the estate between two instants a week apart (1 % of the CIs changed in that
// week, some added and removed), and the inventory CSV of every CI streamed, with the server's
// memory before and after. docs/benchmarks.md, "Reports", records the figures.
//
//   ./build/release/bench/reports_bench [--cis 1000000] [--incidents 100000] [--data DIR] [--reps
//   3]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "bench/bench_access.hpp"
#include "bench/process_status.hpp"
#include "bench/synthetic_estate.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using cmdb::store::DbSession;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using cmdb::bench::StatusMiB;

// History for every CI and relation (30 days old), then a week of changes: 1 % of the CIs
// changed, 0.1 % added and 0.1 % removed, between 8 and 1 days ago.
void History(DbSession& db) {
  cmdb::store::pg::ExecuteScript(db, R"(
    -- A CI's current version is its own row (0025_ci_current_versions.sql), a relation's too
    -- (0023_relation_current_versions.sql); ci_versions keeps the versions that ended.
    UPDATE configuration_items SET owner = 'team-' || (id % 40), created_at = now() - interval '30 days',
      updated_at = now() - interval '30 days', changed_by = 'bench', source = 'import';
    UPDATE relations SET created_at = now() - interval '30 days', updated_at = now() - interval '30 days',
      changed_by = 'bench', source = 'import';
    CREATE TEMP TABLE week AS SELECT id, now() - interval '8 days' + (id % 600000) * interval '1 second' AS at
      FROM configuration_items WHERE id % 100 = 7;
    INSERT INTO ci_versions (ci_id, version, type, name, status, owner, tags, attributes, min_healthy,
                             valid_from, valid_to, changed_by, source)
      SELECT c.id, 1, c.type, c.name, c.status, c.owner, c.tags, c.attributes, c.min_healthy, c.updated_at,
             w.at, c.changed_by, c.source FROM configuration_items c JOIN week w ON w.id = c.id;
    UPDATE configuration_items c SET owner = 'team-moved', version = 2,
      attributes = c.attributes || jsonb_build_object('patch_level', (c.id % 12)::text), updated_at = w.at,
      source = 'api', diff = '{}' FROM week w WHERE w.id = c.id;
    -- Removed three days ago: the last version ends, a tombstone follows, and the CI and its
    -- relations go.
    INSERT INTO ci_versions (ci_id, version, deleted, type, name, status, owner, tags, attributes,
                             valid_from, valid_to, changed_by, source)
      SELECT id, version, false, type, name, status, owner, tags, attributes, updated_at,
             now() - interval '3 days', changed_by, source FROM configuration_items WHERE id % 1000 = 3
      UNION ALL
      SELECT id, version + 1, true, type, name, status, owner, tags, attributes,
             now() - interval '3 days', now() - interval '3 days', 'bench', 'api'
        FROM configuration_items WHERE id % 1000 = 3;
    DELETE FROM relations WHERE from_ci % 1000 = 3 OR to_ci % 1000 = 3;
    DELETE FROM configuration_items WHERE id % 1000 = 3;
    -- Added: new CIs of the week.
    INSERT INTO configuration_items (id, type, name, status, owner, tags, attributes, created_at,
                                     updated_at, changed_by, source)
      SELECT 5000000 + g, 'vm', 'new-vm-' || g, 'active', 'team-new', '{}', '{}',
             now() - interval '2 days', now() - interval '2 days', 'bench', 'import'
        FROM generate_series(1, 1000) g;
    ANALYZE configuration_items; ANALYZE ci_versions; ANALYZE relations;)");
}

// A year of operations ending now.
void Operations(DbSession& db, const cmdb::bench::Estate& e, std::size_t incidents) {
  const std::string n = std::to_string(incidents);
  const std::string apps = std::to_string(e.apps);
  const std::string first_app = std::to_string(e.first_app);
  const std::string first_db = std::to_string(e.first_db);
  const std::string first_vm = std::to_string(e.first_vm);
  const std::string services = std::to_string(e.first_app - e.first_service);
  const std::string first_service = std::to_string(e.first_service);
  cmdb::store::pg::ExecuteScript(
      db,
      R"(
    CREATE TEMP TABLE inc AS SELECT g, now() - interval '365 days' + g * (interval '365 days' / )" +
          n + R"() AS t,
      CASE g % 3 WHEN 0 THEN )" +
          first_app + R"( + g % )" + apps + R"( WHEN 1 THEN )" + first_db + R"( + g % 1000
        ELSE )" +
          first_vm + R"( + g % 10000 END AS ci
      FROM generate_series(1, )" +
          n + R"() g;
    INSERT INTO incidents (id, title, severity, tier, state, assignee, ci_ids, started_at, tier_since,
                           response_due, created_by, created_at, resolved_at, closed_at)
      SELECT g, 'incident ' || g, 1 + g % 4, CASE WHEN g % 5 = 0 THEN 2 ELSE 1 END,
             CASE WHEN t > now() - interval '2 days' THEN 'in_progress' ELSE 'closed' END,
             'handler-' || g % 60, ARRAY[ci], t, t, t + interval '2 hours', 'desk', t,
             CASE WHEN t > now() - interval '2 days' THEN NULL ELSE t + interval '5 hours' END,
             CASE WHEN t > now() - interval '2 days' THEN NULL ELSE t + interval '1 day' END FROM inc;
    SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT max(id) FROM incidents));
    INSERT INTO incident_events (incident_id, at, action, from_state, to_state, from_tier, to_tier, by, response_due)
      SELECT g, t, 'create', NULL, 'new', NULL, 1, 'desk', t + interval '2 hours' FROM inc
      UNION ALL SELECT g, t + (g % 150) * interval '1 minute', 'assign', 'new', 'in_progress', 1, 1, 'handler-' || g % 60, NULL FROM inc
      UNION ALL SELECT g, t + interval '3 hours', 'escalate', 'in_progress', 'new', 1, 2, 'handler-' || g % 60,
             t + interval '27 hours' FROM inc WHERE g % 5 = 0
      UNION ALL SELECT g, t + interval '4 hours', 'assign', 'new', 'in_progress', 2, 2, 'l2-' || g % 15, NULL FROM inc WHERE g % 5 = 0
      UNION ALL SELECT g, t + interval '5 hours', 'resolve', 'in_progress', 'resolved',
             CASE WHEN g % 5 = 0 THEN 2 ELSE 1 END, CASE WHEN g % 5 = 0 THEN 2 ELSE 1 END,
             CASE WHEN g % 5 = 0 THEN 'l2-' || g % 15 ELSE 'handler-' || g % 60 END, NULL
             FROM inc WHERE t <= now() - interval '2 days'
      UNION ALL SELECT g, t + interval '1 day', 'close', 'resolved', 'closed',
             CASE WHEN g % 5 = 0 THEN 2 ELSE 1 END, CASE WHEN g % 5 = 0 THEN 2 ELSE 1 END, 'desk', NULL
             FROM inc WHERE t <= now() - interval '2 days';
    INSERT INTO changes (id, title, state, planned_start, planned_end, ci_ids, impact_ci_ids, created_by)
      SELECT g, 'change ' || g, CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'completed' END,
             now() - interval '365 days' + g * interval '26 minutes',
             now() - interval '365 days' + g * interval '26 minutes' + interval '2 hours',
             ARRAY[ci], ARRAY[ci], 'planner' FROM (SELECT g, ci FROM inc WHERE g <= 20000) x;
    SELECT setval(pg_get_serial_sequence('changes', 'id'), (SELECT max(id) FROM changes));
    INSERT INTO change_events (change_id, at, action, from_state, to_state, by)
      SELECT id, planned_end, 'complete', 'in_progress', state, 'planner' FROM changes;
    INSERT INTO incident_changes (incident_id, change_id, promised_by, linked_at, linked_by, linked_tier)
      SELECT g, 1 + g % least()" +
          n + R"(, 20000), t + interval '10 days', t + interval '6 hours', 'l2-' || g % 15, 2
      FROM inc WHERE g % 5 = 0;
    INSERT INTO key_users (id, name, service_ids, created_by)
      SELECT k, 'key user ' || k, ARRAY[()" +
          first_service + R"( + k % )" + services + R"()::bigint], 'qa'
      FROM generate_series(1, 500) k;
    INSERT INTO callbacks (kind, incident_id, called_at, reached, score, caller)
      SELECT 'incident', g, t + interval '2 days', g % 7 <> 0, CASE WHEN g % 7 <> 0 THEN 1 + g % 5 END, 'qa-' || g % 5
      FROM inc WHERE g % 3 = 0 AND t <= now() - interval '3 days';
    INSERT INTO callbacks (kind, key_user_id, service_id, called_at, reached, score, caller)
      SELECT 'key_user', k.id, k.service_ids[1], now() - m * interval '30 days' + (k.id % 20) * interval '1 day',
             true, 1 + k.id % 5, 'handler-' || k.id % 60
      FROM key_users k, generate_series(1, 12) m WHERE k.id % 10 <> 0;
    INSERT INTO complaints (title, complainant, handler, state, owner, due_at, note, created_by, created_at, closed_at)
      SELECT 'complaint ' || c, 'user ' || c, 'handler-' || c % 60,
             CASE WHEN c % 4 = 0 THEN 'rectifying' ELSE 'closed' END, 'qa', now() - interval '365 days' + c * interval '4 hours' + interval '7 days',
             'note', 'qa', now() - interval '365 days' + c * interval '4 hours',
             CASE WHEN c % 4 = 0 THEN NULL ELSE now() - interval '365 days' + c * interval '4 hours' + interval '5 days' END
      FROM generate_series(1, 2000) c;
    INSERT INTO knowledge_articles (title, body, created_by, created_at, state, approved_by, approved_at)
      SELECT 'article ' || a, 'body', 'handler-' || a % 60, now() - interval '365 days' + a * interval '105 minutes',
             'approved', 'lead', now() - interval '365 days' + a * interval '105 minutes' + interval '1 day'
      FROM generate_series(1, 5000) a;
    INSERT INTO drift_findings (ci_id, attribute, state, authorized, run_id, last_run_id, detected_at, observed_at, closed_at)
      SELECT )" +
          first_vm +
          R"( + d, 'attr-' || d % 7, CASE WHEN d % 3 = 0 THEN 'open' ELSE 'resolved' END, d % 2 = 0, 1, 1,
             now() - interval '365 days' + d * interval '10 minutes', now(),
             CASE WHEN d % 3 = 0 THEN NULL ELSE now() - interval '365 days' + d * interval '10 minutes' + interval '3 days' END
      FROM generate_series(1, 50000) d;
    INSERT INTO audit_runs (id, set_name, state, submitted_by) SELECT m, 'baseline', 'succeeded', 'bench' FROM generate_series(1, 13) m;
    INSERT INTO audit_scores (run_id, set_name, at, group_kind, group_key, pass, fail, not_applicable, error)
      SELECT m, 'baseline', now() - (13 - m) * interval '28 days', 'overall', '', 900000 + m * 1000, 100000 - m * 1000, 0, 0
      FROM generate_series(1, 13) m;
    ANALYZE;)");
}

struct Timing {
  double best = 1e9;
  double median = 0;
  std::size_t bytes = 0;
  int status = 0;
};

Timing Time(std::uint16_t port, const std::string& target, int reps) {
  Timing t;
  std::vector<double> all;
  for (int r = 0; r < reps; ++r) {
    const auto start = Clock::now();
    const cmdb::testing::HttpResult result = cmdb::testing::HttpRequest(port, "GET", target);
    all.push_back(Since(start));
    t.bytes = result.body.size();
    t.status = result.status;
  }
  std::sort(all.begin(), all.end());
  t.best = all.front();
  t.median = all[all.size() / 2];
  return t;
}

std::string IsoDaysAgo(int days) {
  const auto now = std::chrono::system_clock::now() - std::chrono::hours(24 * days);
  const std::time_t tt = std::chrono::system_clock::to_time_t(now);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buffer;
}

std::string LastMonth() {
  const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm = *std::gmtime(&tt);
  int y = tm.tm_year + 1900;
  int m = tm.tm_mon;  // 0-based this month = 1-based last month
  if (m == 0) {
    m = 12;
    --y;
  }
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d", y, m);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  std::size_t incidents = 100000;
  int reps = 3;
  std::string data;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--cis") total = std::stoul(argv[++i]);
    if (flag == "--incidents") incidents = std::stoul(argv[++i]);
    if (flag == "--reps") reps = std::stoi(argv[++i]);
    if (flag == "--data") data = argv[++i];
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  std::string dir = data.empty() ? "/tmp/cmdbreports-XXXXXX" : data;
  const bool reuse = !data.empty() && std::filesystem::exists(data + "/pgdata/PG_VERSION");
  if (data.empty() && mkdtemp(dir.data()) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    const std::string dsn = cluster.ConnectionString("cmdb");
    {
      DbSession db = DbSession::Connect(dsn);
      cmdb::store::ApplyMigrations(db);
      const auto start = Clock::now();
      if (!reuse) {
        cmdb::bench::LoadEstate(db, e);
        History(db);
        Operations(db, e, incidents);
      }
      std::printf("%zu CIs, %zu relations, %zu incidents (loaded in %.0f s)\n\n", e.nodes.size(),
                  e.edges.size(), incidents, Since(start));
    }
    cmdb::testing::CmdbProcess server = cmdb::testing::StartCmdb(
        CMDB_BINARY,
        {"--listen", "127.0.0.1:0", "--database", dsn, "--no-request-log", "--no-discovery-worker",
         "--no-import-worker", "--no-audit-worker"},
        false, cmdb::bench::BenchAccessEnvironment());
    if (server.port == 0) return 1;
    // Wait for the graph (the operations review reaches services over it).
    for (int i = 0; i < 600; ++i) {
      if (cmdb::testing::HttpRequest(server.port, "GET", "/ready").status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    Time(server.port, "/api/v1/cis/1/impact", 1);  // the graph loaded
    const std::string month = LastMonth();
    std::printf("| report | target | best | median of %d | size |\n|---|---|---|---|---|\n", reps);
    auto row = [&](const char* what, const char* target_text, const std::string& target) {
      const Timing t = Time(server.port, target, reps);
      std::printf("| %s | %s | %.2f s | %.2f s | %.1f MB (HTTP %d) |\n", what, target_text, t.best,
                  t.median, static_cast<double>(t.bytes) / 1e6, t.status);
      return t;
    };
    row(("operations review of " + month + " (JSON)").c_str(), "≤ 1 s",
        "/api/v1/reports/operations?month=" + month);
    row(("operations review of " + month + " (HTML, zh)").c_str(), "≤ 1 s",
        "/api/v1/reports/operations?format=html&lang=zh&month=" + month);
    row("compare, two instants a week apart (JSON)", "≤ 5 s",
        "/api/v1/reports/inventory/compare?from=" + IsoDaysAgo(8) + "&to=" + IsoDaysAgo(1));
    row("compare, two instants a week apart (CSV)", "≤ 5 s",
        "/api/v1/reports/inventory/compare?format=csv&from=" + IsoDaysAgo(8) +
            "&to=" + IsoDaysAgo(1));
    row("inventory by type (JSON)", "", "/api/v1/reports/inventory");
    row("inventory as of 5 days ago by owner (JSON)", "",
        "/api/v1/reports/inventory?group_by=owner&as_of=" + IsoDaysAgo(5));
    const double rss_before = StatusMiB(server.pid, "VmRSS");
    const double hwm_before = StatusMiB(server.pid, "VmHWM");
    const Timing csv = Time(server.port, "/api/v1/reports/inventory?format=csv", reps);
    const double hwm_after = StatusMiB(server.pid, "VmHWM");
    const double rows = static_cast<double>(e.nodes.size());
    std::printf(
        "| inventory CSV, every CI streamed | ≥ 100k rows/s | %.2f s = %.0f rows/s | %.2f s = %.0f "
        "rows/s | %.0f MB |\n\n",
        csv.best, rows / csv.best, csv.median, rows / csv.median,
        static_cast<double>(csv.bytes) / 1e6);
    std::printf(
        "server memory: %.0f MB resident before the CSV, peak %.0f MB before and %.0f MB after "
        "streaming %.0f MB of CSV %d times\n",
        rss_before, hwm_before, hwm_after, static_cast<double>(csv.bytes) / 1e6, reps);
    cmdb::testing::StopCmdb(server);
    cluster.Stop();
  }
  if (data.empty()) std::filesystem::remove_all(dir);
  return 0;
}
