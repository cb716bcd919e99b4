// Impact as of a past instant, over HTTP, on the synthetic estate (default 1M CIs, 4.1M
// relations) with one history version per CI and relation, as an import leaves them.
// - sequential: the same instant asked again and again (the JSON, then the picture, then a
//   colleague opening the same link): each answer's time;
// - concurrent: `--clients` requests at once, each for a different instant: answers, refusals
//   (503 with Retry-After), wall time and the server process's peak memory growth.
// Usage: as_of_bench [--cis N] [--repeats N] [--clients N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <libpq-fe.h>
#include <sys/resource.h>

#include "bench/bench_access.hpp"
#include "bench/synthetic_estate.hpp"
#include "model/timestamp.hpp"
#include "server/app.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

long PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// One version per CI and relation, valid from their creation: the history an import writes.
// A CI's and a relation's current version is its own row (0025_ci_current_versions.sql,
// 0023_relation_current_versions.sql): the rows the estate's COPY wrote are that history.
bool WriteVersions(const std::string& dsn) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  for (const char* statement : {"ANALYZE configuration_items", "ANALYZE relations"}) {
    if (!ok) break;
    PGresult* r = PQexec(conn, statement);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) std::fprintf(stderr, "%s: %s", statement, PQerrorMessage(conn));
    PQclear(r);
  }
  PQfinish(conn);
  return ok;
}

std::string ImpactAsOf(cmdb::model::CiId root, cmdb::model::Timestamp at) {
  return "/api/v1/cis/" + std::to_string(root) +
         "/impact?max_nodes=1000&as_of=" + cmdb::model::FormatTimestamp(at);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  int repeats = 5;
  int clients = 4;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--cis") total = std::stoul(argv[++i]);
    if (flag == "--repeats") repeats = std::stoi(argv[++i]);
    if (flag == "--clients") clients = std::stoi(argv[++i]);
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  std::string dir = "/tmp/cmdbasof-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  int failures = 0;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    const std::string dsn = cluster.ConnectionString("cmdb");
    {
      std::optional<cmdb::store::DbSession> db = cmdb::store::DbSession::Connect(dsn);
      cmdb::store::ApplyMigrations(*db);
      const auto t0 = Clock::now();
      cmdb::bench::LoadEstate(*db, e);
      if (!WriteVersions(dsn)) return 1;
      std::printf("loaded %zu CIs and %zu relations with their versions in %.1f s\n",
                  e.nodes.size(), e.edges.size(), Ms(t0) / 1000);
    }
    cmdb::server::ServeConfig config;
    cmdb::bench::WithBenchAccess(config);
    config.database = dsn;
    config.listen = "127.0.0.1:0";
    config.log_requests = false;
    config.discovery_worker = false;
    config.import_worker = false;
    cmdb::server::App app(config);
    app.Start();
    const cmdb::model::CiId root = e.first_core;  // a core switch: its closure is the estate
    // The current graph first, so its start-up load is not in the figures.
    cmdb::testing::HttpRequest(
        app.port(), "GET", "/api/v1/cis/" + std::to_string(root) + "/impact?max_nodes=1", "", {});
    std::this_thread::sleep_for(std::chrono::seconds{1});
    const cmdb::model::Timestamp at = cmdb::model::Timestamp::Now();

    std::printf("\nsequential, the same instant %d times:", repeats);
    for (int i = 0; i < repeats; ++i) {
      const auto t = Clock::now();
      cmdb::testing::HttpResult r =
          cmdb::testing::HttpRequest(app.port(), "GET", ImpactAsOf(root, at), "", {});
      std::printf(" %.0f ms", Ms(t));
      if (r.status != 200) {
        std::printf(" (HTTP %d)", r.status);
        ++failures;
      }
    }
    std::printf("\n");

    const long rss_before = PeakRssMb();
    std::vector<int> statuses(static_cast<std::size_t>(clients));
    std::vector<double> times(static_cast<std::size_t>(clients));
    std::vector<std::thread> threads;
    const auto wall = Clock::now();
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        const cmdb::model::Timestamp instant{at.micros - (c + 1) * 1000};  // all after the load
        const auto t = Clock::now();
        statuses[c] =
            cmdb::testing::HttpRequest(app.port(), "GET", ImpactAsOf(root, instant), "", {}).status;
        times[c] = Ms(t);
      });
    }
    for (std::thread& t : threads) t.join();
    const double wall_ms = Ms(wall);
    const auto answered = std::count(statuses.begin(), statuses.end(), 200);
    const auto refused = std::count(statuses.begin(), statuses.end(), 503);
    std::printf(
        "concurrent, %d different instants at once: %ld answered, %ld refused (503), "
        "%ld other; wall %.0f ms; slowest %.0f ms; peak RSS +%ld MB (process %ld MB)\n",
        clients, static_cast<long>(answered), static_cast<long>(refused),
        static_cast<long>(clients - answered - refused), wall_ms,
        *std::max_element(times.begin(), times.end()), PeakRssMb() - rss_before, PeakRssMb());
    app.Stop();
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}
