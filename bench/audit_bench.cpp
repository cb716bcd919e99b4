// The configuration audit on the synthetic estate (1M CIs, 4.1M relations by default): a run of
// the baseline rule set (the first, which opens the findings, and the next, which finds them
// open), side by side in the same run with the same twelve rules written as SQL queries
// against PostgreSQL; the re-audit after an import of 1,000 CIs; the twelve-month score
// series. docs/benchmarks.md, "Configuration audit", records the figures.
//
//   ./build/release/bench/audit_bench [--cis 1000000] [--sql-reps 1]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "audit/rule_engine.hpp"
#include "bench/synthetic_estate.hpp"
#include "import/importer.hpp"
#include "jobs/audit_executor.hpp"
#include "model/json.hpp"
#include "store/audit_repository.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace {

namespace json = boost::json;
using cmdb::store::DbSession;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Owners, serials (some shared), MAC addresses (some shared), sightings of most servers, a
// discovery source whose latest run left unmatched assets, open drift: what the baseline
// rules read, in proportions an estate loaded from elsewhere might have.
void Enrich(DbSession& db) {
  cmdb::store::pg::ExecuteScript(db, R"(
    UPDATE configuration_items SET owner = 'team-' || (id % 40) WHERE id % 25 <> 0;
    UPDATE configuration_items SET attributes = jsonb_build_object(
        'serial', 'SN-' || (id % 295000),
        'hostname', 'hv-' || id,
        'mac_addresses', jsonb_build_array(
          lpad(to_hex((id % 299000) >> 16), 2, '0') || ':' || lpad(to_hex(((id % 299000) >> 8) & 255), 2, '0') || ':' ||
          lpad(to_hex((id % 299000) & 255), 2, '0') || ':00:00:01'))
      WHERE type = 'server';
    UPDATE configuration_items SET attributes = jsonb_build_object('serial', 'NET-' || id)
      WHERE type = 'network_device';
    UPDATE configuration_items SET status = 'retired' WHERE id % 997 = 0;
    INSERT INTO discovery_sources (id, name, kind) VALUES (1, 'bench-nmap', 'nmap_xml');
    INSERT INTO discovery_runs (source_id, state, counts, finished_at)
      VALUES (1, 'succeeded', '{"matched": 240000, "created": 0, "unmatched": 1200}', now());
    INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at)
      SELECT id, 1, 1, now() - (id % 45) * interval '1 day' FROM configuration_items
      WHERE type = 'server' AND id % 5 <> 0;
    INSERT INTO drift_findings (ci_id, attribute, expected, actual, run_id, last_run_id,
                                detected_at, observed_at, authorized)
      SELECT id, 'os', '"a"', '"b"', 1, 1, now() - (id % 14) * interval '1 day',
             now(), id % 3 = 0
      FROM configuration_items WHERE type = 'server' AND id % 50 = 0;
    ANALYZE configuration_items; ANALYZE discovery_sightings; ANALYZE drift_findings;)");
}

struct SqlRule {
  const char* key;
  const char* query;  // one row: passed, failed
};

// The baseline set as SQL over the same tables, each one query answering (passed, failed):
// for each rule the faster of a correlated (EXISTS per CI) and a set-based (join, GROUP BY)
// formulation as measured on the 1M-CI estate (application-runs-on-active: EXISTS 0.3 s, join
// 7.3 s; vm-one-hypervisor: EXISTS 7.9 s, GROUP BY 2.6-2.9 s; nothing-depends-on-retired:
// EXISTS 13.4 s, join 0.6-0.8 s).
const std::vector<SqlRule>& SqlRules() {
  static const std::vector<SqlRule> rules = {
      {"active-has-owner",
       "SELECT count(*) FILTER (WHERE coalesce(owner, '') <> ''), count(*) FILTER (WHERE "
       "coalesce(owner, '') = '') FROM configuration_items WHERE status IN ('active', "
       "'maintenance')"},
      {"service-reaches-application",
       "WITH RECURSIVE walk(root, ci, depth) AS (SELECT id, id, 0 FROM configuration_items WHERE "
       "type = 'business_service' AND status IN ('active', 'maintenance') UNION SELECT w.root, "
       "r.to_ci, w.depth + 1 FROM walk w JOIN relations r ON r.from_ci = w.ci AND r.type = "
       "'depends_on' WHERE w.depth < 3), ok AS (SELECT DISTINCT w.root FROM walk w JOIN "
       "configuration_items c ON c.id = w.ci WHERE w.depth > 0 AND c.type = 'application') "
       "SELECT (SELECT count(*) FROM ok), count(*) - (SELECT count(*) FROM ok) FROM "
       "configuration_items WHERE type = 'business_service' AND status IN ('active', "
       "'maintenance')"},
      {"application-runs-on-active",
       "SELECT count(*) FILTER (WHERE x), count(*) FILTER (WHERE NOT x) FROM (SELECT EXISTS "
       "(SELECT 1 FROM relations r JOIN configuration_items t ON t.id = r.to_ci WHERE r.from_ci "
       "= c.id AND r.type IN ('runs_on', 'hosted_on', 'member_of') AND t.type IN ('vm', "
       "'server', 'cluster') AND t.status IN ('active', 'maintenance')) x FROM "
       "configuration_items c WHERE c.type = 'application' AND c.status IN ('active', "
       "'maintenance')) s"},
      {"vm-one-hypervisor",
       "WITH h AS (SELECT r.from_ci, count(*) n FROM relations r JOIN configuration_items t ON "
       "t.id = r.to_ci AND t.type = 'server' WHERE r.type = 'hosted_on' GROUP BY r.from_ci) "
       "SELECT count(*) FILTER (WHERE h.n = 1), count(*) FILTER (WHERE h.n IS DISTINCT FROM 1) "
       "FROM configuration_items c LEFT JOIN h ON h.from_ci = c.id WHERE c.type = 'vm' AND "
       "c.status IN ('active', 'maintenance')"},
      {"server-seen-30-days",
       "WITH seen AS (SELECT ci_id, max(last_seen_at) at FROM discovery_sightings GROUP BY "
       "ci_id UNION ALL SELECT (b.block << 10) + k, d.sighted_at FROM discovery_sighting_blocks "
       "b JOIN discovery_sources d ON d.id = b.source_id, generate_series(0, 1023) k WHERE "
       "get_bit(b.bits, k) = 1), latest AS (SELECT ci_id, max(at) at FROM seen GROUP BY ci_id) "
       "SELECT count(*) FILTER (WHERE l.at >= now() - interval '30 days'), count(*) FILTER "
       "(WHERE l.at IS NULL OR l.at < now() - interval '30 days') FROM configuration_items c "
       "LEFT JOIN latest l ON l.ci_id = c.id WHERE c.type = 'server' AND c.status = 'active'"},
      {"unique-serial",
       "WITH k AS (SELECT id, lower(btrim(attributes ->> 'serial')) s FROM configuration_items "
       "WHERE type IN ('server', 'network_device') AND status IN ('planned', 'active', "
       "'maintenance') AND coalesce(attributes ->> 'serial', '') <> ''), d AS (SELECT s FROM k "
       "GROUP BY s HAVING count(*) > 1) SELECT count(*) FILTER (WHERE d.s IS NULL), count(*) "
       "FILTER (WHERE d.s IS NOT NULL) FROM k LEFT JOIN d ON d.s = k.s"},
      {"unique-mac",
       "WITH e AS (SELECT c.id, lower(regexp_replace(m, '[^[:alnum:]]', '', 'g')) m FROM "
       "configuration_items c, jsonb_array_elements_text(CASE jsonb_typeof(c.attributes -> "
       "'mac_addresses') WHEN 'array' THEN c.attributes -> 'mac_addresses' ELSE '[]' END) m "
       "WHERE c.type = 'server' AND c.status IN ('planned', 'active', 'maintenance')), d AS "
       "(SELECT m FROM e GROUP BY m HAVING count(DISTINCT id) > 1), f AS (SELECT DISTINCT id "
       "FROM e JOIN d USING (m)) SELECT (SELECT count(DISTINCT id) FROM e) - (SELECT count(*) "
       "FROM f), (SELECT count(*) FROM f)"},
      {"no-unauthorised-drift-7-days",
       "WITH bad AS (SELECT DISTINCT ci_id FROM drift_findings WHERE state = 'open' AND NOT "
       "authorized AND detected_at <= now() - interval '7 days') SELECT count(*) FILTER (WHERE "
       "bad.ci_id IS NULL), count(*) FILTER (WHERE bad.ci_id IS NOT NULL) FROM "
       "configuration_items c LEFT JOIN bad ON bad.ci_id = c.id"},
      {"retired-no-active-consumers",
       "WITH used AS (SELECT DISTINCT r.to_ci FROM configuration_items t JOIN relations r ON "
       "r.to_ci = t.id JOIN configuration_items f ON f.id = r.from_ci WHERE t.status = "
       "'retired' AND r.type IN ('depends_on', 'runs_on', 'hosted_on', 'member_of') AND "
       "f.status IN ('active', 'maintenance')) SELECT count(*) FILTER (WHERE used.to_ci IS "
       "NULL), count(*) FILTER (WHERE used.to_ci IS NOT NULL) FROM configuration_items c LEFT "
       "JOIN used ON used.to_ci = c.id WHERE c.status = 'retired'"},
      {"nothing-depends-on-retired",
       "WITH bad AS (SELECT DISTINCT r.from_ci FROM configuration_items t JOIN relations r ON "
       "r.to_ci = t.id WHERE t.status = 'retired' AND r.type IN ('depends_on', 'runs_on', "
       "'hosted_on', 'member_of')) SELECT count(*) FILTER (WHERE bad.from_ci IS NULL), count(*) "
       "FILTER (WHERE bad.from_ci IS NOT NULL) FROM configuration_items c LEFT JOIN bad ON "
       "bad.from_ci = c.id WHERE c.status IN ('active', 'maintenance')"},
      {"discovered-assets-registered",
       "SELECT coalesce(sum((r.counts ->> 'matched')::bigint + (r.counts ->> "
       "'created')::bigint), 0), coalesce(sum((r.counts ->> 'unmatched')::bigint), 0) FROM "
       "discovery_sources s JOIN LATERAL (SELECT counts FROM discovery_runs x WHERE x.source_id "
       "= s.id AND x.state = 'succeeded' AND NOT x.dry_run ORDER BY x.id DESC LIMIT 1) r ON "
       "true"},
      {"server-identified",
       "SELECT count(*) FILTER (WHERE x), count(*) FILTER (WHERE NOT x) FROM (SELECT "
       "coalesce(attributes ->> 'serial', '') <> '' OR coalesce(attributes ->> 'machine_id', "
       "'') <> '' OR coalesce(attributes ->> 'fqdn', '') <> '' OR coalesce(attributes ->> "
       "'hostname', '') <> '' x FROM configuration_items WHERE type = 'server' AND status IN "
       "('active', 'maintenance')) s"},
  };
  return rules;
}

struct RunFigures {
  double seconds = 0;
  json::object run;  // as the API shows it
};

// The audit worker's cache of the estate between runs of the present (--no-cache: none).
cmdb::store::AuditRepository::EstateCache estate_cache;
bool use_cache = true;

RunFigures Audit(const std::string& dsn) {
  DbSession work = DbSession::Connect(dsn);
  DbSession progress = DbSession::Connect(dsn);
  const cmdb::model::AuditRun queued = cmdb::store::AuditRepository(work).QueueRun(
      "baseline", std::nullopt, cmdb::model::AuditTrigger::kApi, "bench");
  const auto start = Clock::now();
  if (!cmdb::jobs::ExecuteAuditRun(work, progress, queued.id, {},
                                   use_cache ? &estate_cache : nullptr)) {
    std::fprintf(stderr, "audit run %lld failed\n", static_cast<long long>(queued.id));
  }
  RunFigures out;
  out.seconds = Since(start);
  out.run = cmdb::model::AuditRunToJson(*cmdb::store::AuditRepository(work).FindRun(queued.id));
  return out;
}

std::string Phases(const json::object& run) {
  const json::value& t = run.at("timings");
  if (!t.is_object()) return "";
  std::string out;
  for (const char* phase :
       {"rules", "estate", "prepare", "evaluate", "findings", "estate_cis", "estate_relations",
        "estate_sightings", "estate_drift_sources", "estate_changes", "estate_build",
        "findings_failing", "findings_read"}) {
    if (const json::value* v = t.as_object().if_contains(phase)) {
      char buf[64];
      if (!v->is_number()) continue;
      std::snprintf(buf, sizeof buf, "%s%s %.2f s", out.empty() ? "" : ", ", phase,
                    v->to_number<double>());
      out += buf;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  int sql_reps = 1;
  int repeat = 0;
  bool only_audit = false;  // --only-audit: the two runs, no SQL, import or series
  std::string data;         // --data DIR: keep the loaded cluster there (and reuse it)
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--only-audit") only_audit = true;
    if (flag == "--no-cache") use_cache = false;
    if (i + 1 >= argc) break;
    if (flag == "--cis") total = std::stoul(argv[++i]);
    if (flag == "--sql-reps") sql_reps = std::stoi(argv[++i]);
    if (flag == "--data") data = argv[++i];
    if (flag == "--repeat") repeat = std::stoi(argv[++i]);
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  std::string dir = data.empty() ? "/tmp/cmdbaudit-XXXXXX" : data;
  const bool reuse = !data.empty() && std::filesystem::exists(data + "/pgdata/PG_VERSION");
  if (data.empty() && mkdtemp(dir.data()) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    const std::string dsn = cluster.ConnectionString("cmdb");
    DbSession db = DbSession::Connect(dsn);
    cmdb::store::ApplyMigrations(db);
    auto start = Clock::now();
    if (!reuse) {
      cmdb::bench::LoadEstate(db, e);
      Enrich(db);
    }
    std::printf("%zu CIs, %zu relations (loaded and enriched in %.0f s)\n\n", e.nodes.size(),
                e.edges.size(), Since(start));

    // The audit: the first run opens the findings, the second finds them open.
    const RunFigures first = Audit(dsn);
    const RunFigures second = Audit(dsn);
    // The same run without the kept estate: what a run costs after a restart.
    const bool cached = use_cache;
    estate_cache.Clear();
    use_cache = false;
    const RunFigures cold = Audit(dsn);
    use_cache = cached;
    if (use_cache) Audit(dsn);  // the cache filled again for the re-audit below
    // One CI across every rule (GET /api/v1/cis/{id}/audit without HTTP): its neighbourhood
    // read, the rules compiled and evaluated.
    {
      cmdb::store::AuditRepository repo(db);
      const auto rules = repo.ListRules();
      std::printf("| one CI's audit (every rule) | CIs read | median of 5 |\n|---|---|---|\n");
      const std::pair<const char*, cmdb::model::CiId> samples[] = {
          {"a business service", e.first_service},
          {"an application", e.first_app},
          {"a VM", e.first_vm + 7},
          {"a hypervisor", e.first_hv + 3},
          {"the DNS hub (620k consumers)", e.storage_hub + 1}};
      for (const auto& [what, id] : samples) {
        std::vector<double> times;
        std::size_t size = 0;
        for (int rep = 0; rep < 5; ++rep) {
          const auto t = Clock::now();
          const cmdb::jobs::CiAudit audit = cmdb::jobs::EvaluateCi(db, id, rules);
          for (std::size_t r = 0; r < audit.compiled.size(); ++r) {
            std::vector<std::string> why;
            audit.evaluator->Evaluate(r, audit.index, &why);
          }
          size = audit.estate->size();
          times.push_back(Since(t) * 1000);
        }
        std::sort(times.begin(), times.end());
        std::printf("| %s | %zu | %.1f ms |\n", what, size, times[times.size() / 2]);
      }
      std::printf("\n");
    }

    if (only_audit) {
      // --repeat N: N more runs of the present (for a profile of the steady state).
      for (int rep = 0; rep < repeat; ++rep) {
        const RunFigures again = Audit(dsn);
        std::printf("again: %.2f s (%s)\n", again.seconds, Phases(again.run).c_str());
        if (rep + 1 == repeat) {
          std::printf("CPU seconds per rule: %s\n",
                      json::serialize(again.run.at("timings").at("evaluate_rules")).c_str());
        }
      }
      std::printf("first: %.2f s (%s)\nnext: %.2f s (%s)\nnext, estate read in full: %.2f s (%s)\n",
                  first.seconds, Phases(first.run).c_str(), second.seconds,
                  Phases(second.run).c_str(), cold.seconds, Phases(cold.run).c_str());
      cluster.Stop();
      if (data.empty()) std::filesystem::remove_all(dir);
      return 0;
    }
    // The same rules as SQL.
    std::vector<std::pair<std::string, double>> sql_times;
    double sql_total = 0;
    std::string mismatches;
    for (const SqlRule& rule : SqlRules()) {
      double best = 1e9;
      long long passed = 0, failed = 0;
      for (int rep = 0; rep < sql_reps; ++rep) {
        const auto t = Clock::now();
        cmdb::store::sql::Run(db, rule.query, soci::into(passed), soci::into(failed));
        best = std::min(best, Since(t));
      }
      sql_times.emplace_back(rule.key, best);
      sql_total += best;
      const json::object& counts = second.run.at("rules").at(rule.key).as_object();
      if (counts.at("pass").as_int64() != passed || counts.at("fail").as_int64() != failed) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "\n  %s: cmdb %lld/%lld, SQL %lld/%lld (pass/fail)",
                      rule.key, static_cast<long long>(counts.at("pass").as_int64()),
                      static_cast<long long>(counts.at("fail").as_int64()), passed, failed);
        mismatches += buf;
      }
    }
    std::printf("| baseline set (12 rules) | seconds | phases | vs SQL |\n|---|---|---|---|\n");
    std::printf("| cmdb, first run (opens %lld findings) | %.2f s | %s | %.1fx |\n",
                static_cast<long long>(
                    first.run.at("timings").at("findings_opened").to_number<std::int64_t>()),
                first.seconds, Phases(first.run).c_str(), sql_total / first.seconds);
    std::printf("| cmdb, next run (findings open, %s) | %.2f s | %s | %.1fx |\n",
                use_cache ? "estate kept from the run before" : "estate read in full",
                second.seconds, Phases(second.run).c_str(), sql_total / second.seconds);
    std::printf("| cmdb, next run (findings open, estate read in full) | %.2f s | %s | %.1fx |\n",
                cold.seconds, Phases(cold.run).c_str(), sql_total / cold.seconds);
    std::printf("| the same rules as SQL queries | %.2f s | |  |\n\n", sql_total);
    std::printf("| rule | SQL |\n|---|---|\n");
    for (const auto& [key, seconds] : sql_times)
      std::printf("| %s | %.2f s |\n", key.c_str(), seconds);
    std::printf("\ncounts agree with SQL: %s\n\n",
                mismatches.empty() ? "yes (every rule)" : mismatches.c_str());

    // Re-audit after an import of 1,000 CIs.
    json::array cis;
    for (int i = 0; i < 1000; ++i) {
      cis.push_back(
          json::object{{"type", "server"},
                       {"name", "new-" + std::to_string(i)},
                       {"owner", i % 10 == 0 ? json::value(nullptr) : json::value("team-new")},
                       {"attributes", json::object{{"serial", "NEW-" + std::to_string(i)}}}});
    }
    cmdb::import::ImportOptions options;
    start = Clock::now();
    cmdb::import::ImportDocument(db, json::object{{"cis", std::move(cis)}}, options);
    const double import_seconds = Since(start);
    const RunFigures after = Audit(dsn);
    std::printf("re-audit after importing 1,000 CIs (import %.2f s): %.2f s (%s)\n\n",
                import_seconds, after.seconds, Phases(after.run).c_str());

    // A twelve-month series: a year of nightly runs' score rows, then the API's read.
    cmdb::store::pg::ExecuteScript(db, R"(
      INSERT INTO audit_runs (id, set_name, as_of, evaluated_at, state, submitted_by)
        OVERRIDING SYSTEM VALUE
        SELECT 100000 + d, 'baseline', NULL, now() - d * interval '1 day', 'succeeded', 'bench'
        FROM generate_series(1, 365) d ON CONFLICT DO NOTHING;
      INSERT INTO audit_scores (run_id, set_name, at, group_kind, group_key, pass, fail,
                                not_applicable, error)
        SELECT 100000 + d, s.set_name, now() - d * interval '1 day', s.group_kind, s.group_key,
               s.pass, s.fail, s.not_applicable, s.error
        FROM generate_series(1, 365) d, audit_scores s WHERE s.run_id = (SELECT max(id) FROM
          audit_runs WHERE id < 100000) ON CONFLICT DO NOTHING;
      ANALYZE audit_scores;)");
    const cmdb::model::Timestamp now = cmdb::model::Timestamp::Now();
    const cmdb::model::Timestamp year_ago{now.micros - 366LL * 24 * 3600 * 1000000};
    for (const char* group : {"overall", "rule", "owner"}) {
      std::vector<double> times;
      std::size_t points = 0;
      for (int rep = 0; rep < 21; ++rep) {
        const auto t = Clock::now();
        const auto series =
            cmdb::store::AuditRepository(db).Scores("baseline", group, year_ago, now);
        json::array out;
        for (const auto& p : series) out.push_back(cmdb::model::AuditCountsToJson(p.counts));
        const std::string text = json::serialize(out);
        times.push_back(Since(t) * 1000);
        points = series.size();
      }
      std::sort(times.begin(), times.end());
      std::printf(
          "twelve-month score series, group_by=%s: %zu points, %.1f ms median (%.1f ms best)\n",
          group, points, times[times.size() / 2], times[0]);
    }
    cluster.Stop();
  }
  if (data.empty()) std::filesystem::remove_all(dir);
  return 0;
}
