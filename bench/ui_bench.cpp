// The web UI's server time per page on the reports benchmark's estate (1M CIs, 4.1M
// relations, a year of operations: run reports_bench --data DIR first), over HTTP with a
// signed-in session: each page asked `reps` times, the server's own time (Server-Timing) as
// p50 and p95. docs/benchmarks.md, "Web UI", records the figures.
//
//   ./build/release/bench/reports_bench --data /tmp/reportsdata   # once, to load the estate
//   ./build/release/bench/ui_bench --data /tmp/reportsdata [--reps 20]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_access.hpp"
#include "store/embedded_postgres.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/http_client.hpp"

namespace {

double ServerMs(const cmdb::testing::HttpResult& r) {
  const std::string timing = r.header("server-timing");
  const std::size_t at = timing.find("dur=");
  return at == std::string::npos ? -1 : std::stod(timing.substr(at + 4));
}

}  // namespace

int main(int argc, char** argv) {
  std::string data;
  int reps = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--data") data = argv[++i];
    if (flag == "--reps") reps = std::stoi(argv[++i]);
  }
  if (data.empty() || !std::filesystem::exists(data + "/pgdata/PG_VERSION")) {
    std::fprintf(stderr,
                 "ui_bench: --data DIR must hold the cluster reports_bench --data DIR left\n");
    return 2;
  }
  cmdb::store::EmbeddedPostgres cluster({data, /*durable=*/false, ""});
  cluster.Start();
  cmdb::testing::CmdbProcess server = cmdb::testing::StartCmdb(
      CMDB_BINARY,
      {"--listen", "127.0.0.1:0", "--database", cluster.ConnectionString("cmdb"),
       "--no-request-log", "--no-discovery-worker", "--no-import-worker", "--no-audit-worker"},
      false, cmdb::bench::BenchAccessEnvironment());
  if (server.port == 0) return 1;
  for (int i = 0; i < 600; ++i) {
    if (cmdb::testing::HttpRequest(server.port, "GET", "/ready").status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  cmdb::testing::HttpRequest(server.port, "GET", "/api/v1/cis/1/impact");  // the graph loaded
  const cmdb::testing::Headers session{
      {"Cookie", std::string("cmdb_session=") + cmdb::bench::kBenchToken}};
  const std::vector<std::pair<const char*, std::string>> pages{
      {"home", "/ui/"},
      {"CI search (q=app-1, 1M CIs)", "/ui/cis?q=app-1"},
      {"CI list by type", "/ui/cis?type=vm"},
      {"CI detail (an application)", "/ui/cis/300"},
      {"drift queue", "/ui/drift"},
      {"changes", "/ui/changes"},
      {"change review (with its graph)", "/ui/changes/19999"},
      {"incidents", "/ui/incidents"},
      {"incident with its trace", "/ui/incidents/99000"},
      {"audit dashboard", "/ui/audit"},
      {"knowledge queue", "/ui/knowledge"},
      {"quality review", "/ui/quality"},
      {"administration", "/ui/admin"},
      {"reports", "/ui/reports"},
      {"impact graph of an application (graph page)", "/ui/cis/300/impact"},
  };
  std::printf("| page | target | p50 | p95 | HTTP |\n|---|---|---|---|---|\n");
  for (const auto& [name, target] : pages) {
    std::vector<double> ms;
    int status = 0;
    for (int r = 0; r < reps; ++r) {
      const cmdb::testing::HttpResult result =
          cmdb::testing::HttpRequest(server.port, "GET", target, "", session);
      status = result.status;
      ms.push_back(ServerMs(result));
    }
    std::sort(ms.begin(), ms.end());
    const bool graph = target.find("/impact") != std::string::npos ||
                       target.find("/changes/") != std::string::npos;
    std::printf("| %s | %s | %.1f ms | %.1f ms | %d |\n", name, graph ? "bounded" : "≤ 50 ms",
                ms[ms.size() / 2], ms[ms.size() * 95 / 100], status);
  }
  cmdb::testing::StopCmdb(server);
  cluster.Stop();
  return 0;
}
