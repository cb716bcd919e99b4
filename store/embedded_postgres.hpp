#pragma once
// A private PostgreSQL cluster kept in a data folder: created on first start, reused after,
// recovered after a crash (a stale postmaster.pid or a server left running), reachable only
// through a Unix socket inside the folder (no TCP listener). When cmdb runs as root the
// cluster runs as the `postgres` user, since PostgreSQL refuses to run as root.
// Not thread-safe: one owner starts, restarts and stops it.

#include <string>
#include <vector>

namespace cmdb::store {

// The folder of the newest PostgreSQL server binaries installed (/usr/lib/postgresql/<v>/bin),
// or `configured` when given. Throws Error{kUnavailable} when there are none.
std::string PostgresBinDir(const std::string& configured = "");

struct EmbeddedPostgresOptions {
  std::string data_dir;  // holds pgdata/, run/ (the socket) and postgresql.log
  bool durable = true;   // false: fsync off, for throwaway test clusters
  std::string bin_dir;   // empty: the newest /usr/lib/postgresql/<v>/bin
};

class EmbeddedPostgres {
 public:
  explicit EmbeddedPostgres(EmbeddedPostgresOptions options);
  ~EmbeddedPostgres();  // stops the cluster if this object started it
  EmbeddedPostgres(const EmbeddedPostgres&) = delete;
  EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;

  // Initialises the cluster if the folder has none, clears what a crash left behind and starts
  // the server, waiting until it accepts connections. Creates the database `cmdb`.
  // Throws Error{kUnavailable} with the reason (and the log's path) when it cannot.
  void Start();

  // Whether the folder's cluster is running now and accepts connections (a `cmdb serve` on
  // this folder): a command line tool then uses it as it is, without starting or stopping it.
  bool Running() const;

  // Stops the server (fast shutdown: sessions are closed, data is flushed). Idempotent.
  void Stop();

  // The postmaster's process id while the folder's server process lives (its pid file names a
  // live postgres process), else 0. Says nothing about whether it answers.
  long PostmasterPid() const;

  // Brings the server back after its postmaster died or stopped answering: what is left of it
  // is stopped (immediate shutdown, then SIGKILL when even that is not obeyed) and it is
  // started again; PostgreSQL replays its WAL, so every committed transaction is kept.
  // Throws like Start() when it cannot.
  void Restart();

  // The server binaries' folder (resolved by Start()): pg_dump and pg_restore of the same
  // major version live there.
  const std::string& bin_dir() const { return options_.bin_dir; }

  // A libpq connection string for `database` on this cluster.
  std::string ConnectionString(const std::string& database = "cmdb") const;

  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& log_path() const { return log_path_; }

 private:
  int Run(const std::vector<std::string>& argv, bool as_cluster_owner) const;
  void RecoverFromCrash();
  void KillLeftovers(long pid);
  // Waits (up to 10 s) until no process of a dead server is attached to its shared memory.
  void WaitForOrphanedBackends() const;

  EmbeddedPostgresOptions options_;
  std::string pgdata_;
  std::string socket_dir_;
  std::string log_path_;
  bool running_ = false;
};

}  // namespace cmdb::store
