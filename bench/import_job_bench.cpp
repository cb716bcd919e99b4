// A whole estate in one background import: the synthetic estate's CIs and relations (ends named
// by type and name) in one JSON document, posted with `Prefer: respond-async` to a `cmdb serve`
// process, which stores the body as it arrives and imports it as a stream in batches. First a
// small estate, then the large one, each into an empty database, so that the server's peak
// memory (VmHWM of its process) can be read beside the payload's size: a server holding the
// payload would grow with it.
// Usage: import_job_bench [--small N] [--cis N]     (defaults 100000 and 1000000 CIs)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_access.hpp"
#include "bench/process_status.hpp"
#include "bench/synthetic_estate.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/pg.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The estate as one import document: CIs named "<type>-<id>", relations naming both ends.
std::string Document(const cmdb::bench::Estate& e) {
  std::string doc = R"({"cis":[)";
  auto name = [&](cmdb::model::CiId id) {
    const auto& n = e.nodes[static_cast<std::size_t>(id - 1)];
    return n.type + "-" + std::to_string(id);
  };
  for (std::size_t i = 0; i < e.nodes.size(); ++i) {
    const auto& n = e.nodes[i];
    if (i > 0) doc += ',';
    doc += R"({"type":")" + n.type + R"(","name":")" + name(n.id) + R"("})";
  }
  doc += R"(],"relations":[)";
  for (std::size_t i = 0; i < e.edges.size(); ++i) {
    const auto& r = e.edges[i];
    if (i > 0) doc += ',';
    const auto& from = e.nodes[static_cast<std::size_t>(r.from - 1)];
    const auto& to = e.nodes[static_cast<std::size_t>(r.to - 1)];
    doc += R"({"type":")" + r.type + R"(","from":{"type":")" + from.type + R"(","name":")" +
           name(r.from) + R"("},"to":{"type":")" + to.type + R"(","name":")" + name(r.to) +
           R"("}})";
  }
  doc += "]}";
  return doc;
}

// A field of /proc/<pid>/status in MiB ("VmHWM", "VmRSS").
using cmdb::bench::StatusMiB;

// Imports the estate of about `total` CIs into database `name`; false when it failed.
bool Run(cmdb::store::EmbeddedPostgres& cluster, const std::string& name, std::size_t total) {
  {
    std::optional<cmdb::store::DbSession> admin =
        cmdb::store::DbSession::Connect(cluster.ConnectionString("postgres"));
    cmdb::store::pg::ExecuteScript(*admin, "CREATE DATABASE " + name);
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  auto t = Clock::now();
  const std::string doc = Document(e);
  const double build_seconds = Seconds(t);
  cmdb::testing::CmdbProcess server = cmdb::testing::StartCmdb(
      CMDB_BINARY,
      {"--listen", "127.0.0.1:0", "--database", cluster.ConnectionString(name), "--no-request-log",
       "--no-discovery-worker"},
      false, cmdb::bench::BenchAccessEnvironment());
  const pid_t pid = server.pid;
  const std::uint16_t port = server.port;
  if (port == 0) return false;
  const double rss_idle = StatusMiB(pid, "VmRSS");
  t = Clock::now();
  cmdb::testing::HttpResult queued = cmdb::testing::HttpRequest(
      port, "POST", "/api/v1/import", doc,
      {{"Content-Type", "application/json"}, {"Prefer", "respond-async"}});
  const double upload_seconds = Seconds(t);
  if (queued.status != 202) {
    std::printf("HTTP %d: %s\n", queued.status, queued.body.substr(0, 300).c_str());
    cmdb::testing::StopCmdb(server);
    return false;
  }
  const double rss_after_upload = StatusMiB(pid, "VmHWM");
  const std::string location = queued.headers["location"];
  t = Clock::now();
  boost::json::value job;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    job = cmdb::testing::HttpRequest(port, "GET", location).json();
    if (job.at("state") == "succeeded" || job.at("state") == "failed") break;
  }
  const double job_seconds = Seconds(t);
  const double peak = StatusMiB(pid, "VmHWM");
  cmdb::testing::StopCmdb(server);
  if (job.at("state") != "succeeded") {
    std::printf("job failed: %s\n", boost::json::serialize(job.at("error")).substr(0, 500).c_str());
    return false;
  }
  const auto& result = job.at("result");
  const auto& timings = result.at("timings").as_object();
  double relation_seconds = 0;
  if (const auto* r = timings.if_contains("relations")) relation_seconds = r->to_number<double>();
  const double ci_seconds = job_seconds - relation_seconds;
  const double rows = static_cast<double>(e.nodes.size() + e.edges.size());
  std::printf(
      "| %zu CIs + %zu relations | %.0f MB | %.1f s | %.1f s = %.0f rows/s | CIs %.0f/s, "
      "relations %.0f/s | %.0f MB idle, %.0f MB after upload, %.0f MB peak |\n",
      e.nodes.size(), e.edges.size(), static_cast<double>(doc.size()) / 1e6, upload_seconds,
      job_seconds, rows / job_seconds, static_cast<double>(e.nodes.size()) / ci_seconds,
      static_cast<double>(e.edges.size()) / relation_seconds, rss_idle, rss_after_upload, peak);
  std::printf("  (document built in %.1f s) created %lld CIs, %lld relations; phases (s): %s\n",
              build_seconds, static_cast<long long>(result.at("created").as_int64()),
              static_cast<long long>(result.at("relations").at("created").as_int64()),
              boost::json::serialize(result.at("timings")).c_str());
  return result.at("created").as_int64() == static_cast<std::int64_t>(e.nodes.size()) &&
         result.at("relations").at("created").as_int64() ==
             static_cast<std::int64_t>(e.edges.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t small = 100000;
  std::size_t large = 1000000;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--small") small = std::stoul(argv[++i]);
    if (flag == "--cis") large = std::stoul(argv[++i]);
  }
  std::string dir = "/tmp/cmdbimportjob-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  bool ok = true;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/true, ""});
    cluster.Start();
    std::printf(
        "| one background import | payload | upload (stored as it arrives) | job | rates within "
        "the job | server memory (RSS) |\n|---|---|---|---|---|---|\n");
    ok = Run(cluster, "small", small) && ok;
    ok = Run(cluster, "large", large) && ok;
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
