// What an operator relies on when things break: the embedded PostgreSQL restarted when it dies
// or hangs, a restarted --database server survived, no acknowledged write lost to a crash.

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/app.hpp"
#include "store/embedded_postgres.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/pg_environment.hpp"
#include "tests/integration/sql_client.hpp"

namespace cmdb::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

// A folder under /tmp the embedded PostgreSQL (run as `postgres` when we are root) can enter,
// removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/cmdbrel-XXXXXX";
    if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    chmod(dir, 0755);
    path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const Headers& AdminJson() {
  static const Headers headers{{"Content-Type", "application/json"},
                               {"Authorization", std::string("Bearer ") + kTestAdminToken}};
  return headers;
}

// The postmaster's pid from the cluster's lock file; 0 when there is none.
pid_t PostmasterOf(const std::string& data_dir) {
  std::ifstream in(data_dir + "/pgdata/postmaster.pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// Should a test fail half-way: neither a cmdb process nor its PostgreSQL outlive it.
struct Reap {
  CmdbProcess& process;
  std::string data_dir;
  ~Reap() {
    if (process.pid > 0) StopCmdb(process, SIGKILL);
    if (const pid_t postmaster = PostmasterOf(data_dir); postmaster > 0) kill(postmaster, SIGQUIT);
  }
};

// What a Workload's writes had acknowledged.
struct Acknowledged {
  std::vector<std::string> cis;         // names: created one by one and by synchronous imports
  std::vector<std::int64_t> relations;  // ids
  std::vector<std::int64_t> jobs;       // background imports queued (202)
  std::vector<std::string> job_cis;     // the names those jobs create
};

// Writes until stopped, on up to three threads: CIs one by one; relations between `seeds`
// (unique pairs); imports of five CIs, synchronous and background in turn. Remembers what was
// acknowledged, and every answer that was neither that nor a 503 problem with Retry-After (nor,
// with `server_may_vanish`, a failed connection).
class Workload {
 public:
  Workload(std::uint16_t port, std::string prefix, std::vector<std::int64_t> seeds = {},
           bool imports = false, bool server_may_vanish = false)
      : port_(port),
        prefix_(std::move(prefix)),
        seeds_(std::move(seeds)),
        server_may_vanish_(server_may_vanish) {
    threads_.emplace_back([this] { WriteCis(); });
    if (seeds_.size() >= 2) threads_.emplace_back([this] { WriteRelations(); });
    if (imports) threads_.emplace_back([this] { Import(); });
  }
  ~Workload() { Stop(); }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  Acknowledged acknowledged() const {
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }
  std::vector<std::string> unexpected() const {
    std::lock_guard lock(mutex_);
    return unexpected_;
  }
  int refused() const { return refused_; }
  // When the latest acknowledged CI was sent, and when its 201 arrived.
  std::pair<Clock::time_point, Clock::time_point> last_success() const {
    std::lock_guard lock(mutex_);
    return {last_sent_, last_success_};
  }

 private:
  // Whether `r` is the expected success; records anything unexpected and pauses after a
  // refusal.
  // The answer to a request, or status 0 when there was none (no server, connection cut).
  HttpResult Send(const std::string& method, const std::string& target, const std::string& body,
                  const Headers& headers) const {
    try {
      return HttpRequest(port_, method, target, body, headers);
    } catch (const std::exception&) {
      return {};
    }
  }

  bool Succeeded(const HttpResult& r, int expected) {
    if (r.status == expected) return true;
    if ((r.status == 503 && !r.header("retry-after").empty() &&
         r.header("content-type") == "application/problem+json") ||
        (r.status == 0 && server_may_vanish_)) {
      ++refused_;
    } else {
      std::lock_guard lock(mutex_);
      unexpected_.push_back(std::to_string(r.status) + " " + r.body);
    }
    std::this_thread::sleep_for(100ms);
    return false;
  }

  void WriteCis() {
    for (int n = 0; !stop_; ++n) {
      const std::string name = prefix_ + "c" + std::to_string(n);
      const Clock::time_point sent = Clock::now();
      HttpResult r =
          Send("POST", "/api/v1/cis", R"({"type": "vm", "name": ")" + name + R"("})", AdminJson());
      if (!Succeeded(r, 201)) continue;
      std::lock_guard lock(mutex_);
      acknowledged_.cis.push_back(name);
      last_sent_ = sent;
      last_success_ = Clock::now();
    }
  }

  void WriteRelations() {
    const std::size_t k = seeds_.size();
    for (std::size_t pair = 0; !stop_ && pair < k * (k - 1); ++pair) {
      const std::int64_t from = seeds_[pair / (k - 1)];
      const std::size_t other = pair % (k - 1);
      const std::int64_t to = seeds_[other >= pair / (k - 1) ? other + 1 : other];
      HttpResult r = Send("POST", "/api/v1/relations",
                          R"({"type": "depends_on", "from": )" + std::to_string(from) +
                              R"(, "to": )" + std::to_string(to) + "}",
                          AdminJson());
      if (!Succeeded(r, 201)) continue;
      std::lock_guard lock(mutex_);
      acknowledged_.relations.push_back(r.json().at("id").as_int64());
    }
  }

  void Import() {
    for (int n = 0; !stop_; ++n) {
      const bool background = n % 2 == 1;
      std::vector<std::string> names;
      std::string doc = R"({"cis": [)";
      for (int i = 0; i < 5; ++i) {
        names.push_back(prefix_ + (background ? "a" : "i") + std::to_string(n) + "-" +
                        std::to_string(i));
        doc +=
            std::string(i > 0 ? "," : "") + R"({"type": "vm", "name": ")" + names.back() + R"("})";
      }
      doc += "]}";
      Headers headers = AdminJson();
      if (background) headers.emplace_back("Prefer", "respond-async");
      HttpResult r = Send("POST", "/api/v1/import", doc, headers);
      if (!Succeeded(r, background ? 202 : 200)) continue;
      std::lock_guard lock(mutex_);
      if (background) {
        acknowledged_.jobs.push_back(r.json().at("id").as_int64());
        acknowledged_.job_cis.insert(acknowledged_.job_cis.end(), names.begin(), names.end());
      } else {
        acknowledged_.cis.insert(acknowledged_.cis.end(), names.begin(), names.end());
      }
    }
  }

  std::uint16_t port_;
  std::string prefix_;
  std::vector<std::int64_t> seeds_;
  bool server_may_vanish_;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  mutable std::mutex mutex_;
  Acknowledged acknowledged_;
  std::vector<std::string> unexpected_;
  Clock::time_point last_sent_{};
  Clock::time_point last_success_{};
  std::vector<std::thread> threads_;
};

// Waits up to `limit` for `done`; whether it came true.
template <typename Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

std::int64_t MetricValue(std::uint16_t port, const std::string& name) {
  const std::string text = HttpRequest(port, "GET", "/metrics", "", {}).body;
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::llround(std::stod(text.substr(at + name.size() + 2)));
}

// Waits until a write sent after `since` has been acknowledged; how long after `since` its
// acknowledgement came, or nullopt after `limit`.
std::optional<double> RecoveredAfter(const Workload& writer, Clock::time_point since,
                                     std::chrono::milliseconds limit) {
  if (!WaitFor([&] { return writer.last_success().first > since; }, limit)) return std::nullopt;
  return std::chrono::duration<double>(writer.last_success().second - since).count();
}

// A PostgreSQL text array literal of `values` (plain names and numbers).
template <typename T>
std::string ArrayLiteral(const std::vector<T>& values) {
  std::string text = "{";
  for (const T& v : values) {
    if (text.size() > 1) text += ",";
    if constexpr (std::is_same_v<T, std::string>) {
      text += v;
    } else {
      text += std::to_string(v);
    }
  }
  return text + "}";
}

// After a crash and recovery: every acknowledged write is stored, nothing is half-written (no
// CI or relation without its first version, no relation to a missing CI), and every queued
// import has run to its end (none left queued or running).
void ExpectNothingLostOrHalfWritten(const std::string& dsn, const Acknowledged& acked) {
  SqlConnection sql(dsn);
  auto count = [&](const std::string& query, const SqlParams& params = {}) {
    return sql.Query(query, params).Int(0, 0);
  };
  EXPECT_TRUE(WaitFor(
      [&] {
        return count("SELECT count(*) FROM import_jobs WHERE state IN ('queued', 'running')") == 0;
      },
      120s))
      << "import jobs left queued or running";
  SqlResult unfinished = sql.Query(
      "SELECT j.id, j.state, j.attempts, coalesce(j.error, '') || ' ' || coalesce(j.error_code, "
      "'') FROM import_jobs j WHERE "
      "j.id = ANY($1::bigint[]) AND j.state <> 'succeeded'",
      {P(ArrayLiteral(acked.jobs))});
  for (int i = 0; i < unfinished.rows(); ++i) {
    ADD_FAILURE() << "import job " << unfinished.Text(i, 0) << " is " << unfinished.Text(i, 1)
                  << " after " << unfinished.Text(i, 2) << " attempts: " << unfinished.Text(i, 3);
  }
  std::vector<std::string> names = acked.cis;
  names.insert(names.end(), acked.job_cis.begin(), acked.job_cis.end());
  EXPECT_EQ(count("SELECT count(*) FROM unnest($1::text[]) AS a(name) WHERE NOT EXISTS (SELECT 1 "
                  "FROM configuration_items c WHERE c.name = a.name)",
                  {P(ArrayLiteral(names))}),
            0)
      << "acknowledged CIs missing";
  EXPECT_EQ(count("SELECT count(*) FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 "
                  "FROM relations r WHERE r.id = a.id)",
                  {P(ArrayLiteral(acked.relations))}),
            0)
      << "acknowledged relations missing";
  EXPECT_EQ(count("SELECT count(*) FROM configuration_items c WHERE NOT EXISTS (SELECT 1 FROM "
                  "ci_history v WHERE v.ci_id = c.id AND v.version = 1)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM relations r WHERE NOT EXISTS (SELECT 1 FROM "
                  "relation_history v WHERE v.relation_id = r.id AND v.version = 1)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM relations r WHERE NOT EXISTS (SELECT 1 FROM "
                  "configuration_items c WHERE c.id = r.from_ci) OR NOT EXISTS (SELECT 1 FROM "
                  "configuration_items c WHERE c.id = r.to_ci)"),
            0);
}

// Runs a shell command; its output (stdout and stderr) and exit status.
std::pair<std::string, int> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::array<char, 512> buffer{};
  while (pipe != nullptr && fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    out += buffer.data();
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// `count` CIs to relate, created one by one; their ids.
std::vector<std::int64_t> Seeds(std::uint16_t port, int count) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < count; ++i) {
    HttpResult r = HttpRequest(
        port, "POST", "/api/v1/cis",
        R"({"type": "application", "name": "seed-)" + std::to_string(i) + R"("})", AdminJson());
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) ids.push_back(r.json().at("id").as_int64());
  }
  return ids;
}

TEST(Reliability, TheEmbeddedPostgresIsRestartedWhenItsPostmasterDies) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  CmdbProcess cmdb = StartCmdb(
      CMDB_BINARY, {"--listen", "127.0.0.1:0", "--data-dir", data_dir, "--no-request-log"}, false,
      {std::string("CMDB_BOOTSTRAP_TOKEN=") + kTestAdminToken});
  Reap reap{cmdb, data_dir};
  ASSERT_NE(cmdb.port, 0) << "cmdb did not print its URL";
  HttpResult ready = HttpRequest(cmdb.port, "GET", "/ready", "", {});
  ASSERT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.json().at("supervised"), true);
  EXPECT_EQ(ready.json().at("restarts"), 0);

  // CIs, relations and imports (synchronous and background) written all along.
  Workload writer(cmdb.port, "w-", Seeds(cmdb.port, 20), /*imports=*/true);
  ASSERT_TRUE(WaitFor(
      [&] {
        const Acknowledged acked = writer.acknowledged();
        return acked.cis.size() >= 20 && acked.relations.size() >= 10 && acked.jobs.size() >= 2;
      },
      60s));
  for (int crash = 1; crash <= 2; ++crash) {
    const pid_t postmaster = PostmasterOf(data_dir);
    ASSERT_GT(postmaster, 0);
    const auto killed = Clock::now();
    ASSERT_EQ(kill(postmaster, SIGKILL), 0);
    // Restarted, and writes served again, within 30 s of the crash (the second restart backs
    // off 1 s). Backends that had not noticed the crash yet may still commit a write or two.
    ASSERT_TRUE(WaitFor(
        [&] {
          ready = HttpRequest(cmdb.port, "GET", "/ready", "", {});
          return ready.status == 200 && ready.json().at("restarts") == crash;
        },
        30s))
        << ready.body;
    EXPECT_NE(PostmasterOf(data_dir), postmaster);
    const std::optional<double> recovered = RecoveredAfter(
        writer, Clock::now(),
        std::chrono::duration_cast<std::chrono::milliseconds>(killed + 30s - Clock::now()));
    ASSERT_TRUE(recovered.has_value()) << "no write acknowledged within 30 s of crash " << crash;
    EXPECT_TRUE(ready.json().as_object().contains("last_restart"));
    EXPECT_EQ(MetricValue(cmdb.port, "cmdb_database_restarts_total"), crash);
    EXPECT_EQ(MetricValue(cmdb.port, "cmdb_database_up"), 1);
  }
  const std::size_t before_stop = writer.acknowledged().cis.size();
  ASSERT_TRUE(WaitFor([&] { return writer.acknowledged().cis.size() > before_stop + 5; }, 30s));
  writer.Stop();
  // In between, every answer was a 201 or a 503 problem with Retry-After; nothing else.
  EXPECT_TRUE(writer.unexpected().empty()) << writer.unexpected().front();
  EXPECT_GT(writer.refused(), 0);

  // Every acknowledged write is there, whole (PostgreSQL replayed its WAL).
  ExpectNothingLostOrHalfWritten(store::EmbeddedPostgres({data_dir, true, ""}).ConnectionString(),
                                 writer.acknowledged());
  EXPECT_EQ(StopCmdb(cmdb), 0);
}

// kill -9 of cmdb during writes of every kind: after a restart on the same folder nothing
// acknowledged is missing and nothing is half-written; then a backup taken while writes go on
// restores into a new folder with everything acknowledged before it began, and the same tokens.
TEST(Reliability, NoAcknowledgedWriteIsLostToAKillAndAnOnlineBackupRestores) {
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", data_dir,
                                         "--no-request-log"};
  const std::vector<std::string> env = {std::string("CMDB_BOOTSTRAP_TOKEN=") + kTestAdminToken};
  CmdbProcess cmdb = StartCmdb(CMDB_BINARY, args, false, env);
  Reap reap{cmdb, data_dir};
  ASSERT_NE(cmdb.port, 0);
  Acknowledged acked;
  {
    Workload writer(cmdb.port, "k-", Seeds(cmdb.port, 20), /*imports=*/true,
                    /*server_may_vanish=*/true);
    ASSERT_TRUE(WaitFor(
        [&] {
          const Acknowledged so_far = writer.acknowledged();
          return so_far.cis.size() >= 30 && so_far.relations.size() >= 20 &&
                 so_far.jobs.size() >= 3;
        },
        60s));
    StopCmdb(cmdb, SIGKILL);
    writer.Stop();
    acked = writer.acknowledged();
    EXPECT_TRUE(writer.unexpected().empty()) << writer.unexpected().front();
  }
  cmdb = StartCmdb(CMDB_BINARY, args, false, env);
  ASSERT_NE(cmdb.port, 0) << "no restart after the kill";
  const std::string dsn = store::EmbeddedPostgres({data_dir, true, ""}).ConnectionString();
  ExpectNothingLostOrHalfWritten(dsn, acked);

  // Online backup: writes go on while it is taken.
  const std::string file = dir.path() + "/online.cmdb";
  Acknowledged before_backup;
  {
    Workload writer(cmdb.port, "b-", {}, /*imports=*/true);
    ASSERT_TRUE(WaitFor([&] { return writer.acknowledged().cis.size() >= 10; }, 30s));
    before_backup = writer.acknowledged();
    auto [out, status] =
        Shell(std::string(CMDB_BINARY) + " backup --out " + file + " --data-dir " + data_dir);
    ASSERT_EQ(status, 0) << out;
    ASSERT_TRUE(WaitFor(
        [&] { return writer.acknowledged().cis.size() > before_backup.cis.size() + 5; }, 30s));
    writer.Stop();
    EXPECT_TRUE(writer.unexpected().empty()) << writer.unexpected().front();
  }
  EXPECT_EQ(StopCmdb(cmdb), 0);
  const std::string restored_dir = dir.path() + "/restored";
  auto [out, status] =
      Shell(std::string(CMDB_BINARY) + " restore --in " + file + " --data-dir " + restored_dir);
  ASSERT_EQ(status, 0) << out;
  // Jobs queued before the backup run on the restored folder, where a server now runs (with no
  // bootstrap token: the admin's of before is in the backup, hashed with the pepper it carried).
  CmdbProcess restored = StartCmdb(
      CMDB_BINARY, {"--listen", "127.0.0.1:0", "--data-dir", restored_dir, "--no-request-log"});
  Reap reap_restored{restored, restored_dir};
  ASSERT_NE(restored.port, 0);
  EXPECT_EQ(HttpRequest(restored.port, "GET", "/api/v1/me", "", AdminJson()).status, 200);
  ExpectNothingLostOrHalfWritten(
      store::EmbeddedPostgres({restored_dir, true, ""}).ConnectionString(), before_backup);
  EXPECT_EQ(StopCmdb(restored), 0);
}

// A server in this process without background workers, on a free port, whose supervisor probes
// five times a second; the caller names its database or data folder.
server::ServeConfig InProcessConfig() {
  server::ServeConfig config;
  config.listen = "127.0.0.1:0";
  config.pool_size = 4;
  config.log_requests = false;
  config.discovery_worker = false;
  config.import_worker = false;
  config.bootstrap_token = kTestAdminToken;
  config.token_pepper = kTestPepper;
  config.supervisor.interval = 200ms;
  return config;
}

// A postmaster that stops answering (here: stopped with SIGSTOP) is killed and restarted.
TEST(Reliability, AHungEmbeddedPostgresIsKilledAndRestarted) {
  TempDir dir;
  server::ServeConfig config = InProcessConfig();
  config.data_dir = dir.path() + "/data";
  config.durable = false;
  config.supervisor.probe_timeout = 1000ms;
  server::App app(config);
  app.Start();
  const std::uint16_t port = app.port();
  const pid_t postmaster = PostmasterOf(config.data_dir);
  ASSERT_GT(postmaster, 0);
  ASSERT_EQ(kill(postmaster, SIGSTOP), 0);
  const bool restarted = WaitFor(
      [&] {
        HttpResult r = HttpRequest(port, "GET", "/ready", "", {});
        return r.status == 200 && r.json().at("restarts") == 1;
      },
      40s);
  kill(postmaster, SIGKILL);  // should the test fail: not left stopped
  ASSERT_TRUE(restarted);
  EXPECT_EQ(
      HttpRequest(port, "POST", "/api/v1/cis", R"({"type": "vm", "name": "after"})", AdminJson())
          .status,
      201);
  app.Stop();
}

// With --database, a restart of that server is waited out: the pool reopens its connections
// (nothing prepared on the old backends is used), and the graph listener listens again and
// catches up with what it missed.
TEST(Reliability, ARestartOfTheDatabaseServerIsSurvived) {
  TempDir dir;
  store::EmbeddedPostgres external({dir.path() + "/external", false, ""});
  external.Start();
  server::ServeConfig config = InProcessConfig();
  config.database = external.ConnectionString();
  config.data_dir = dir.path() + "/unused";
  server::App first(config);
  first.Start();
  server::App second(config);
  second.Start();
  auto create = [](std::uint16_t port, const std::string& name) {
    HttpResult r =
        HttpRequest(port, "POST", "/api/v1/cis",
                    R"({"type": "application", "name": ")" + name + R"("})", AdminJson());
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? r.json().at("id").as_int64() : 0;
  };
  const std::int64_t db = create(first.port(), "orders-db");
  const std::int64_t app = create(first.port(), "orders-app");
  // Read once, so the batched reader has its statement prepared on the old backend.
  ASSERT_EQ(
      HttpRequest(first.port(), "GET", "/api/v1/cis/" + std::to_string(db), "", AdminJson()).status,
      200);

  external.Stop();
  EXPECT_TRUE(WaitFor(
      [&] {
        HttpResult r = HttpRequest(first.port(), "GET", "/ready", "", {});
        return r.status == 503 && !r.header("retry-after").empty();
      },
      10s));
  HttpResult refused =
      HttpRequest(first.port(), "GET", "/api/v1/cis/" + std::to_string(db), "", AdminJson());
  EXPECT_EQ(refused.status, 503);
  EXPECT_FALSE(refused.header("retry-after").empty());
  external.Start();
  ASSERT_TRUE(WaitFor(
      [&] {
        return HttpRequest(first.port(), "GET", "/ready", "", {}).status == 200 &&
               HttpRequest(second.port(), "GET", "/ready", "", {}).status == 200;
      },
      20s));
  // The first requests after it are served: no connection or statement of before is reused.
  for (int i = 0; i < 8; ++i) {
    HttpResult r =
        HttpRequest(first.port(), "GET", "/api/v1/cis/" + std::to_string(db), "", AdminJson());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // A relation written through the other instance reaches this one's graph: LISTEN is back.
  HttpResult related = HttpRequest(second.port(), "POST", "/api/v1/relations",
                                   R"({"type": "depends_on", "from": )" + std::to_string(app) +
                                       R"(, "to": )" + std::to_string(db) + "}",
                                   AdminJson());
  ASSERT_EQ(related.status, 201) << related.body;
  EXPECT_TRUE(WaitFor(
      [&] {
        HttpResult impact = HttpRequest(
            first.port(), "GET", "/api/v1/cis/" + std::to_string(db) + "/impact", "", AdminJson());
        return impact.status == 200 && impact.body.find("orders-app") != std::string::npos;
      },
      10s));
  second.Stop();
  first.Stop();
  external.Stop();
}

// Every table of the database at `dsn`: its name, rows and a digest of its rows' text.
std::map<std::string, std::pair<std::int64_t, std::string>> TableDigests(const std::string& dsn) {
  SqlConnection sql(dsn);
  std::map<std::string, std::pair<std::int64_t, std::string>> digests;
  SqlResult tables =
      sql.Query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  for (int i = 0; i < tables.rows(); ++i) {
    const std::string table(tables.Text(i, 0));
    // The restore adds its own line to the audit log; the lines before it must be identical.
    const std::string where = table == "audit_log" ? " WHERE t.route <> 'cmdb restore'" : "";
    SqlResult digest = sql.Query(
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY "
        "t::text), '')) FROM " +
        table + " t" + where);
    digests[table] = {digest.Int(0, 0), std::string(digest.Text(0, 1))};
  }
  return digests;
}

class BackupRestore : public ServerTest {};

TEST_F(BackupRestore, ARestoredDatabaseHoldsEveryTableAsItWas) {
  server::ServeConfig config = Config();
  config.demo = true;
  Restart(config);
  // Beyond the demo estate: history (of a CI and of a deleted relation), a change, an
  // incident, knowledge, a discovery run with its decisions, drift, a user with a token; every
  // write is in the audit log.
  const std::int64_t ci = Get("/api/v1/cis?limit=1").json().at("items").at(0).at("id").as_int64();
  ASSERT_EQ(Patch("/api/v1/cis/" + std::to_string(ci), R"({"owner": "backup-team"})").status, 200);
  const std::int64_t relation =
      Get("/api/v1/relations?limit=1").json().at("items").at(0).at("id").as_int64();
  ASSERT_EQ(Delete("/api/v1/relations/" + std::to_string(relation)).status, 204);
  const std::string ids = "[" + std::to_string(ci) + "]";
  ASSERT_EQ(Post("/api/v1/changes", R"({"title": "patch", "planned_start": "2030-01-01T10:00:00Z",
      "planned_end": "2030-01-01T11:00:00Z", "ci_ids": )" +
                                        ids + "}")
                .status,
            201);
  ASSERT_EQ(Post("/api/v1/incidents", R"({"title": "slow", "severity": 3, "ci_ids": )" + ids + "}")
                .status,
            201);
  ASSERT_EQ(Post("/api/v1/knowledge", R"({"title": "restart it", "body": "systemctl restart",
      "ci_ids": )" + ids + "}")
                .status,
            201);
  HttpResult source = Post("/api/v1/discovery/sources", R"({"name": "agents", "kind": "agent"})");
  ASSERT_EQ(source.status, 201) << source.body;
  HttpResult run = Post(
      "/api/v1/discovery/runs?source=" + std::to_string(source.json().at("id").as_int64()),
      R"({"items": [{"identity": {"serial": "NOPE-1"}, "attributes": {"hostname": "stray"}}]})");
  ASSERT_EQ(run.status, 202) << run.body;
  const std::string run_path =
      "/api/v1/discovery/runs/" + std::to_string(run.json().at("id").as_int64());
  ASSERT_TRUE(WaitFor([&] { return Get(run_path).json().at("state") == "succeeded"; }, 60s));
  Sql("INSERT INTO drift_findings (ci_id, attribute, expected, actual, run_id, last_run_id, "
      "detected_at, observed_at) VALUES ($1, 'os', '\"a\"', '\"b\"', 0, 0, now(), now())",
      {P(ci)});
  const std::string viewer = TokenFor("backup-viewer", R"(["viewer"])");
  // The graph the server read at start is stored for the next instance once its writes pause
  // (a row the backup carries like any other): wait for it, so that the server writes nothing
  // between the backup and the digests below.
  ASSERT_TRUE(
      WaitFor([&] { return Sql("SELECT count(*) FROM graph_snapshots").Int(0, 0) == 1; }, 90s));

  TempDir dir;
  const std::string file = dir.path() + "/nightly.cmdb";
  const std::string pepper = std::string("CMDB_TOKEN_PEPPER=") + kTestPepper + " ";
  auto [backup_out, backup_status] =
      Shell(pepper + CMDB_BINARY + " backup --out " + file + " --database '" + dsn_ + "'");
  ASSERT_EQ(backup_status, 0) << backup_out;
  struct stat mode {};
  ASSERT_EQ(stat(file.c_str(), &mode), 0);
  EXPECT_EQ(mode.st_mode & 0777, 0600U);
  EXPECT_FALSE(std::filesystem::exists(file + ".partial"));

  const std::string restored = CreateEmptyDatabase();
  auto [restore_out, restore_status] = Shell(pepper + CMDB_BINARY + " restore --in " + file +
                                             " --database '" + DsnFor(restored) + "'");
  ASSERT_EQ(restore_status, 0) << restore_out;
  const auto before = TableDigests(dsn_);
  const auto after = TableDigests(DsnFor(restored));
  ASSERT_EQ(before.size(), after.size());
  for (const char* table :
       {"configuration_items", "ci_versions", "relations", "relation_versions", "discovery_runs",
        "discovery_decisions", "drift_findings", "changes", "change_events", "incidents",
        "incident_events", "knowledge_articles", "users", "api_tokens", "audit_log"}) {
    ASSERT_TRUE(before.contains(table)) << table;
    EXPECT_GT(before.at(table).first, 0) << table << " is empty: the test proves nothing for it";
  }
  for (const auto& [table, digest] : before) {
    ASSERT_TRUE(after.contains(table)) << table;
    EXPECT_EQ(after.at(table), digest) << table << " differs after the restore";
  }
  // The restore is in the audit log, and the tokens of before work on the restored database.
  SqlConnection restored_sql(DsnFor(restored));
  EXPECT_EQ(
      restored_sql.Query("SELECT count(*) FROM audit_log WHERE route = 'cmdb restore'").Int(0, 0),
      1);
  server::ServeConfig on_restored = Config();
  on_restored.database = DsnFor(restored);
  Restart(on_restored);
  HttpResult me =
      HttpRequest(port(), "GET", "/api/v1/me", "", {{"Authorization", "Bearer " + viewer}});
  EXPECT_EQ(me.status, 200) << me.body;

  // Only into an empty database: a second restore changes nothing and says why.
  auto [again_out, again_status] = Shell(pepper + CMDB_BINARY + " restore --in " + file +
                                         " --database '" + DsnFor(restored) + "'");
  EXPECT_EQ(again_status, 1);
  EXPECT_NE(again_out.find("holds"), std::string::npos) << again_out;
  // Nothing to back up: no new cluster is made for it.
  auto [none_out, none_status] = Shell(std::string(CMDB_BINARY) + " backup --out " + dir.path() +
                                       "/none.cmdb --data-dir " + dir.path() + "/no-such-folder");
  EXPECT_EQ(none_status, 1);
  EXPECT_NE(none_out.find("no cmdb data folder"), std::string::npos) << none_out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/no-such-folder"));
  // Not a backup: refused before anything is touched.
  std::ofstream(dir.path() + "/junk") << "hello";
  auto [junk_out, junk_status] = Shell(CMDB_BINARY + std::string(" restore --in ") + dir.path() +
                                       "/junk --database '" + DsnFor(restored) + "'");
  EXPECT_EQ(junk_status, 2);
  EXPECT_NE(junk_out.find("not a cmdb backup"), std::string::npos) << junk_out;
  // A pepper that is not the backup's would leave every token unusable: refused.
  const std::string spare = CreateEmptyDatabase();
  auto [other_out, other_status] = Shell(
      "CMDB_TOKEN_PEPPER=another-pepper-0123456789abcdefghijklmnop " + std::string(CMDB_BINARY) +
      " restore --in " + file + " --database '" + DsnFor(spare) + "'");
  EXPECT_EQ(other_status, 1);
  EXPECT_NE(other_out.find("CMDB_TOKEN_PEPPER differs"), std::string::npos) << other_out;
  app_->Stop();
  DropDatabase(restored);
  DropDatabase(spare);
}

class Overload : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    server::ServeConfig config = Config();
    config.pool_size = 2;             // two workers
    config.max_waiting_requests = 4;  // and four waiting: the seventh is refused
    config.body_limit = 512 * 1024;
    config.body_memory_limit = 1024 * 1024;  // two bodies of the largest size at once
    Restart(config);
  }
};

TEST_F(Overload, AFloodIsRefusedAtOnceAndHealthKeepsAnswering) {
  // Every worker stuck behind a lock on the CIs: a database that has stopped keeping up.
  SqlConnection locker(dsn_);
  locker.Query("BEGIN");
  locker.Query("LOCK TABLE configuration_items IN ACCESS EXCLUSIVE MODE");
  constexpr int kFlood = 40;
  std::vector<std::thread> flood;
  std::vector<HttpResult> results(kFlood);
  std::vector<double> seconds(kFlood, -1);
  for (int i = 0; i < kFlood; ++i) {
    flood.emplace_back([&, i] {
      const auto sent = Clock::now();
      results[i] = Get("/api/v1/cis?limit=5");
      seconds[i] = std::chrono::duration<double>(Clock::now() - sent).count();
    });
  }
  // Those beyond the workers and the waiting room are refused at once, while the rest wait.
  std::atomic<int> refused{0};
  EXPECT_TRUE(WaitFor(
      [&] { return MetricValue(port(), "cmdb_http_busy_refusals_total") >= kFlood - 2 - 4; }, 10s));
  // The process still answers what monitoring asks, on its I/O thread.
  const auto asked = Clock::now();
  HttpResult health = HttpRequest(port(), "GET", "/health", "", {});
  EXPECT_EQ(health.status, 200);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - asked).count(), 1.0);
  EXPECT_EQ(MetricValue(port(), "cmdb_http_queued_requests"), 6);
  locker.Query("COMMIT");
  for (std::thread& t : flood) t.join();
  int ok = 0;
  for (int i = 0; i < kFlood; ++i) {
    if (results[i].status == 200) {
      ++ok;
      continue;
    }
    ASSERT_EQ(results[i].status, 503) << results[i].body;
    EXPECT_EQ(results[i].header("retry-after"), "1");
    EXPECT_EQ(results[i].header("content-type"), "application/problem+json");
    EXPECT_LT(seconds[i], 2.0) << "a refusal must come at once, not after waiting";
    refused.fetch_add(1);
  }
  EXPECT_EQ(ok, 6);  // two on workers, four waiting
  EXPECT_EQ(refused.load(), kFlood - 6);
  EXPECT_EQ(Get("/api/v1/cis?limit=5").status, 200);  // and it serves on afterwards
}

TEST_F(Overload, RequestBodiesHeldAtOnceAreBounded) {
  const std::string head =
      "POST /api/v1/cis HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
      std::string(kTestAdminToken) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(512 * 1024) +
      "\r\n\r\n";
  // Two slow uploads of the largest size take the whole budget...
  std::vector<int> holders;
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(port());
    ASSERT_GE(fd, 0);
    const std::string part = head + "{\"type\": ";
    ASSERT_EQ(send(fd, part.data(), part.size(), MSG_NOSIGNAL), static_cast<ssize_t>(part.size()));
    holders.push_back(fd);
  }
  ASSERT_TRUE(
      WaitFor([&] { return MetricValue(port(), "cmdb_http_body_bytes") == 1024 * 1024; }, 5s))
      << MetricValue(port(), "cmdb_http_body_bytes");
  // ...so a third is refused before its body is read, and the server goes on answering.
  HttpResult third = ParseResponse(RawExchange(port(), head));
  EXPECT_EQ(third.status, 503) << third.body;
  EXPECT_EQ(third.header("retry-after"), "1");
  EXPECT_NE(third.body.find("MiB of request bodies"), std::string::npos) << third.body;
  EXPECT_EQ(HttpRequest(port(), "GET", "/health", "", {}).status, 200);
  EXPECT_EQ(Post("/api/v1/cis", R"({"type": "vm", "name": "small"})").status, 503);
  for (int fd : holders) close(fd);
  EXPECT_TRUE(WaitFor([&] { return MetricValue(port(), "cmdb_http_body_bytes") == 0; }, 5s));
  EXPECT_EQ(Post("/api/v1/cis", R"({"type": "vm", "name": "small"})").status, 201);
}

}  // namespace
}  // namespace cmdb::testing
