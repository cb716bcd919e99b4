// Benchmarks of the foundation: CIs, history, import and HTTP, each side by side with its baseline
// in one run:
//   1. import of N CIs (10 attributes each) through POST /api/v1/import
//      vs COPY of the same rows into a bare table, and into a table with the indexes of
//      configuration_items (PostgreSQL's share alone: no triggers, no history, no cmdb);
//      then the same document again (the nightly sync: every CI unchanged), and once more
//      (the next night, against the identities the instance kept);
//   2. GET /api/v1/cis/{id} under wrk (keep-alive, 32 connections, random ids)
//      vs bare_server, a minimal Beast server returning a fixed body;
//   3. one page of 1000 CIs (GET /api/v1/cis?limit=1000), paged through the estate.
// It starts its own PostgreSQL cluster (fsync on) in a temporary folder, or uses --dsn.
// Usage: foundation_bench [--cis N] [--seconds S] [--connections C] [--dsn DSN]
//                         [--pool-size N] [--io-threads N]   (cmdb serve's flags)
#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_access.hpp"
#include "bench/wrk.hpp"
#include "server/app.hpp"
#include "store/embedded_postgres.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

using cmdb::bench::Wrk;
using cmdb::bench::WrkResult;

void Exec(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "%s: %s\n", sql.c_str(), PQerrorMessage(conn));
    std::_Exit(1);  // a benchmark's setup failed: nothing to clean up that matters
  }
  PQclear(r);
}

}  // namespace

int main(int argc, char** argv) {
  int cis = 100000;
  int seconds = 10;
  int connections = 32;
  std::string dsn;
  std::size_t pool = 0;  // cmdb serve's default
  std::size_t io_threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--cis") cis = std::stoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::stoi(argv[i + 1]);
    if (flag == "--connections") connections = std::stoi(argv[i + 1]);
    if (flag == "--dsn") dsn = argv[i + 1];
    if (flag == "--pool-size") pool = std::stoul(argv[i + 1]);
    if (flag == "--io-threads") io_threads = std::stoul(argv[i + 1]);
  }
  std::string dir = "/tmp/cmdbbench-XXXXXX";
  std::unique_ptr<cmdb::store::EmbeddedPostgres> cluster;
  if (dsn.empty()) {
    if (mkdtemp(dir.data()) == nullptr) return 1;
    cluster = std::make_unique<cmdb::store::EmbeddedPostgres>(
        cmdb::store::EmbeddedPostgresOptions{dir, /*durable=*/true, ""});
    cluster->Start();
    dsn = cluster->ConnectionString("cmdb");
  }
  cmdb::server::ServeConfig config;
  cmdb::bench::WithBenchAccess(config);
  config.database = dsn;
  config.listen = "127.0.0.1:0";
  config.pool_size = pool;
  config.io_threads = io_threads;
  config.log_requests = false;
  config.body_limit = std::size_t{512} * 1024 * 1024;
  config.read_timeout = std::chrono::seconds(600);
  cmdb::server::App app(config);
  app.Start();
  const std::uint16_t port = app.port();
  cmdb::testing::SetAnswerTimeout(600);  // an import of 1M CIs takes about a minute

  // --- 1. import vs COPY ---
  boost::json::array rows;
  std::string copy_data;
  for (int i = 0; i < cis; ++i) {
    std::string n = std::to_string(i);
    boost::json::object attrs{
        {"hostname", "host-" + n},
        {"fqdn", "host-" + n + ".example.net"},
        {"domain", "example.net"},
        {"ip", "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
                   std::to_string(i % 256)},
        {"os", "Debian GNU/Linux"},
        {"os_version", "12"},
        {"kernel", "6.1.0-18-amd64"},
        {"cpu_count", 4 + i % 29},
        {"memory_mb", 4096 * (1 + i % 16)},
        {"serial", "SN" + n}};
    copy_data.append(n).append("\tserver\thost-").append(n).append("\tplatform-team\t{prod}\t");
    copy_data.append(boost::json::serialize(attrs)).append("\n");
    rows.emplace_back(boost::json::object{{"type", "server"},
                                          {"name", "host-" + n},
                                          {"owner", "platform-team"},
                                          {"tags", {"prod"}},
                                          {"attributes", std::move(attrs)}});
  }
  const std::string body = boost::json::serialize(boost::json::object{{"cis", std::move(rows)}});
  // The baselines run first, on the idle cluster (after the import, autovacuum may be
  // merging its GIN pending lists).
  PGconn* conn = PQconnectdb(dsn.c_str());
  auto timed_copy = [&](const char* table) {
    const auto started = Clock::now();
    PQclear(PQexec(conn, (std::string("COPY ") + table +
                          " (id, type, name, owner, tags, attributes) FROM STDIN")
                             .c_str()));
    PQputCopyData(conn, copy_data.data(), static_cast<int>(copy_data.size()));
    PQputCopyEnd(conn, nullptr);
    PGresult* done = PQgetResult(conn);
    if (PQresultStatus(done) != PGRES_COMMAND_OK) {
      std::fprintf(stderr, "COPY into %s failed: %s\n", table, PQerrorMessage(conn));
      std::_Exit(1);
    }
    PQclear(done);
    return Seconds(started);
  };
  Exec(conn, "DROP TABLE IF EXISTS bench_bare_cis");
  Exec(conn,
       "CREATE TABLE bench_bare_cis (id bigint, type text, name text, owner text, tags text[], "
       "attributes jsonb)");
  const double copy_s = timed_copy("bench_bare_cis");
  Exec(conn, "DROP TABLE bench_bare_cis");
  // The same rows into a table with configuration_items' columns, defaults, checks and
  // indexes (primary key, type, owner, three GIN with their pending-list setting), without
  // its triggers or history: what PostgreSQL alone needs for the rows the import writes.
  Exec(conn, "DROP TABLE IF EXISTS bench_indexed_cis");
  Exec(conn,
       "CREATE TABLE bench_indexed_cis (LIKE configuration_items INCLUDING DEFAULTS INCLUDING "
       "CONSTRAINTS INCLUDING INDEXES)");
  const double indexed_copy_s = timed_copy("bench_indexed_cis");
  Exec(conn, "DROP TABLE bench_indexed_cis");
  Exec(conn, "CHECKPOINT");  // the import does not flush the baselines' pages
  auto t0 = Clock::now();
  cmdb::testing::HttpResult imported =
      cmdb::testing::HttpRequest(port, "POST", "/api/v1/import", body);
  const double import_s = Seconds(t0);
  if (imported.status != 200) {
    std::fprintf(stderr, "import failed: %d %s\n", imported.status,
                 imported.body.substr(0, 500).c_str());
    return 1;
  }
  // Let the reads below run against a maintained table instead of racing autovacuum (which
  // merges the GIN pending lists the import filled); the time is reported on its own.
  t0 = Clock::now();
  Exec(conn, "VACUUM ANALYZE configuration_items");
  Exec(conn, "VACUUM ANALYZE ci_versions");
  const double vacuum_s = Seconds(t0);
  // The document posted again: its answer, the client's seconds and the CIs left unchanged.
  struct Reimport {
    cmdb::testing::HttpResult answer;
    double seconds = 0;
    long long unchanged = -1;
  };
  auto reimport = [&](std::uint16_t to) {
    Reimport out;
    const auto started = Clock::now();
    out.answer = cmdb::testing::HttpRequest(to, "POST", "/api/v1/import", body);
    out.seconds = Seconds(started);
    if (out.answer.status == 200) out.unchanged = out.answer.json().at("unchanged").as_int64();
    return out;
  };
  // The nightly sync: the same document again, every CI unchanged. The instance kept the
  // type's identities and digests from the import that created the CIs
  // (import/import_cache.hpp).
  const Reimport reimported = reimport(port);
  // The next night: the same document once more, against what the re-import kept.
  const Reimport next_night = reimport(port);
  long long versions = 0;
  {
    PGresult* r = PQexec(conn, "SELECT count(*) FROM ci_history");
    versions = std::atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(conn);

  // --- 3. pages of 1000 ---
  std::vector<double> page_ms;
  std::string cursor;
  for (int p = 0; p < 100; ++p) {
    auto t = Clock::now();
    cmdb::testing::HttpResult page = cmdb::testing::HttpRequest(
        port, "GET", "/api/v1/cis?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor), "",
        {});
    page_ms.push_back(Seconds(t) * 1000);
    const auto& next = page.json().at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  std::sort(page_ms.begin(), page_ms.end());

  // --- 2. GET by id vs the bare server ---
  const std::string script =
      std::string(dir[0] == '/' && cluster ? dir : "/tmp") + "/random_ids.lua";
  {
    std::ofstream lua(script);
    lua << "math.randomseed(42)\nrequest = function()\n  return wrk.format('GET', "
           "'/api/v1/cis/' .. math.random(1, "
        << cis << "), {Authorization = 'Bearer " << cmdb::bench::kBenchToken << "'})\nend\n";
  }
  WrkResult ours = Wrk(port, seconds, connections, script);
  // How many reads the batched reader answered per query (the server's own counters).
  const std::string metrics = cmdb::testing::HttpRequest(port, "GET", "/metrics", "", {}).body;
  auto gauge = [&metrics](const std::string& name) {
    const std::size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + name.size() + 2));
  };
  const double batched_reads = gauge("cmdb_ci_reads_batched_total");
  const double read_batches = gauge("cmdb_ci_read_batches_total");
  pid_t bare = fork();
  if (bare == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execl(BARE_SERVER, BARE_SERVER, "18181", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(300000);
  WrkResult base = Wrk(18181, seconds, connections, script);
  kill(bare, SIGTERM);
  waitpid(bare, nullptr, 0);

  // The sync after a restart. The new instance builds what the imports kept in the
  // background as it starts (import/kept_warmup.hpp); the sync comes once it is done, as a
  // nightly sync comes hours after a deploy. Then the same without the warm-up: the instance
  // keeps nothing yet and the sync reads the type whole.
  // The audit the first import asked for (a minute after it) is left to the first instance:
  // on the restarted ones it would run in the middle of the measured sync.
  app.Stop();
  config.audit_worker = false;
  Reimport restarted;
  Reimport restarted_cold;
  double warmup_s = 0;
  {
    cmdb::server::App again(config);
    const auto started = Clock::now();
    again.Start();
    for (;;) {
      const std::string metrics =
          cmdb::testing::HttpRequest(again.port(), "GET", "/metrics", "", {}).body;
      if (metrics.find("\ncmdb_import_warmup_running 0\n") != std::string::npos) break;
      usleep(5000);
    }
    warmup_s = Seconds(started);
    restarted = reimport(again.port());
    again.Stop();
  }
  {
    cmdb::server::ServeConfig cold = config;
    cold.import_warmup = false;
    cmdb::server::App again(cold);
    again.Start();
    restarted_cold = reimport(again.port());
    again.Stop();
  }
  if (cluster) {
    cluster->Stop();
    std::filesystem::remove_all(dir);
  }

  std::printf("\ncmdb: --pool-size %zu (0 = default: 2 x cores) --io-threads %zu\n", pool,
              io_threads);
  std::printf("\n| benchmark | cmdb | baseline | ratio | target |\n|---|---|---|---|---|\n");
  std::printf(
      "| import %d CIs (10 attributes, history written) | %.2f s = %.0f CIs/s | COPY into a bare "
      "table: %.2f s = %.0f rows/s | %.1fx slower than COPY | >= 50k CIs/s |\n",
      cis, import_s, cis / import_s, copy_s, cis / copy_s, import_s / copy_s);
  std::printf(
      "| re-import of the same %d CIs, all unchanged (%lld), against what the import kept | "
      "%.2f s = %.0f CIs/s | - | - | >= 100k CIs/s |\n",
      cis, reimported.unchanged, reimported.seconds, cis / reimported.seconds);
  std::printf(
      "| the same again, identities kept by the instance, all unchanged (%lld) | %.2f s = %.0f "
      "CIs/s | - | - | >= 100k CIs/s |\n",
      next_night.unchanged, next_night.seconds, cis / next_night.seconds);
  std::printf(
      "| the same after a restart, against what the instance built as it started (start and "
      "warm-up: %.2f s), all unchanged (%lld) | %.2f s = %.0f CIs/s | the same without the "
      "warm-up, the type read whole: %.2f s = %.0f CIs/s | %.1fx faster | >= 100k CIs/s |\n",
      warmup_s, restarted.unchanged, restarted.seconds, cis / restarted.seconds,
      restarted_cold.seconds, cis / restarted_cold.seconds,
      restarted_cold.seconds / restarted.seconds);
  std::printf(
      "| GET /api/v1/cis/{id}, wrk -t1 -c%d %ds, random ids | %.0f req/s, p50 %.2f ms, p99 %.2f ms "
      "| bare Beast server: %.0f req/s, p50 %.2f ms, p99 %.2f ms | %.0f%% of bare | >= 10k req/s, "
      "p99 <= 10 ms |\n",
      connections, seconds, ours.requests_per_second, ours.p50_ms, ours.p99_ms,
      base.requests_per_second, base.p50_ms, base.p99_ms,
      100.0 * ours.requests_per_second / std::max(1.0, base.requests_per_second));
  std::printf(
      "| GET /api/v1/cis?limit=1000 (%zu pages) | p50 %.1f ms, max %.1f ms | - | - | <= 50 ms |\n",
      page_ms.size(), page_ms[page_ms.size() / 2], page_ms.back());
  std::printf("\nGET by id: %.0f reads answered by %.0f batched queries (%.1f per query)\n",
              batched_reads, read_batches, batched_reads / std::max(1.0, read_batches));
  std::printf("\nVACUUM ANALYZE after the import (GIN pending lists merged): %.2f s\n", vacuum_s);
  // The server's own time (Server-Timing: from the whole body read to the answer ready), beside
  // the client's: the difference is the body's and the answer's transfer.
  auto print_phases = [](const char* what, const cmdb::testing::HttpResult& answer) {
    if (answer.status != 200) return;
    std::printf("%s phases (s): %s; server %s\n", what,
                boost::json::serialize(answer.json().at("timings")).c_str(),
                answer.header("server-timing").c_str());
  };
  std::printf("history rows written by the import: %lld\n", versions);
  print_phases("import", imported);
  print_phases("re-import", reimported.answer);
  print_phases("next re-import", next_night.answer);
  print_phases("re-import after a restart and the warm-up", restarted.answer);
  print_phases("re-import after a restart without the warm-up", restarted_cold.answer);
  std::printf(
      "COPY of the same rows into a table with configuration_items' indexes (no triggers, no "
      "history): %.2f s = %.0f rows/s; the import is %.1fx that\n",
      indexed_copy_s, cis / indexed_copy_s, import_s / indexed_copy_s);
  if (ours.requests_per_second == 0) std::printf("\nwrk output:\n%s\n", ours.raw.c_str());
  return 0;
}
