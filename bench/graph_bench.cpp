// Impact traversal on a synthetic estate shaped like a real one: business services ->
// applications -> databases / VMs -> hypervisors -> top-of-rack and core switches, with
// clusters and shared hubs (DNS, storage). Side by side in one run with a bare breadth-first
// search over plain CSR arrays of the same edges (the lower bound for any traversal).
// With --load it also writes the estate into a throwaway PostgreSQL cluster and measures the
// start-up load of the graph from it, and the same closures as PostgreSQL recursive CTEs.
// Usage: graph_bench [--cis N] [--load | --start-up-only] [--http-requests N]
//   (default 1,000,000 CIs, ~4.1 relations per CI; 200 requests)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "bench/bench_access.hpp"
#include "bench/synthetic_estate.hpp"
#include "graph/dependency_graph.hpp"
#include "reports/graphviz_renderer.hpp"
#include "reports/impact_picture.hpp"
#include "server/app.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/graph_cache.hpp"
#include "store/graph_store.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/sql_client.hpp"

namespace {

using cmdb::bench::Estate;
using cmdb::bench::Generate;
using cmdb::model::CiId;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

long RssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// The baseline: BFS over plain CSR arrays of "failure spreads from x to y" edges.
struct BareCsr {
  std::vector<std::uint32_t> offsets, targets;
};

// Downward (what fails with x) or, with `up`, upward (what x needs): the same edges reversed.
BareCsr BuildBare(const Estate& e, const std::vector<cmdb::model::RelationType>& types,
                  bool up = false) {
  std::size_t n = e.nodes.size();
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spread;
  for (const auto& edge : e.edges) {
    cmdb::model::Propagation p = cmdb::model::Propagation::kNone;
    for (const auto& t : types) {
      if (t.name == edge.type) p = t.propagation;
    }
    auto from = static_cast<std::uint32_t>(edge.from - 1);
    auto to = static_cast<std::uint32_t>(edge.to - 1);
    if (p == cmdb::model::Propagation::kToFrom || p == cmdb::model::Propagation::kBoth)
      spread.emplace_back(to, from);
    if (p == cmdb::model::Propagation::kFromTo || p == cmdb::model::Propagation::kBoth)
      spread.emplace_back(from, to);
  }
  if (up) {
    for (auto& [a, b] : spread) std::swap(a, b);
  }
  BareCsr csr;
  csr.offsets.assign(n + 1, 0);
  for (auto& [a, b] : spread) ++csr.offsets[a + 1];
  for (std::size_t i = 0; i < n; ++i) csr.offsets[i + 1] += csr.offsets[i];
  csr.targets.resize(spread.size());
  std::vector<std::uint32_t> cursor(csr.offsets.begin(), csr.offsets.end() - 1);
  for (auto& [a, b] : spread) csr.targets[cursor[a]++] = b;
  return csr;
}

std::size_t BareBfs(const BareCsr& csr, std::uint32_t root) {
  std::vector<bool> seen(csr.offsets.size() - 1, false);
  std::vector<std::uint32_t> queue{root};
  seen[root] = true;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    std::uint32_t x = queue[head];
    for (std::uint32_t s = csr.offsets[x]; s < csr.offsets[x + 1]; ++s) {
      std::uint32_t y = csr.targets[s];
      if (!seen[y]) {
        seen[y] = true;
        queue.push_back(y);
      }
    }
  }
  return queue.size();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  bool load = false;
  bool skip_cte = false;  // --start-up-only: the PostgreSQL loads, no CTEs and no HTTP
  int http_requests = 200;
  int reps = 5;  // each traversal is timed this many times, and the best kept
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--cis" && i + 1 < argc) total = std::stoul(argv[++i]);
    if (std::string(argv[i]) == "--load") load = true;
    if (std::string(argv[i]) == "--start-up-only") load = skip_cte = true;
    if (std::string(argv[i]) == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    if (std::string(argv[i]) == "--http-requests" && i + 1 < argc)
      http_requests = std::stoi(argv[++i]);
  }
  const std::vector<cmdb::model::RelationType> types = cmdb::bench::EstateRelationTypes();
  auto t0 = Clock::now();
  Estate e = Generate(total);
  std::printf("estate: %zu CIs, %zu relations (generated in %.0f ms)\n", e.nodes.size(),
              e.edges.size(), Ms(t0));
  long rss_before = RssKb();
  t0 = Clock::now();
  const std::size_t edge_count = e.edges.size();
  auto graph = cmdb::graph::DependencyGraph::Build(e.nodes, e.edges, types);
  double build_ms = Ms(t0);
  long rss_after = RssKb();
  {
    // The graph carrying the largest delta it may carry: while writes stream in, a merge
    // waits up to GraphCacheOptions::merge_after_at_most changes (100,000). They are applied
    // in versions of 500 as a busy instance applies them — nine in ten relations added, one
    // in ten removed — and the resident growth of the arrays plus the delta per relation is
    // measured.
    auto current = std::make_shared<const cmdb::graph::DependencyGraph>(
        cmdb::graph::DependencyGraph::Build(e.nodes, e.edges, types));
    const long rss_built = RssKb();
    std::uint64_t state = 88172645463325252ULL;  // xorshift: the same changes every run
    auto next = [&state] {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      return state;
    };
    cmdb::model::RelationId next_id = 0;
    for (const auto& edge : e.edges) next_id = std::max(next_id, edge.id);
    const auto kChanges = static_cast<int>(cmdb::store::GraphCacheOptions{}.merge_after_at_most);
    for (int batch = 0; batch < kChanges / 500; ++batch) {
      cmdb::graph::GraphChanges changes;
      for (int k = 0; k < 500; ++k) {
        if (k % 10 == 9) {
          changes.relation_ids.push_back(e.edges[next() % e.edges.size()].id);  // removed
          continue;
        }
        cmdb::graph::GraphEdge added;
        added.id = ++next_id;
        added.from = e.nodes[next() % e.nodes.size()].id;
        added.to = e.nodes[next() % e.nodes.size()].id;
        added.type = "depends_on";
        changes.relation_ids.push_back(added.id);
        changes.relations.push_back(std::move(added));
      }
      current = std::make_shared<const cmdb::graph::DependencyGraph>(
          current->WithChanges(std::move(changes), types));
    }
    const long rss_delta = RssKb();
    // One more relation applied to the graph carrying that delta, as a writer's Apply does
    // (each from the same version: what one write costs on a busy graph).
    std::vector<double> one_us;
    for (int k = 0; k < 200; ++k) {
      cmdb::graph::GraphChanges changes;
      cmdb::graph::GraphEdge added;
      added.id = next_id + 1 + k;
      added.from = e.nodes[next() % e.nodes.size()].id;
      added.to = e.nodes[next() % e.nodes.size()].id;
      added.type = "depends_on";
      changes.relation_ids.push_back(added.id);
      changes.relations.push_back(std::move(added));
      const auto t = Clock::now();
      const auto one = current->WithChanges(std::move(changes), types);
      one_us.push_back(Ms(t) * 1000);
    }
    std::sort(one_us.begin(), one_us.end());
    std::printf("one relation applied beside that delta: p50 %.0f us, p95 %.0f us\n",
                one_us[one_us.size() / 2], one_us[one_us.size() * 95 / 100]);
    std::printf(
        "graph with a delta of %zu changes: resident growth %.0f MB over the bare build "
        "(peak, every version of the 100 included) = %.0f bytes per relation for arrays and "
        "delta together\n",
        current->delta_size(), static_cast<double>(rss_delta - rss_built) / 1024.0,
        static_cast<double>(rss_after - rss_before + (rss_delta - rss_built)) * 1024.0 /
            static_cast<double>(edge_count));
  }
  BareCsr bare = BuildBare(e, types);
  BareCsr bare_up = BuildBare(e, types, /*up=*/true);
  std::printf(
      "graph build: %.0f ms; resident growth %.0f MB = %.0f bytes per relation (CI names "
      "included)\n\n",
      build_ms, static_cast<double>(rss_after - rss_before) / 1024.0,
      static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(edge_count));
  struct Root {
    const char* what;
    CiId id;
    bool up = false;  // upstream: what the root needs
  };
  // Downstream closures from a handful of CIs to the whole estate, then upstream ones (what
  // a CI needs, redundancy aside) from a handful to ~100k. roots[3] is the HTTP test's root.
  std::vector<Root> roots = {{"a VM", e.first_vm + 17},
                             {"a hypervisor", e.first_hv + 17},
                             {"a top-of-rack switch", e.first_tor + 17},
                             {"a core switch", e.first_core + 1},
                             {"the storage hub", e.storage_hub},
                             {"up: a VM", e.first_vm + 17, true},
                             {"up: a cluster", e.first_cluster + 17, true},
                             {"up: an application", e.first_app + 17, true},
                             {"up: a business service", e.first_service + 17, true}};
  std::printf(
      "| root | CIs reached | cmdb Impact() with edges | without edges | bare CSR BFS (reached) | "
      "ratio (without edges) |\n|---|---|---|---|---|---|\n");
  for (const Root& r : roots) {
    cmdb::graph::ImpactQuery q;
    q.root = r.id;
    q.direction = r.up ? cmdb::graph::ImpactDirection::kUp : cmdb::graph::ImpactDirection::kDown;
    q.max_nodes = 10000000;
    double best = 1e18;
    double best_nodes_only = 1e18;
    std::size_t reached = 0;
    for (int rep = 0; rep < reps; ++rep) {
      q.include_edges = true;
      auto t = Clock::now();
      auto result = graph.Impact(q);
      best = std::min(best, Ms(t));
      reached = result.nodes.size();
      q.include_edges = false;
      t = Clock::now();
      auto nodes_only = graph.Impact(q);
      best_nodes_only = std::min(best_nodes_only, Ms(t));
    }
    double bare_best = 1e18;
    std::size_t bare_reached = 0;
    for (int rep = 0; rep < reps; ++rep) {
      auto t = Clock::now();
      bare_reached = BareBfs(r.up ? bare_up : bare, static_cast<std::uint32_t>(r.id - 1));
      bare_best = std::min(bare_best, Ms(t));
    }
    std::printf("| %s | %zu | %.3f ms | %.3f ms | %.3f ms (%zu) | %.1fx |\n", r.what, reached, best,
                best_nodes_only, bare_best, bare_reached,
                best_nodes_only / std::max(bare_best, 1e-6));
  }
  // Render times: impacts of 100, 1k and 10k CIs drawn as SVG (folding keeps the picture
  // bounded whatever the request asks for).
  {
    cmdb::reports::GraphvizRenderer renderer;
    std::printf("\n| impact size | picture nodes | render SVG |\n|---|---|---|\n");
    for (std::size_t size : {100U, 1000U, 10000U}) {
      cmdb::graph::ImpactQuery q;
      q.root = e.first_core + 1;
      q.max_nodes = size;
      auto result = graph.Impact(q);
      auto t = Clock::now();
      auto picture = cmdb::reports::BuildImpactPicture(result, graph, q.root);
      std::string svg = renderer.Render(picture, cmdb::reports::RenderFormat::kSvg);
      std::printf("| %zu CIs | %zu | %.0f ms (%zu KB) |\n", result.nodes.size(),
                  picture.nodes.size(), Ms(t), svg.size() / 1024);
    }
  }
  if (!load) return 0;

  // --- PostgreSQL: start-up load of the graph, and recursive CTEs over the same tables ---
  std::string dir = "/tmp/cmdbgraph-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    std::optional<cmdb::store::DbSession> connection =
        cmdb::store::DbSession::Connect(cluster.ConnectionString("cmdb"));
    cmdb::store::DbSession& sql = *connection;
    cmdb::store::ApplyMigrations(sql);
    t0 = Clock::now();
    cmdb::bench::LoadEstate(sql, e);
    std::printf("\nloaded %zu CIs and %zu relations into PostgreSQL in %.1f s\n", e.nodes.size(),
                e.edges.size(), Ms(t0) / 1000);
    double load_best = 1e18;
    for (int rep = 0; rep < 3; ++rep) {
      auto t = Clock::now();
      auto loaded = cmdb::store::LoadDependencyGraph(sql);
      load_best = std::min(load_best, Ms(t));
      if (loaded.edge_count() != e.edges.size()) std::printf("edge count mismatch\n");
    }
    std::printf("start-up load of the graph from PostgreSQL (COPY, parse, build): %.2f s\n",
                load_best / 1000);
    // The same start-up from a stored snapshot (one value read in binary, the change log
    // consulted, rebuilt in memory), and the update of a loaded graph after writes, side by
    // side with the full read above.
    {
      using cmdb::store::LoadGraph;
      using cmdb::store::VersionedGraph;
      auto best_of = [&](int reps, auto&& f) {
        double best = 1e18;
        for (int rep = 0; rep < reps; ++rep) {
          auto t = Clock::now();
          f();
          best = std::min(best, Ms(t));
        }
        return best;
      };
      VersionedGraph full;
      const double full_ms = best_of(3, [&] { full = LoadGraph(sql, nullptr, "", false); });
      double store_ms = best_of(1, [&] {
        if (!cmdb::store::StoreGraphSnapshot(sql, *full.graph, full.snapshot)) {
          std::printf("snapshot not stored\n");
        }
      });
      cmdb::testing::SqlResult size =
          cmdb::testing::Query(sql, "SELECT octet_length(data) FROM graph_snapshots");
      VersionedGraph started;
      const double stored_ms = best_of(3, [&] { started = LoadGraph(sql, nullptr, "", true); });
      if (started.kind != VersionedGraph::Kind::kStored ||
          started.graph->edge_count() != full.graph->edge_count()) {
        std::printf("start from the snapshot went wrong\n");
      }
      // 1,000 new relations and 100 renamed CIs written after the snapshot.
      cmdb::store::pg::ExecuteScript(
          sql,
          "SELECT setval(pg_get_serial_sequence('relations', 'id'), (SELECT max(id) FROM "
          "relations)); "
          "INSERT INTO relations (type, from_ci, to_ci) SELECT 'depends_on', g, g + 7 FROM "
          "generate_series(1, 1000) g ON CONFLICT DO NOTHING; UPDATE configuration_items SET "
          "name = name || '-renamed' WHERE id <= 100");
      const double stored_changed_ms =
          best_of(3, [&] { started = LoadGraph(sql, nullptr, "", true); });
      // One more relation: the running instance's update versus reading everything again.
      cmdb::store::pg::ExecuteScript(
          sql,
          "INSERT INTO relations (type, from_ci, to_ci) VALUES ('runs_on', "
          "20, 30) ON CONFLICT DO NOTHING");
      VersionedGraph updated;
      const double update_ms = best_of(
          1, [&] { updated = LoadGraph(sql, started.graph.get(), started.snapshot, false); });
      const double reread_ms = best_of(1, [&] { LoadGraph(sql, nullptr, "", false); });
      std::printf(
          "start-up from the stored snapshot (%.0f MB, stored in %.2f s): %.2f s with no change "
          "since, %.2f s with 1,100 changed CIs and relations (%zu re-read) — full read %.2f s\n"
          "update of the loaded graph after one new relation: %.2f ms (%zu re-read) — full "
          "re-read %.2f s\n\n",
          static_cast<double>(size.Int(0, 0)) / 1e6, store_ms / 1000, stored_ms / 1000,
          stored_changed_ms / 1000, started.changes, full_ms / 1000, update_ms, updated.changes,
          reread_ms / 1000);
      // The CTEs below must walk the graph the in-memory traversal walks: drop the relations
      // written for the update measurements (they tie services and applications together).
      cmdb::store::pg::ExecuteScript(sql, "DELETE FROM relations WHERE id > " +
                                              std::to_string(e.edges.size()) +
                                              "; ANALYZE relations");
    }
    if (skip_cte) {
      connection.reset();
      cluster.Stop();
      std::filesystem::remove_all(dir);
      return 0;
    }
    // Both sides best of a few runs: the CTE up to three times while it takes under 2 s, the
    // traversals five times; the first (cold) Impact() right after the CTE is shown as well.
    std::printf(
        "| root | recursive CTE (depth <= 12), best of <= 3 | CIs | bare CSR BFS, best of 5 | "
        "cmdb Impact(), first call | best of 5 | CTE / Impact (best) |\n"
        "|---|---|---|---|---|---|---|\n");
    // The closure as a depth-bounded recursive CTE: downstream, a relation is followed from
    // the end whose failure spreads to the other end; upstream, the same relations the other
    // way.
    auto closure_cte = [](bool up) {
      const std::string spreads_to_from =
          "r.type IN ('depends_on', 'runs_on', 'hosted_on', "
          "'connected_to')";
      const std::string spreads_from_to = "r.type IN ('member_of', 'contains', 'connected_to')";
      const std::string near = up ? "r.from_ci" : "r.to_ci";
      const std::string far = up ? "r.to_ci" : "r.from_ci";
      return "WITH RECURSIVE closure(id, depth) AS (SELECT $1::bigint, 0 UNION SELECT CASE WHEN " +
             near + " = i.id THEN " + far + " ELSE " + near +
             " END, i.depth + 1 FROM closure i JOIN relations r ON (" + near + " = i.id AND " +
             spreads_to_from + ") OR (" + far + " = i.id AND " + spreads_from_to +
             ") WHERE i.depth < 12) SELECT count(DISTINCT id) FROM closure";
    };
    const std::string cte = closure_cte(false);
    const std::string cte_up = closure_cte(true);
    cmdb::store::pg::ExecuteScript(sql, "SET statement_timeout = '300s'");
    for (const Root& r : roots) {
      double cte_ms = 1e18;
      std::string cte_reached;
      for (int rep = 0; rep < 3 && (rep == 0 || cte_ms < 2000); ++rep) {
        auto t = Clock::now();
        cmdb::testing::SqlResult result =
            cmdb::testing::Query(sql, r.up ? cte_up : cte, {std::to_string(r.id)});
        cte_ms = std::min(cte_ms, Ms(t));
        cte_reached = result.Text(0, 0);
      }
      cmdb::graph::ImpactQuery q;
      q.root = r.id;
      q.direction = r.up ? cmdb::graph::ImpactDirection::kUp : cmdb::graph::ImpactDirection::kDown;
      q.max_nodes = 10000000;
      q.include_edges = false;
      double first_ms = 0;
      double impact_ms = 1e18;
      double bare_ms = 1e18;
      for (int rep = 0; rep < 5; ++rep) {
        auto t = Clock::now();
        graph.Impact(q);
        impact_ms = std::min(impact_ms, Ms(t));
        if (rep == 0) first_ms = impact_ms;
        t = Clock::now();
        BareBfs(r.up ? bare_up : bare, static_cast<std::uint32_t>(r.id - 1));
        bare_ms = std::min(bare_ms, Ms(t));
      }
      std::printf("| %s | %.1f ms | %s | %.3f ms | %.3f ms | %.3f ms | %.0fx |\n", r.what, cte_ms,
                  cte_reached.c_str(), bare_ms, first_ms, impact_ms,
                  cte_ms / std::max(impact_ms, 1e-3));
    }
    // HTTP: a 1k-node impact (the core switch's closure capped at 1,000 CIs) end to end
    // through a cmdb server on this database, one request at a time.
    {
      cmdb::server::ServeConfig config;
      cmdb::bench::WithBenchAccess(config);
      config.database = cluster.ConnectionString("cmdb");
      config.listen = "127.0.0.1:0";
      config.log_requests = false;
      cmdb::server::App app(config);
      app.Start();
      const std::string target =
          "/api/v1/cis/" + std::to_string(roots[3].id) + "/impact?max_nodes=1000";
      std::vector<double> times;
      std::vector<double> server_times;  // the server's own figure, from its Server-Timing
      std::size_t body_bytes = 0;
      for (int i = 0; i < http_requests + 20; ++i) {
        auto t = Clock::now();
        cmdb::testing::HttpResult r = cmdb::testing::HttpRequest(app.port(), "GET", target, "", {});
        if (i >= 20) {  // the first ones wait for the start-up load
          times.push_back(Ms(t));
          server_times.push_back(std::stod(r.header("server-timing").substr(8)));
          body_bytes = r.body.size();
        }
        if (r.status != 200) std::printf("HTTP %d\n", r.status);
      }
      std::sort(times.begin(), times.end());
      std::sort(server_times.begin(), server_times.end());
      std::printf(
          "\nGET impact of 1,000 CIs over HTTP (%d sequential requests, a new connection each): "
          "end to end p50 %.2f ms, p99 %.2f ms; server time p50 %.2f ms, p99 %.2f ms; %zu bytes\n",
          http_requests, times[times.size() / 2], times[times.size() * 99 / 100],
          server_times[server_times.size() / 2], server_times[server_times.size() * 99 / 100],
          body_bytes);
      app.Stop();
    }
    connection.reset();
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
