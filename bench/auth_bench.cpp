// What authentication costs the read path: GET /api/v1/cis/{id} under wrk (keep-alive, random
// ids) with a Bearer token, on this tree's `cmdb serve`, side by side in one run with a
// baseline binary built from the commit before access control (which ignores the header).
// Each server runs as its own process on its own database of the same cluster, with the same
// estate; the rounds alternate between them so both see the same machine.
// Usage: auth_bench --baseline /path/to/old/cmdb [--cis N] [--seconds S] [--connections C]
//                   [--rounds R] [--binary OTHER] [--order base-first|ours-first]
// --binary: another build in this tree's place (an A/A run of the noise); --order: which
// server is started, loaded and given the first database first (the bench's own bias).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <unistd.h>

#include "bench/bench_access.hpp"
#include "bench/wrk.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/sql.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using cmdb::bench::Wrk;
using cmdb::bench::WrkResult;

// CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double utime = 0;
  double stime = 0;
  for (int i = 3; fields >> field; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string baseline;
  std::string binary = CMDB_BINARY;  // --binary: another build in its place (an A/A run)
  std::string order = "base-first";  // --order ours-first: which server starts and loads first
  int cis = 100000;
  int seconds = 10;
  int connections = 32;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--baseline") baseline = argv[i + 1];
    if (flag == "--binary") binary = argv[i + 1];
    if (flag == "--order") order = argv[i + 1];
    if (flag == "--cis") cis = std::stoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::stoi(argv[i + 1]);
    if (flag == "--connections") connections = std::stoi(argv[i + 1]);
    if (flag == "--rounds") rounds = std::stoi(argv[i + 1]);
  }
  if (baseline.empty() || !std::filesystem::exists(baseline)) {
    std::fprintf(stderr,
                 "usage: auth_bench --baseline OLD_CMDB [--cis N] [--seconds S] "
                 "[--connections C] [--rounds R]\n(build the commit before access control, e.g. "
                 "git worktree add /tmp/base cc25104 && cmake -S /tmp/base -B /tmp/base/build "
                 "-G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/base/build "
                 "--target cmdb)\n");
    return 2;
  }
  std::string dir = "/tmp/cmdbauthbench-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  std::filesystem::permissions(dir, std::filesystem::perms::all,
                               std::filesystem::perm_options::add);
  cmdb::store::EmbeddedPostgres cluster(cmdb::store::EmbeddedPostgresOptions{dir, true, ""});
  cluster.Start();
  {
    cmdb::store::DbSession admin =
        cmdb::store::DbSession::Connect(cluster.ConnectionString("postgres"));
    cmdb::store::sql::Execute(admin, "CREATE DATABASE bench_first");
    cmdb::store::sql::Execute(admin, "CREATE DATABASE bench_second");
  }
  const std::vector<std::string> flags = {"--listen",
                                          "127.0.0.1:0",
                                          "--no-request-log",
                                          "--no-discovery-worker",
                                          "--no-import-worker",
                                          "--body-limit",
                                          "1073741824",
                                          "--read-timeout",
                                          "600"};
  auto args_for = [&](const std::string& database) {
    std::vector<std::string> args = flags;
    args.emplace_back("--database");
    args.emplace_back(cluster.ConnectionString(database));
    return args;
  };
  const std::vector<std::string> access = cmdb::bench::BenchAccessEnvironment();
  // The server started (and loaded) first gets the first database; --order says which.
  const bool ours_first = order == "ours-first";
  cmdb::testing::CmdbProcess first =
      ours_first ? cmdb::testing::StartCmdb(binary, args_for("bench_first"), false, access)
                 : cmdb::testing::StartCmdb(baseline, args_for("bench_first"));
  cmdb::testing::CmdbProcess second =
      ours_first ? cmdb::testing::StartCmdb(baseline, args_for("bench_second"))
                 : cmdb::testing::StartCmdb(binary, args_for("bench_second"), false, access);
  cmdb::testing::CmdbProcess& base = ours_first ? second : first;
  cmdb::testing::CmdbProcess& ours = ours_first ? first : second;
  if (base.port == 0 || ours.port == 0) {
    std::fprintf(stderr, "a server did not start\n");
    return 1;
  }

  // The same estate in both: N servers with ten attributes each.
  boost::json::array rows;
  for (int i = 0; i < cis; ++i) {
    const std::string n = std::to_string(i);
    rows.emplace_back(boost::json::object{{"type", "server"},
                                          {"name", "host-" + n},
                                          {"owner", "platform-team"},
                                          {"tags", {"prod"}},
                                          {"attributes",
                                           {{"hostname", "host-" + n},
                                            {"fqdn", "host-" + n + ".example.net"},
                                            {"os", "Debian GNU/Linux"},
                                            {"os_version", "12"},
                                            {"cpu_count", 4 + i % 29},
                                            {"memory_mb", 4096 * (1 + i % 16)},
                                            {"serial", "SN" + n}}}});
  }
  const std::string body = boost::json::serialize(boost::json::object{{"cis", std::move(rows)}});
  for (const auto* server : {&first, &second}) {
    const auto r = cmdb::testing::HttpRequest(server->port, "POST", "/api/v1/import", body);
    if (r.status != 200) {
      std::fprintf(stderr, "import failed: %d %s\n", r.status, r.body.substr(0, 300).c_str());
      return 1;
    }
  }
  // Both databases settled before measuring: analysed, vacuumed, flushed (autovacuum of the
  // database imported last would otherwise run during its rounds).
  for (const char* database : {"bench_first", "bench_second"}) {
    cmdb::store::DbSession db = cmdb::store::DbSession::Connect(cluster.ConnectionString(database));
    cmdb::store::sql::Execute(db, "VACUUM ANALYZE");
    cmdb::store::sql::Execute(db, "CHECKPOINT");
  }
  // The reads carry a token as users get them (cmdb_<id>_<secret>, issued by the API), not
  // the bootstrap token, which is looked up by its hash.
  const cmdb::testing::HttpResult issued = cmdb::testing::HttpRequest(
      ours.port, "POST", "/api/v1/users/admin/tokens", R"({"name": "bench"})",
      {{"Content-Type", "application/json"},
       {"Authorization", std::string("Bearer ") + cmdb::bench::kBenchToken}});
  if (issued.status != 201) {
    std::fprintf(stderr, "no token: %d %s\n", issued.status, issued.body.c_str());
    return 1;
  }
  const std::string token(issued.json().at("token").as_string());
  const std::string script = dir + "/random_ids_with_token.lua";
  {
    std::ofstream lua(script);
    lua << "math.randomseed(42)\nrequest = function()\n  return wrk.format('GET', "
           "'/api/v1/cis/' .. math.random(1, "
        << cis << "), {Authorization = 'Bearer " << token << "'})\nend\n";
  }
  // Warm both (caches, the verified token), then alternate.
  Wrk(base.port, 2, connections, script);
  Wrk(ours.port, 2, connections, script);
  std::vector<double> base_rps, base_p99, ours_rps, ours_p99, base_p50, ours_p50;
  double base_cpu = 0;
  double ours_cpu = 0;
  double base_requests = 0;
  double ours_requests = 0;
  long errors = 0;
  for (int r = 0; r < rounds; ++r) {
    // Alternating which goes first, so neither always runs on the machine the other left.
    WrkResult b;
    WrkResult o;
    auto measure = [&](const cmdb::testing::CmdbProcess& server, double& cpu, double& requests) {
      const double before = CpuSeconds(server.pid);
      WrkResult w = Wrk(server.port, seconds, connections, script);
      cpu += CpuSeconds(server.pid) - before;
      requests += w.requests_per_second * seconds;
      return w;
    };
    if (r % 2 == 0) {
      b = measure(base, base_cpu, base_requests);
      o = measure(ours, ours_cpu, ours_requests);
    } else {
      o = measure(ours, ours_cpu, ours_requests);
      b = measure(base, base_cpu, base_requests);
    }
    base_rps.push_back(b.requests_per_second);
    base_p50.push_back(b.p50_ms);
    base_p99.push_back(b.p99_ms);
    ours_rps.push_back(o.requests_per_second);
    ours_p50.push_back(o.p50_ms);
    ours_p99.push_back(o.p99_ms);
    errors += b.non_2xx + o.non_2xx;
    std::printf("round %d: baseline %.0f req/s p99 %.2f ms | with token %.0f req/s p99 %.2f ms\n",
                r + 1, b.requests_per_second, b.p99_ms, o.requests_per_second, o.p99_ms);
    if (o.requests_per_second == 0) std::printf("wrk output:\n%s\n", o.raw.c_str());
  }
  const double br = Median(base_rps), orps = Median(ours_rps);
  const double bp = Median(base_p99), op = Median(ours_p99);
  std::printf(
      "\n| GET /api/v1/cis/{id}, %d CIs, wrk -t1 -c%d %ds x %d rounds (median), %s | req/s | p50 "
      "| p99 |\n|---|---|---|---|\n"
      "| before access control (%s) | %.0f | %.2f ms | %.2f ms |\n"
      "| with a Bearer token (this tree) | %.0f | %.2f ms | %.2f ms |\n"
      "| ratio | %.3f | | %.3f |\n",
      cis, connections, seconds, rounds, order.c_str(), baseline.c_str(), br, Median(base_p50), bp,
      orps, Median(ours_p50), op, br > 0 ? orps / br : 0, bp > 0 ? op / bp : 0);
  std::printf("target: at most 5%% fewer req/s and at most 5%% more p99; non-2xx responses: %ld\n",
              errors);
  // The servers' own CPU per request (not PostgreSQL's, not wrk's): what the scheduling noise
  // of a shared machine does not blur.
  const double base_us = base_requests > 0 ? base_cpu / base_requests * 1e6 : 0;
  const double ours_us = ours_requests > 0 ? ours_cpu / ours_requests * 1e6 : 0;
  std::printf("server CPU per request: before %.1f us, with a token %.1f us (ratio %.3f)\n",
              base_us, ours_us, base_us > 0 ? ours_us / base_us : 0);
  // How the reads were answered: batched on the fast path (a token verified within the
  // second) or by the handler on a worker.
  for (const auto* server : {&base, &ours}) {
    const std::string metrics =
        cmdb::testing::HttpRequest(server->port, "GET", "/metrics", "", {}).body;
    std::smatch m;
    std::string batched = "?";
    std::string handled = "?";
    if (std::regex_search(metrics, m, std::regex(R"(cmdb_ci_reads_batched_total ([0-9.e+]+))"))) {
      batched = m[1];
    }
    if (std::regex_search(
            metrics, m,
            std::regex(
                R"re(method="GET",route="/api/v1/cis/\{id\}",status="200"\} ([0-9.e+]+))re"))) {
      handled = m[1];
    }
    std::printf("%s: GET /api/v1/cis/{id} answered %s, of which batched %s\n",
                server == &base ? "baseline" : "this tree", handled.c_str(), batched.c_str());
  }
  cmdb::testing::StopCmdb(base);
  cmdb::testing::StopCmdb(ours);
  cluster.Stop();
  std::filesystem::remove_all(dir);
  return 0;
}
