#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <boost/json.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/router.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class Server : public ServerTest {};

TEST_F(Server, OperationalEndpointsAnswer) {
  HttpResult health = Get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json().at("status"), "ok");
  EXPECT_FALSE(health.header("x-request-id").empty());
  // The server's own time for the request, for browsers' tools and the benchmarks.
  const std::string timing = health.header("server-timing");
  ASSERT_EQ(timing.rfind("app;dur=", 0), 0U) << timing;
  const double ms = std::stod(timing.substr(8));
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 10000.0);
  EXPECT_FALSE(Get("/no/such/path").header("server-timing").empty());  // problems too
  EXPECT_EQ(Get("/ready").json().at("status"), "ready");
  HttpResult openapi = Get("/api/v1/openapi.json");
  ASSERT_EQ(openapi.status, 200);
  EXPECT_EQ(openapi.json().at("openapi"), "3.1.0");
  // Every route of the router is documented, with its method.
  const boost::json::object& paths = openapi.json().at("paths").as_object();
  for (const server::Route& route : server::ApiRoutes()) {
    std::string method = route.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const boost::json::value* path = paths.if_contains(route.pattern);
    ASSERT_NE(path, nullptr) << route.pattern << " is not in docs/openapi.json";
    EXPECT_TRUE(path->as_object().contains(method))
        << route.method << " " << route.pattern << " is not in docs/openapi.json";
  }
  Get("/api/v1/cis/77");
  HttpResult metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(
      metrics.body.find(
          "cmdb_http_requests_total{method=\"GET\",route=\"/api/v1/cis/{id}\",status=\"404\"} 1"),
      std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("cmdb_http_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics.body.find("cmdb_db_pool_size 4"), std::string::npos);
}

TEST_F(Server, EchoesAClientRequestId) {
  HttpResult r = HttpRequest(port(), "GET", "/health", "", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(r.header("x-request-id"), "abc-123");
}

TEST_F(Server, ConnectionsOverTheCapGet503) {
  server::ServeConfig config = Config();
  config.max_connections = 1;
  Restart(config);
  // Hold one connection open with a half-sent request, then try another.
  int fd = ConnectLoopback(port());
  ASSERT_GE(fd, 0);
  const char partial[] = "GET /health HTTP/1.1\r\n";
  ASSERT_GT(send(fd, partial, sizeof partial - 1, 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Get("/health").status, 503);
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Get("/health").status, 200);
}

TEST_F(Server, SlowHeadersAreCutOffAtTheHeaderTimeout) {
  server::ServeConfig config = Config();
  config.header_timeout = std::chrono::seconds(1);
  Restart(config);
  int fd = ConnectLoopback(port());
  ASSERT_GE(fd, 0);
  const char partial[] = "GET /health HTTP/1.1\r\nHost: x\r\n";  // never finished
  ASSERT_GT(send(fd, partial, sizeof partial - 1, 0), 0);
  auto started = std::chrono::steady_clock::now();
  char buf[64];
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = recv(fd, buf, sizeof buf, 0);  // the server closes: 0 bytes
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  close(fd);
  EXPECT_LE(n, 0);
  EXPECT_GE(waited, 0.5);
  EXPECT_LT(waited, 5.0);
  EXPECT_EQ(Get("/health").status, 200);
}

TEST(ServerProcess, EmbeddedRestartKeepsDataAndSigtermOrSigintExitCleanly) {
  char dir[] = "/tmp/cmdbe2e-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0755);  // the embedded PostgreSQL runs as `postgres` when we are root
  const std::string data_dir = std::string(dir) + "/data";
  // Runs `cmdb serve` on the embedded PostgreSQL, returns its pid and port.
  // `background`: started as a shell starts a background job, with SIGINT ignored.
  std::vector<CmdbProcess> started;
  auto start = [&](bool demo, int& out_fd,
                   bool background = false) -> std::pair<pid_t, std::uint16_t> {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", data_dir,
                                     "--no-request-log"};
    if (demo) args.emplace_back("--demo");
    started.push_back(StartCmdb(CMDB_BINARY, args, background));
    out_fd = fileno(started.back().out);
    return {started.back().pid, started.back().port};
  };
  auto stop = [](pid_t pid, int sig = SIGTERM) {
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  int fd = -1;
  auto [pid, port] = start(true, fd);
  ASSERT_NE(port, 0) << "cmdb did not print its URL";
  // The first start made user admin with a token in the data folder (owner-only), and --demo
  // one user per role with theirs; without a token nothing but /health answers.
  struct stat mode {};
  ASSERT_EQ(stat((data_dir + "/admin-token").c_str(), &mode), 0);
  EXPECT_EQ(mode.st_mode & 0777, 0600U);
  ASSERT_EQ(stat((data_dir + "/demo-tokens.json").c_str(), &mode), 0);
  EXPECT_EQ(mode.st_mode & 0777, 0600U);
  auto read_file = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::string admin_token = read_file(data_dir + "/admin-token");
  while (!admin_token.empty() && admin_token.back() == '\n') admin_token.pop_back();
  const boost::json::value demo_tokens =
      boost::json::parse(read_file(data_dir + "/demo-tokens.json"));
  const Headers admin{{"Authorization", "Bearer " + admin_token}};
  const Headers viewer{
      {"Authorization", "Bearer " + std::string(demo_tokens.at("viewer").as_string())}};
  HttpResult me = HttpRequest(port, "GET", "/api/v1/me", "", admin);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json().at("name"), "admin");
  EXPECT_EQ(HttpRequest(port, "GET", "/api/v1/cis", "", {}).status, 401);
  EXPECT_EQ(HttpRequest(port, "GET", "/health", "", {}).status, 200);
  auto services = HttpRequest(port, "GET", "/api/v1/cis?type=business_service", "", viewer).json();
  EXPECT_EQ(services.at("items").as_array().size(), 2U);
  auto all =
      HttpRequest(port, "GET", "/api/v1/cis?limit=1000", "", viewer).json().at("items").as_array();
  EXPECT_GE(all.size(), 60U);
  EXPECT_LE(all.size(), 120U);
  HttpResult created = HttpRequest(port, "POST", "/api/v1/cis", R"({"type": "vm", "name": "kept"})",
                                   {{"Content-Type", "application/json"}, admin.front()});
  ASSERT_EQ(created.status, 201);
  int status = stop(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The embedded PostgreSQL stopped with it.
  EXPECT_FALSE(std::filesystem::exists(data_dir + "/pgdata/postmaster.pid"));

  // With the server stopped, an operator issues a token from the data folder alone (the
  // cluster is started for the command and stopped again).
  auto run = [](const std::string& command) {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[512];
    while (pipe != nullptr && fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    const int exit_status = pipe != nullptr ? pclose(pipe) : -1;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return std::make_pair(out, exit_status);
  };
  auto [offline, offline_status] =
      run(std::string(CMDB_BINARY) + " token create --user admin --data-dir " + data_dir +
          " 2>/dev/null");
  ASSERT_EQ(offline_status, 0);
  EXPECT_FALSE(std::filesystem::exists(data_dir + "/pgdata/postmaster.pid"));

  // Restart on the same folder (with --demo again: the estate is not loaded twice).
  auto [pid2, port2] = start(true, fd);
  ASSERT_NE(port2, 0);
  EXPECT_EQ(
      HttpRequest(port2, "GET", "/api/v1/me", "", {{"Authorization", "Bearer " + offline}}).status,
      200);
  // With it running, the command uses its cluster as it is.
  EXPECT_EQ(run(std::string(CMDB_BINARY) + " user add ops --role auditor --data-dir " + data_dir +
                " >/dev/null 2>&1")
                .second,
            0);
  EXPECT_EQ(HttpRequest(port2, "GET", "/api/v1/users/ops", "", admin).status, 200);
  // The demo tokens of the first start still work: the file is kept, not rewritten.
  EXPECT_EQ(boost::json::parse(read_file(data_dir + "/demo-tokens.json")), demo_tokens);
  auto kept =
      HttpRequest(port2, "GET", "/api/v1/cis?q=kept", "", viewer).json().at("items").as_array();
  EXPECT_EQ(kept.size(), 1U);
  auto again =
      HttpRequest(port2, "GET", "/api/v1/cis?limit=1000", "", viewer).json().at("items").as_array();
  EXPECT_EQ(again.size(), all.size() + 1);

  // A crash (SIGKILL) leaves PostgreSQL running and a pid file behind; the next start recovers.
  kill(pid2, SIGKILL);
  waitpid(pid2, nullptr, 0);
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/pgdata/postmaster.pid"));
  auto [pid3, port3] = start(false, fd, /*background=*/true);
  ASSERT_NE(port3, 0) << "no recovery after a crash";
  EXPECT_EQ(HttpRequest(port3, "GET", "/api/v1/cis?q=kept", "", viewer)
                .json()
                .at("items")
                .as_array()
                .size(),
            1U);
  // SIGINT stops it too, even when inherited as ignored (`kill -INT` of a background job).
  int interrupted = stop(pid3, SIGINT);
  EXPECT_TRUE(WIFEXITED(interrupted));
  EXPECT_EQ(WEXITSTATUS(interrupted), 0);
  EXPECT_FALSE(std::filesystem::exists(data_dir + "/pgdata/postmaster.pid"));
  for (CmdbProcess& p : started) {
    if (p.out != nullptr) fclose(p.out);  // each was waited for above
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace cmdb::testing
