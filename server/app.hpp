#pragma once
// Wires the long-lived objects of `cmdb serve`: the embedded PostgreSQL (or none, with
// --database), the connection pool, migrations, the demo estate, the router and the HTTP
// listener. Start/Stop from one thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "jobs/import_executor.hpp"
#include "store/database_supervisor.hpp"

namespace cmdb::server {

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./cmdb-data";
  std::string database;  // libpq URI or keyword string; empty: embedded PostgreSQL
  bool demo = false;
  std::size_t pool_size = 0;  // database sessions = worker threads; 0: 2 x CPU cores (4..32)
  std::size_t io_threads = 1;
  std::size_t body_limit = std::size_t{16} * 1024 * 1024;
  std::uint64_t upload_limit = std::uint64_t{4} << 30;  // a background import's streamed body
  std::size_t max_connections = 1024;
  std::size_t max_waiting_requests = 256;  // --max-waiting-requests: beyond, 503 at once
  std::uint64_t body_memory_limit = std::uint64_t{256} * 1024 * 1024;  // --body-memory-limit
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds read_timeout{30};
  bool durable = true;  // embedded cluster: fsync on
  bool log_requests = true;
  bool discovery_worker = true;  // execute queued and scheduled discovery runs
  bool import_worker = true;     // execute queued background imports
  bool audit_worker = true;      // execute audit runs, queue the nightly and debounced ones
  bool audit_cache = true;       // keep the latest audit run's estate for the next run
  bool import_cache = true;      // keep imported types' identities for the next import
  // Build at start, in the background, the identities imports kept in the last two days
  // (--no-import-warmup: the first import of each type after a start reads it whole).
  bool import_warmup = true;
  std::chrono::seconds audit_debounce{60};  // quiet time after imports/discovery before an audit
  jobs::ImportJobLimits import_limits;      // batches of an import read as a stream
  // false: every graph update rebuilds the arrays (the graph benchmarks' baseline).
  bool graph_incremental = true;
  std::size_t history_graphs = 4;  // graphs of past instants kept (as_of impact, traces)
  std::size_t history_builds = 2;  // graphs of past instants rebuilt at once; more get a 503
  // CMDB_BOOTSTRAP_TOKEN: the first admin's token while no active admin exists.
  std::string bootstrap_token;
  // CMDB_TOKEN_PEPPER: the key of token hashes; empty: <data_dir>/token-pepper.
  std::string token_pepper;
  std::chrono::milliseconds token_cache{1000};  // how long a verified token is trusted
  // --audit-retention-days: audit log entries older than this are deleted (at start, then
  // hourly); 0 keeps them forever.
  int audit_retention_days = 0;
  // --import-job-retention-days: background import jobs that finished longer ago than this
  // are deleted with their results (at start, then hourly); 0 keeps them forever.
  int import_job_retention_days = 30;
  // How the database is watched, and the embedded one restarted (probe interval, backoff).
  store::SupervisorOptions supervisor;
  // HTTPS when both are set (PEM files): --tls-cert, --tls-key.
  std::string tls_cert;
  std::string tls_key;
};

// Parses "host:port" ("127.0.0.1:8080", "[::1]:0"). Throws model::Error{kInvalidArgument}.
void ParseListen(const std::string& listen, std::string& host, std::uint16_t& port);

class App {
 public:
  explicit App(ServeConfig config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Starts everything; throws model::Error naming what failed (and stops what had started).
  void Start();
  // Drains HTTP, closes the pool and stops the embedded PostgreSQL. Idempotent.
  void Stop();

  std::uint16_t port() const;
  std::string base_url() const;
  int demo_cis_loaded() const;
  // Where the first start wrote the admin token ("" when it did not: an admin existed, or
  // CMDB_BOOTSTRAP_TOKEN was given), and the demo accounts' tokens ("" without --demo).
  std::string admin_token_file() const;
  std::string demo_tokens_file() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cmdb::server
