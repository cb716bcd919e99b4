// cmdb: the CMDB and configuration audit server. main() parses the command line, wires the
// application (server/app.cpp) and waits for SIGTERM or SIGINT to drain and stop.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "model/error.hpp"
#include "server/app.hpp"
#include "server/cli.hpp"

namespace {

constexpr const char* kUsage = R"(usage: cmdb serve [options]
       cmdb user add NAME --role ROLE ...     (cmdb user --help)
       cmdb token create --user NAME ...      (cmdb token --help)
       cmdb backup --out FILE ...             (cmdb backup --help)
       cmdb restore --in FILE ...             (cmdb restore --help)

  --listen HOST:PORT     address to serve on (env CMDB_LISTEN; default 127.0.0.1:8080)
  --data-dir DIR         folder of the embedded PostgreSQL (env CMDB_DATA_DIR; default ./cmdb-data)
  --database URL         use this PostgreSQL instead of the embedded one (env CMDB_DATABASE_URL)
  --demo                 load a sample estate into an empty database
  --pool-size N          database connections and worker threads (default 2 x cores, 4..32)
  --io-threads N         HTTP I/O threads (default 1)
  --body-limit BYTES     largest request body accepted (default 16777216)
  --upload-limit BYTES   largest background import (Prefer: respond-async), read as a
                         stream into the database (default 4294967296)
  --header-timeout SECS  time allowed for a request's headers, and idle keep-alive (default 10)
  --read-timeout SECS    time allowed for a request's body after its headers (default 30)
  --max-connections N    open connections accepted at once (default 1024)
  --max-waiting-requests N  requests waiting for a worker beyond which 503 + Retry-After
                         is answered at once (default 256)
  --body-memory-limit BYTES  request bodies held in memory at once, across connections;
                         beyond, 503 + Retry-After (default 268435456; >= --body-limit)
  --audit-retention-days N  delete audit log entries older than N days, at start and
                         hourly (env CMDB_AUDIT_RETENTION_DAYS; default 0: keep forever)
  --import-job-retention-days N  delete background import jobs (and their results) that
                         finished more than N days ago, at start and hourly (default 30;
                         0: keep forever)
  --tls-cert FILE        serve HTTPS (TLS 1.2+) with this PEM certificate chain ...
  --tls-key FILE         ... and this PEM private key
  --no-request-log       do not log a line per request
  --no-discovery-worker  leave discovery runs to other instances on the same database
  --no-import-worker     leave background imports to other instances on the same database
  --no-audit-worker      leave audit runs (and their schedule) to other instances
  --audit-debounce S     seconds without imports or discovery runs before the audit they ask
                         for is queued (60)
  --no-audit-cache       do not keep the estate of the latest audit run in memory (each run
                         then reads the whole estate again)
  --no-import-cache      do not keep the identities of imported CI types in memory (each
                         import then reads those of its types again)
  --no-import-warmup     do not build at start the identities imports kept in the last two
                         days (the first import of each type after a start reads it whole)
  --history-graphs N     graphs of past instants kept for as_of impact and traces (default 4)
  --history-builds N     graphs of past instants rebuilt at once; more get 503 (default 2)

Access: CMDB_BOOTSTRAP_TOKEN (32-128 of A-Za-z0-9_-) is the first admin's token while the
database has no active admin; without it the first start writes a random one to
<data-dir>/admin-token. CMDB_TOKEN_PEPPER keys the token hashes (default: <data-dir>/token-pepper;
give every instance on one database the same).
  --help                 show this text
)";

std::size_t ParseCount(const std::string& flag, const std::string& value, std::size_t min,
                       std::size_t max) {
  try {
    std::size_t used = 0;
    unsigned long long n = std::stoull(value, &used);
    if (used == value.size() && n >= min && n <= max) return static_cast<std::size_t>(n);
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
  }
  throw cmdb::model::Error(cmdb::model::ErrorCode::kInvalidArgument,
                           flag + " takes a number from " + std::to_string(min) + " to " +
                               std::to_string(max) + ", not '" + value + "'");
}

std::string Env(const char* name) {
  const char* value =
      std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read once, before threads
  return value != nullptr ? value : "";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "user" || args[0] == "token") {
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    return args[0] == "user" ? cmdb::server::RunUserCommand(rest)
                             : cmdb::server::RunTokenCommand(rest);
  }
  if (args[0] == "backup" || args[0] == "restore") {
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    return args[0] == "backup" ? cmdb::server::RunBackupCommand(rest)
                               : cmdb::server::RunRestoreCommand(rest);
  }
  if (args[0] != "serve") {
    std::cerr << "cmdb: unknown command '" << args[0] << "'\n" << kUsage;
    return 2;
  }
  cmdb::server::ServeConfig config;
  if (auto v = Env("CMDB_LISTEN"); !v.empty()) config.listen = v;
  if (auto v = Env("CMDB_DATA_DIR"); !v.empty()) config.data_dir = v;
  if (auto v = Env("CMDB_DATABASE_URL"); !v.empty()) config.database = v;
  config.bootstrap_token = Env("CMDB_BOOTSTRAP_TOKEN");
  config.token_pepper = Env("CMDB_TOKEN_PEPPER");
  if (auto v = Env("CMDB_AUDIT_RETENTION_DAYS"); !v.empty()) {
    try {
      config.audit_retention_days =
          static_cast<int>(ParseCount("CMDB_AUDIT_RETENTION_DAYS", v, 0, 36500));
    } catch (const cmdb::model::Error& e) {
      std::cerr << "cmdb: " << e.what() << "\n";
      return 2;
    }
  }
  try {
    for (std::size_t i = 1; i < args.size(); ++i) {
      const std::string& flag = args[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) {
          throw cmdb::model::Error(cmdb::model::ErrorCode::kInvalidArgument,
                                   flag + " needs a value");
        }
        return args[++i];
      };
      if (flag == "--listen") {
        config.listen = value();
      } else if (flag == "--data-dir") {
        config.data_dir = value();
      } else if (flag == "--database") {
        config.database = value();
      } else if (flag == "--demo") {
        config.demo = true;
      } else if (flag == "--pool-size") {
        config.pool_size = ParseCount(flag, value(), 1, 512);
      } else if (flag == "--io-threads") {
        config.io_threads = ParseCount(flag, value(), 1, 64);
      } else if (flag == "--body-limit") {
        config.body_limit = ParseCount(flag, value(), 1024, 1ULL << 32);
      } else if (flag == "--upload-limit") {
        config.upload_limit = ParseCount(flag, value(), 1024, 1ULL << 40);
      } else if (flag == "--header-timeout") {
        config.header_timeout = std::chrono::seconds(ParseCount(flag, value(), 1, 3600));
      } else if (flag == "--read-timeout") {
        config.read_timeout = std::chrono::seconds(ParseCount(flag, value(), 1, 3600));
      } else if (flag == "--max-connections") {
        config.max_connections = ParseCount(flag, value(), 1, 1000000);
      } else if (flag == "--max-waiting-requests") {
        config.max_waiting_requests = ParseCount(flag, value(), 0, 1000000);
      } else if (flag == "--body-memory-limit") {
        config.body_memory_limit = ParseCount(flag, value(), 1024, std::size_t{1} << 40);
      } else if (flag == "--history-graphs") {
        config.history_graphs = ParseCount(flag, value(), 0, 1000);
      } else if (flag == "--history-builds") {
        config.history_builds = ParseCount(flag, value(), 1, 64);
      } else if (flag == "--audit-retention-days") {
        config.audit_retention_days = static_cast<int>(ParseCount(flag, value(), 0, 36500));
      } else if (flag == "--import-job-retention-days") {
        config.import_job_retention_days = static_cast<int>(ParseCount(flag, value(), 0, 36500));
      } else if (flag == "--tls-cert") {
        config.tls_cert = value();
      } else if (flag == "--tls-key") {
        config.tls_key = value();
      } else if (flag == "--no-request-log") {
        config.log_requests = false;
      } else if (flag == "--no-discovery-worker") {
        config.discovery_worker = false;
      } else if (flag == "--no-import-worker") {
        config.import_worker = false;
      } else if (flag == "--no-audit-worker") {
        config.audit_worker = false;
      } else if (flag == "--no-audit-cache") {
        config.audit_cache = false;
      } else if (flag == "--no-import-cache") {
        config.import_cache = false;
      } else if (flag == "--no-import-warmup") {
        config.import_warmup = false;
      } else if (flag == "--audit-debounce") {
        config.audit_debounce = std::chrono::seconds(ParseCount(flag, value(), 0, 86400));
      } else if (flag == "--help" || flag == "-h") {
        std::cout << kUsage;
        return 0;
      } else {
        std::cerr << "cmdb: unknown option '" << flag << "'\n" << kUsage;
        return 2;
      }
    }
    if (config.body_memory_limit < config.body_limit) {
      throw cmdb::model::Error(cmdb::model::ErrorCode::kInvalidArgument,
                               "--body-memory-limit must be at least --body-limit (" +
                                   std::to_string(config.body_limit) + ")");
    }
    // Signals are taken by sigwait below; block them before any thread starts so no worker
    // thread is interrupted by them.
    // A shell starts background jobs with SIGINT ignored, and an ignored signal is discarded
    // rather than left for sigwait: restore the default so `kill -INT` stops cmdb there too.
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    cmdb::server::App app(config);
    app.Start();
    const std::string url = app.base_url();
    std::cout << "cmdb is serving on " << url << "\n"
              << "Every endpoint but /health, /ready, /metrics and /api/v1/openapi.json needs\n"
              << "'Authorization: Bearer <token>'.";
    if (!app.demo_tokens_file().empty()) {
      std::cout << " The demo users' tokens, one per role, are in\n  " << app.demo_tokens_file()
                << "\nTry:\n"
                << "  TOKEN=$(jq -r .admin " << app.demo_tokens_file() << ")\n";
    } else if (!app.admin_token_file().empty()) {
      std::cout << " The admin's token is in\n  " << app.admin_token_file() << "\nTry:\n"
                << "  TOKEN=$(cat " << app.admin_token_file() << ")\n";
    } else {
      std::cout << "\nTry, with your token in TOKEN:\n";
    }
    std::cout << "  curl -s -H \"Authorization: Bearer $TOKEN\" " << url << "/api/v1/me\n"
              << "  curl -s -H \"Authorization: Bearer $TOKEN\" '" << url
              << "/api/v1/cis?type=business_service'\n"
              << "  curl -s -H \"Authorization: Bearer $TOKEN\" '" << url
              << "/api/v1/cis/11/impact'   (with --demo: shop-db)\n"
              << "The web UI is at " << url << "/ui/ (sign in with a token).\n"
              << "Stop with Ctrl-C (SIGINT) or SIGTERM.\n"
              << std::flush;
    int received = 0;
    sigwait(&signals, &received);
    std::cerr << "cmdb: received " << (received == SIGINT ? "SIGINT" : "SIGTERM") << ", draining\n";
    app.Stop();
    std::cerr << "cmdb: stopped\n";
    return 0;
  } catch (const cmdb::model::Error& e) {
    std::cerr << "cmdb: " << e.what() << "\n";
    for (const auto& field : e.field_errors()) {
      std::cerr << "  " << field.field << ": " << field.message << "\n";
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cmdb: unexpected failure: " << e.what() << "\n";
    return 1;
  }
}
