// Benchmarks of the changes-and-incidents issue on the synthetic estate (bench/
// synthetic_estate.hpp, 1M CIs by default) in a throwaway PostgreSQL cluster:
//   1. the collision check of one change against N open changes (10k by default): the
//      change's impact (its CIs failing together, over the in-memory graph) plus the indexed
//      collision query, for 200 random probe changes;
//   2. the trace of an incident on hub CIs (core switch, top-of-rack switch, hypervisor, the
//      storage hub everything depends on), with 2k recently completed changes as suspects.
// Usage: changes_bench [--cis N] [--changes N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <unistd.h>

#include "bench/synthetic_estate.hpp"
#include "model/json.hpp"
#include "reports/change_assessment.hpp"
#include "reports/incident_trace.hpp"
#include "store/change_repository.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/incident_repository.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using cmdb::model::CiId;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  int open_changes = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--cis") total = std::stoul(argv[i + 1]);
    if (std::string(argv[i]) == "--changes") open_changes = std::stoi(argv[i + 1]);
  }
  auto t = Clock::now();
  cmdb::bench::Estate e = cmdb::bench::Generate(total);
  auto graph =
      cmdb::graph::DependencyGraph::Build(e.nodes, e.edges, cmdb::bench::EstateRelationTypes());
  std::printf("estate: %zu CIs, %zu relations, graph built in %.1f s\n", e.nodes.size(),
              e.edges.size(), Ms(t) / 1000);
  std::mt19937_64 rng(7);
  // Changes touch applications, databases and VMs (1-3 of them), as real ones do.
  auto pick_ci = [&] {
    switch (rng() % 3) {
      case 0:
        return e.first_app + static_cast<CiId>(rng() % e.apps);
      case 1:
        return e.first_db + static_cast<CiId>(rng() % e.dbs);
      default:
        return e.first_vm + static_cast<CiId>(rng() % e.vms);
    }
  };
  const std::int64_t hour = 3600LL * 1000000;
  const std::int64_t now = cmdb::model::Timestamp::Now().micros;
  auto random_change = [&](std::int64_t id) {
    cmdb::model::Change c;
    c.id = id;
    c.title = "change " + std::to_string(id);
    const std::size_t n = 1 + rng() % 3;
    while (c.ci_ids.size() < n) {
      CiId ci = pick_ci();
      if (std::find(c.ci_ids.begin(), c.ci_ids.end(), ci) == c.ci_ids.end()) c.ci_ids.push_back(ci);
    }
    c.planned_start =
        cmdb::model::Timestamp{now + static_cast<std::int64_t>(rng() % (30 * 24)) * hour};
    c.planned_end = cmdb::model::Timestamp{c.planned_start.micros +
                                           (2 + static_cast<std::int64_t>(rng() % 7)) * hour};
    return c;
  };

  char dir[] = "/tmp/cmdbchanges-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    cmdb::store::DbSession sql = cmdb::store::DbSession::Connect(cluster.ConnectionString("cmdb"));
    cmdb::store::ApplyMigrations(sql);
    t = Clock::now();
    cmdb::bench::LoadEstate(sql, e);
    std::printf("loaded into PostgreSQL in %.1f s\n", Ms(t) / 1000);

    // Open changes (submitted, approved, in progress) with their impact sets, and 2,000
    // changes completed within the last 72 hours (the suspects of traces).
    t = Clock::now();
    cmdb::store::pg::CopyBuffer changes;
    cmdb::store::pg::CopyBuffer events;
    std::size_t impact_total = 0;
    const int completed = 2000;
    for (int i = 1; i <= open_changes + completed; ++i) {
      cmdb::model::Change c = random_change(i);
      std::string state = i > open_changes ? "completed"
                          : i % 3 == 0     ? "in_progress"
                          : i % 3 == 1     ? "approved"
                                           : "submitted";
      cmdb::graph::ImpactQuery q;
      q.root = c.ci_ids[0];
      q.also_failing.assign(c.ci_ids.begin() + 1, c.ci_ids.end());
      q.include_edges = false;
      q.max_nodes = 1000000;
      std::vector<CiId> impact;
      for (const auto& node : graph.Impact(q).nodes) impact.push_back(node.id);
      std::sort(impact.begin(), impact.end());
      impact_total += impact.size();
      changes.Int(c.id);
      changes.Field(c.title);
      changes.Field(state);
      changes.Field(cmdb::model::FormatTimestamp(c.planned_start));
      changes.Field(cmdb::model::FormatTimestamp(c.planned_end));
      changes.Field(cmdb::store::sql::IdArray(c.ci_ids));
      changes.Field(cmdb::store::sql::IdArray(impact));
      changes.Field("bench");
      changes.EndRow();
      if (state == "in_progress" || state == "completed") {
        events.Int(c.id);
        events.Field(cmdb::model::FormatTimestamp(cmdb::model::Timestamp{
            now - static_cast<std::int64_t>(rng() % (72 * 60)) * 60 * 1000000}));
        events.Field(state == "completed" ? "complete" : "start");
        events.Field(state);
        events.Field("bench");
        events.EndRow();
      }
    }
    cmdb::store::pg::CopyIn(sql,
                            "COPY changes (id, title, state, planned_start, planned_end, ci_ids, "
                            "impact_ci_ids, created_by) FROM STDIN",
                            changes);
    cmdb::store::pg::CopyIn(
        sql, "COPY change_events (change_id, at, action, to_state, by) FROM STDIN", events);
    cmdb::store::pg::ExecuteScript(
        sql,
        "SELECT setval(pg_get_serial_sequence('changes', 'id'), 100000); ANALYZE "
        "changes; ANALYZE change_events");
    std::printf(
        "%d open and %d completed changes (impact sets of %.1f CIs on average) in %.1f s\n\n",
        open_changes, completed, static_cast<double>(impact_total) / (open_changes + completed),
        Ms(t) / 1000);

    // 1. Collision checks.
    std::vector<double> impact_ms;
    std::vector<double> query_ms;
    std::vector<double> total_ms;
    std::size_t collisions = 0;
    for (int i = 0; i < 200; ++i) {
      cmdb::model::Change probe = random_change(1000000 + i);
      auto t0 = Clock::now();
      cmdb::store::FrozenAssessment impact = cmdb::reports::AssessChange(sql, probe, graph);
      const double a = Ms(t0);
      auto t1 = Clock::now();
      json::array found = cmdb::reports::ChangeCollisions(sql, probe, impact.impact_set);
      const double b = Ms(t1);
      collisions += found.size();
      impact_ms.push_back(a);
      query_ms.push_back(b);
      total_ms.push_back(a + b);
    }
    std::printf(
        "collision check of one change against %d open changes (200 probes, %.1f collisions each "
        "on average):\n",
        open_changes, static_cast<double>(collisions) / 200);
    std::printf("| | p50 | p95 | max |\n|---|---|---|---|\n");
    std::printf("| impact (graph, open drift, open incidents) | %.2f ms | %.2f ms | %.2f ms |\n",
                Percentile(impact_ms, 0.5), Percentile(impact_ms, 0.95),
                Percentile(impact_ms, 1.0));
    std::printf("| collision query | %.2f ms | %.2f ms | %.2f ms |\n", Percentile(query_ms, 0.5),
                Percentile(query_ms, 0.95), Percentile(query_ms, 1.0));
    std::printf("| **total** | **%.2f ms** | %.2f ms | %.2f ms |\n\n", Percentile(total_ms, 0.5),
                Percentile(total_ms, 0.95), Percentile(total_ms, 1.0));

    // 2. Traces of incidents on hub CIs.
    cmdb::store::IncidentRepository incidents(sql);
    struct Hub {
      const char* what;
      CiId id;
    };
    const std::vector<Hub> hubs = {{"an application (it depends on a lot)", e.first_app},
                                   {"a hypervisor", e.first_hv},
                                   {"a top-of-rack switch", e.first_tor},
                                   {"a core switch", e.first_core},
                                   {"the storage hub", e.storage_hub}};
    std::printf(
        "| trace of an incident on | services reached | CIs reached | suspects | best of 5 | "
        "median |\n");
    std::printf("|---|---|---|---|---|---|\n");
    cmdb::reports::TraceOptions options;
    options.current = &graph;
    options.current_since = cmdb::model::Timestamp{0};
    for (const Hub& h : hubs) {
      cmdb::model::FieldErrors errors;
      cmdb::model::Incident incident =
          incidents.Create(cmdb::model::IncidentFromJson(
                               json::parse(R"({"title": "down", "severity": 1, "ci_ids": [)" +
                                           std::to_string(h.id) + "]}"),
                               cmdb::model::Timestamp::Now(), errors),
                           {"bench", "api"});
      std::vector<double> runs;
      json::object trace;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = Clock::now();
        trace = cmdb::reports::TraceIncident(sql, incident, options);
        runs.push_back(Ms(t0));
      }
      std::printf("| %s | %zu | %lld | %zu | %.1f ms | %.1f ms |\n", h.what,
                  trace.at("services").as_array().size(),
                  static_cast<long long>(trace.at("reached_count").as_int64()),
                  trace.at("suspect_changes").as_array().size(), Percentile(runs, 0.0),
                  Percentile(runs, 0.5));
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
