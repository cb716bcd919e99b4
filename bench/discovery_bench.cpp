// Benchmark of the discovery issue, side by side in one run: reconcile N agent observations
// against an estate of N servers with 10% drift, 1% new and 1% missing, end to end (payload
// read from the queued run, parsed, reconciled, CIs registered, findings and decisions
// written, committed) through jobs::ExecuteDiscoveryRun, against a naive loop that asks
// PostgreSQL once per observation (by serial, through an expression index; statements
// prepared once) and writes each finding and last_seen_at row by row, in one transaction. Both run
// on their own copy of the same estate in a PostgreSQL cluster (fsync on) started in a temporary
// folder. Usage: discovery_bench [--cis N] [--naive 0|1]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <boost/json.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <unistd.h>

#include "discovery/observation.hpp"
#include "discovery/reconcile.hpp"
#include "import/importer.hpp"
#include "jobs/discovery_executor.hpp"
#include "model/json.hpp"
#include "store/ci_repository.hpp"
#include "store/db_pool.hpp"
#include "store/discovery_run_repository.hpp"
#include "store/discovery_source_repository.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "store/transaction.hpp"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

char Serial(int i, char* buffer) {
  std::snprintf(buffer, 16, "SN%07d", i);
  return 0;
}

void LoadEstate(cmdb::store::DbSession& sql, int n) {
  cmdb::store::ApplyMigrations(sql);
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
  cmdb::import::ImportOptions options;
  cmdb::import::ImportDocument(sql, json::object{{"cis", std::move(cis)}}, options);
  // Settle the estate: flush GIN pending lists and set hint bits now, so autovacuum does not
  // compete with the measured runs.
  cmdb::store::pg::ExecuteScript(sql, "VACUUM ANALYZE");
  cmdb::store::pg::ExecuteScript(sql, "CHECKPOINT");
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
void NaiveLoop(cmdb::store::DbSession& db, const std::string& payload, int& created,
               int& findings) {
  auto observations = cmdb::discovery::ParseAgentPayload(cmdb::model::ParseJson(payload));
  cmdb::store::Transaction tr(db);
  cmdb::store::CiRepository cis(db);
  soci::session& sql = db.sql();
  std::string serial;
  long long id = 0;
  std::string attributes;
  std::string attribute;
  std::string expected;
  std::string actual;
  // Prepared once each, executed per observation (and finding).
  soci::statement find =
      (sql.prepare << "SELECT id, attributes::text FROM configuration_items WHERE type = "
                      "'server' AND attributes->>'serial' = :serial",
       soci::use(serial), soci::into(id), soci::into(attributes));
  soci::statement finding =
      (sql.prepare << "INSERT INTO drift_findings (ci_id, attribute, expected, actual, run_id, "
                      "last_run_id, detected_at, observed_at) VALUES (:ci, :attribute, "
                      ":expected::jsonb, :actual::jsonb, 0, 0, now(), now())",
       soci::use(id), soci::use(attribute), soci::use(expected), soci::use(actual));
  soci::statement seen =
      (sql.prepare << "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, "
                      "last_seen_at) VALUES (:ci, 0, 0, now()) ON CONFLICT (ci_id, source_id) DO "
                      "UPDATE SET last_seen_at = now()",
       soci::use(id));
  for (const auto& o : observations) {
    serial = std::string(o.identity.at("serial").as_string());
    if (!find.execute(true)) {
      cmdb::model::ConfigurationItem draft;
      draft.type = "server";
      draft.name = o.name;
      draft.attributes = o.attributes;
      draft.attributes["serial"] = o.identity.at("serial");
      cis.Create(draft, {"bench", "discovery:naive"});
      ++created;
      continue;
    }
    json::object record = json::parse(attributes).as_object();
    for (const auto& [k, v] : o.attributes) {
      const json::value* have = record.if_contains(k);
      if (have != nullptr && cmdb::discovery::SameValue(*have, v)) continue;
      attribute = std::string(k);
      expected = have != nullptr ? cmdb::model::ToJsonText(*have) : "null";
      actual = cmdb::model::ToJsonText(v);
      finding.execute(true);
      ++findings;
    }
    seen.execute(true);
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
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/true, ""});
    cluster.Start();
    {
      cmdb::store::DbSession admin =
          cmdb::store::DbSession::Connect(cluster.ConnectionString("cmdb"));
      cmdb::store::pg::ExecuteScript(admin, "CREATE DATABASE naive");
    }
    auto t = Clock::now();
    cmdb::store::DbSession fast = cmdb::store::DbSession::Connect(cluster.ConnectionString("cmdb"));
    cmdb::store::DbSession naive =
        cmdb::store::DbSession::Connect(cluster.ConnectionString("naive"));
    LoadEstate(fast, n);
    LoadEstate(naive, n);
    // The naive loop gets the index it needs: without it every lookup is a scan, and the GIN
    // index's pending list (rows written since the last vacuum) is read in full by every
    // containment query, which makes the loop quadratic.
    cmdb::store::pg::ExecuteScript(
        naive, "CREATE INDEX ix_naive_serial ON configuration_items ((attributes->>'serial'))");
    const std::string payload = Payload(n);
    std::printf("estate: %d servers in each of two databases, loaded in %.1f s; payload %.1f MiB\n",
                n, Seconds(t), static_cast<double>(payload.size()) / (1024.0 * 1024.0));

    auto source = cmdb::store::DiscoverySourceRepository(fast).Create(
        cmdb::model::DiscoverySourceFromJson(json::parse(
            R"({"name": "agents", "kind": "agent", "config": {"on_unmatched": "create"}})")));
    cmdb::store::DiscoveryRunRepository store(fast);
    t = Clock::now();
    auto run = store.Enqueue(source.id, false, "application/json", payload);
    const double enqueue = Seconds(t);
    t = Clock::now();
    bool ok = cmdb::jobs::ExecuteDiscoveryRun(fast, run.id, [](std::int64_t, std::int64_t) {});
    const double execute = Seconds(t);
    auto done = store.Find(run.id);
    std::printf(
        "\ncmdb run (ExecuteDiscoveryRun): %6.2f s  %8.0f observations/s  (%s; queueing the "
        "payload: %.2f "
        "s)\n",
        execute, static_cast<double>(done->total.value_or(0)) / execute,
        ok ? "succeeded" : done->error.value_or("failed").c_str(), enqueue);
    std::printf("  counts: %s\n", cmdb::model::ToJsonText(done->counts).c_str());
    std::printf("  phases (s): %s\n", cmdb::model::ToJsonText(done->timings).c_str());
    // The same observations again: the steady state of a scheduled source (sightings are
    // updated in place, findings are still open, nothing is registered).
    auto again = store.Enqueue(source.id, false, "application/json", payload);
    t = Clock::now();
    ok = cmdb::jobs::ExecuteDiscoveryRun(fast, again.id, [](std::int64_t, std::int64_t) {}) && ok;
    const double second = Seconds(t);
    auto done_again = store.Find(again.id);
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
