// Benchmark of the discovery issue, side by side in one run: reconcile N agent observations
// against an estate of N servers with 10% drift, 1% new and 1% missing, end to end (payload
// read from the queued run, parsed, reconciled, CIs registered, findings and decisions
// written, committed) through discovery::ExecuteRun, against a naive loop that asks
// PostgreSQL once per observation (by serial, through an expression index) and writes
// each finding and last_seen_at row by row, in one transaction. Both run on their own copy
// of the same estate in a PostgreSQL cluster (fsync on) started in a temporary folder.
// Usage: discovery_bench [--cis N] [--naive 0|1]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <boost/json.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <unistd.h>

#include "discovery/discovery_store.hpp"
#include "discovery/observation.hpp"
#include "discovery/reconcile.hpp"
#include "discovery/run_worker.hpp"
#include "model/ci_repository.hpp"
#include "model/db_migrations.hpp"
#include "model/db_query.hpp"
#include "model/embedded_postgres.hpp"
#include "model/importer.hpp"
#include "model/json.hpp"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using cmdb::model::P;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

char Serial(int i, char* buffer) {
  std::snprintf(buffer, 16, "SN%07d", i);
  return 0;
}

void LoadEstate(soci::session& sql, int n) {
  cmdb::model::ApplyMigrations(sql);
  json::array cis;
  cis.reserve(static_cast<std::size_t>(n));
  char serial[16];
  for (int i = 0; i < n; ++i) {
    Serial(i, serial);
    cis.push_back(json::object{{"type", "server"},
                               {"name", "srv-" + std::to_string(i)},
                               {"attributes", json::object{{"serial", serial},
                                                           {"hostname", "srv-" + std::to_string(i)},
                                                           {"os", "Debian"},
                                                           {"os_version", "12"},
                                                           {"cpu_count", 8},
                                                           {"memory_mb", 16384}}}});
  }
  cmdb::model::ImportOptions options;
  cmdb::model::ImportDocument(sql, json::object{{"cis", std::move(cis)}}, options);
  // Settle the estate: flush GIN pending lists and set hint bits now, so autovacuum does not
  // compete with the measured runs.
  cmdb::model::Query(sql, "VACUUM ANALYZE");
  cmdb::model::Query(sql, "CHECKPOINT");
}

// 99% of the estate (1% missing), every tenth of them with two drifted attributes, and 1% new.
std::string Payload(int n) {
  json::array items;
  char serial[16];
  for (int i = 0; i < n; ++i) {
    if (i % 100 == 99) continue;
    Serial(i, serial);
    const bool drift = i % 10 == 0;
    items.push_back(
        json::object{{"identity", json::object{{"serial", serial}}},
                     {"attributes", json::object{{"hostname", "srv-" + std::to_string(i)},
                                                 {"os", "Debian"},
                                                 {"os_version", drift ? "13" : "12"},
                                                 {"cpu_count", 8},
                                                 {"memory_mb", drift ? 32768 : 16384}}}});
  }
  for (int i = 0; i < n / 100; ++i) {
    Serial(n + i, serial);
    items.push_back(
        json::object{{"name", "new-" + std::to_string(i)},
                     {"identity", json::object{{"serial", serial}}},
                     {"attributes", json::object{{"os", "Debian"}, {"memory_mb", 4096}}}});
  }
  return cmdb::model::ToJsonText(json::object{{"items", std::move(items)}});
}

// One query per observation: find by serial, compare, write each finding and last_seen_at.
void NaiveLoop(soci::session& sql, const std::string& payload, int& created, int& findings) {
  auto observations = cmdb::discovery::ParseAgentPayload(cmdb::model::ParseJson(payload));
  cmdb::model::Transaction tr(sql);
  cmdb::model::CiRepository cis(sql);
  for (const auto& o : observations) {
    cmdb::model::PgResult r = cmdb::model::QueryPrepared(
        sql, "naive_find",
        "SELECT id, attributes::text FROM configuration_items WHERE type = 'server' AND "
        "attributes->>'serial' = $1",
        {P(std::string(o.identity.at("serial").as_string()))});
    if (r.rows() == 0) {
      cmdb::model::ConfigurationItem draft;
      draft.type = "server";
      draft.name = o.name;
      draft.attributes = o.attributes;
      draft.attributes["serial"] = o.identity.at("serial");
      cis.Create(draft, {"bench", "discovery:naive"});
      ++created;
      continue;
    }
    const std::int64_t id = r.Int(0, 0);
    json::object record = json::parse(r.Text(0, 1)).as_object();
    for (const auto& [k, v] : o.attributes) {
      const json::value* have = record.if_contains(k);
      if (have != nullptr && cmdb::discovery::SameValue(*have, v)) continue;
      cmdb::model::QueryPrepared(
          sql, "naive_finding",
          "INSERT INTO drift_findings (ci_id, attribute, expected, actual, run_id, last_run_id, "
          "detected_at, observed_at) VALUES ($1, $2, $3::jsonb, $4::jsonb, 0, 0, now(), now())",
          {P(id), P(std::string(k)),
           have != nullptr ? P(cmdb::model::ToJsonText(*have)) : cmdb::model::PgParam("null"),
           P(cmdb::model::ToJsonText(v))});
      ++findings;
    }
    cmdb::model::QueryPrepared(
        sql, "naive_seen",
        "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at) VALUES ($1, "
        "0, 0, now()) ON CONFLICT (ci_id, source_id) DO UPDATE SET last_seen_at = now()",
        {P(id)});
  }
  tr.Commit();
}

}  // namespace

int main(int argc, char** argv) {
  int n = 100000;
  bool naive_loop = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--cis") n = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--naive") naive_loop = std::string(argv[i + 1]) != "0";
  }
  char dir[] = "/tmp/cmdbdisco-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  int status = 0;
  {
    cmdb::model::EmbeddedPostgres cluster({dir, /*durable=*/true, ""});
    cluster.Start();
    {
      soci::session admin(soci::postgresql, cluster.ConnectionString("cmdb"));
      cmdb::model::Query(admin, "CREATE DATABASE naive");
    }
    auto t = Clock::now();
    soci::session fast(soci::postgresql, cluster.ConnectionString("cmdb"));
    soci::session naive(soci::postgresql, cluster.ConnectionString("naive"));
    LoadEstate(fast, n);
    LoadEstate(naive, n);
    // The naive loop gets the index it needs: without it every lookup is a scan, and the GIN
    // index's pending list (rows written since the last vacuum) is read in full by every
    // containment query, which makes the loop quadratic.
    cmdb::model::Query(
        naive, "CREATE INDEX ix_naive_serial ON configuration_items ((attributes->>'serial'))");
    const std::string payload = Payload(n);
    std::printf("estate: %d servers in each of two databases, loaded in %.1f s; payload %.1f MiB\n",
                n, Seconds(t), static_cast<double>(payload.size()) / (1024.0 * 1024.0));

    cmdb::discovery::DiscoveryStore store(fast);
    auto source = store.CreateSource(json::parse(
        R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})"));
    t = Clock::now();
    auto run = store.EnqueueRun(source.id, false, "application/json", payload);
    const double enqueue = Seconds(t);
    t = Clock::now();
    bool ok = cmdb::discovery::ExecuteRun(fast, run.id, [](std::int64_t, std::int64_t) {});
    const double execute = Seconds(t);
    auto done = store.FindRun(run.id);
    std::printf(
        "\ncmdb run (ExecuteRun):   %6.2f s  %8.0f observations/s  (%s; queueing the payload: %.2f "
        "s)\n",
        execute, static_cast<double>(done->total.value_or(0)) / execute,
        ok ? "succeeded" : done->error.value_or("failed").c_str(), enqueue);
    std::printf("  counts: %s\n", cmdb::model::ToJsonText(done->counts).c_str());
    std::printf("  phases (s): %s\n", cmdb::model::ToJsonText(done->timings).c_str());
    // The same observations again: the steady state of a scheduled source (sightings are
    // updated in place, findings are still open, nothing is registered).
    auto again = store.EnqueueRun(source.id, false, "application/json", payload);
    t = Clock::now();
    ok = cmdb::discovery::ExecuteRun(fast, again.id, [](std::int64_t, std::int64_t) {}) && ok;
    const double second = Seconds(t);
    auto done_again = store.FindRun(again.id);
    std::printf("cmdb run, same payload again: %6.2f s  %8.0f observations/s\n", second,
                static_cast<double>(done_again->total.value_or(0)) / second);
    std::printf("  phases (s): %s\n", cmdb::model::ToJsonText(done_again->timings).c_str());

    if (naive_loop) {
      int created = 0;
      int findings = 0;
      t = Clock::now();
      NaiveLoop(naive, payload, created, findings);
      const double loop = Seconds(t);
      std::printf(
          "naive loop (1 query/obs): %6.2f s  %8.0f observations/s  (created %d, findings %d)\n",
          loop, static_cast<double>(done->total.value_or(0)) / loop, created, findings);
      std::printf("speed-up: %.1fx\n", loop / execute);
    }
    status = ok ? 0 : 1;
  }
  std::filesystem::remove_all(dir);
  return status;
}
