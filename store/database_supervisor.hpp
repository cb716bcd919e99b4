#pragma once
// Watches the database a cmdb instance runs on and brings it back when it goes away.
//
// A thread probes PostgreSQL every second (a new connection and `SELECT 1`, bounded by a
// timeout). While probes fail the database is down: the pool refuses leases at once with a
// 503 that says when to retry, instead of letting every request find out by itself. With the
// embedded PostgreSQL, a dead postmaster (or one that stops answering for several probes) is
// restarted; PostgreSQL replays its WAL. Restarts that follow each other closely back off
// (RestartBackoff). With --database there is nothing to restart: the supervisor waits for the
// server to come back. Either way, once the database answers again every pool of the instance
// reopens each connection it had before the outage, so no statement prepared on a lost backend
// is used.
// The graph cache's listener reconnects by itself and reloads from the change log what it
// missed (GraphCache::Listen).
// Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/timestamp.hpp"

namespace cmdb::store {

class DbPool;
class EmbeddedPostgres;

// How long to wait before restarting a database that went down: at once after a crash that
// ends a healthy stretch; `first`, twice that, four times... up to `max` while restarts follow
// each other with less than `stable_after` of health in between.
class RestartBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  RestartBackoff(std::chrono::seconds first, std::chrono::seconds max,
                 std::chrono::seconds stable_after)
      : first_(first), max_(max), stable_after_(stable_after) {}

  // The database went down at `now`, or a restart attempt failed: how long to wait before the
  // next attempt. Each call counts as one attempt of the current streak.
  std::chrono::seconds NextDelay(Clock::time_point now);
  // The database answers again since `now`.
  void Recovered(Clock::time_point now) { healthy_since_ = now; }
  int streak() const { return streak_; }

 private:
  std::chrono::seconds first_;
  std::chrono::seconds max_;
  std::chrono::seconds stable_after_;
  int streak_ = 0;  // attempts since the last stretch of health of at least stable_after_
  std::optional<Clock::time_point> healthy_since_;  // since the latest Recovered()
};

struct SupervisorOptions {
  std::chrono::milliseconds interval{1000};       // between probes
  std::chrono::milliseconds probe_timeout{5000};  // a probe not answered by then failed
  // Failed probes in a row of a postmaster that still lives before it is restarted (a dead one
  // is restarted at the first failed probe).
  int unresponsive_probes = 3;
  std::chrono::seconds first_backoff{1};
  std::chrono::seconds max_backoff{60};
  std::chrono::seconds stable_after{300};
  // A refused lease tells the client to retry after this long.
  std::chrono::seconds retry_after{5};
};

enum class DatabaseHealth { kUp, kDown, kRestarting };

struct DatabaseStatus {
  DatabaseHealth health = DatabaseHealth::kUp;
  bool supervised = false;            // the embedded PostgreSQL, which the supervisor restarts
  std::string last_error;             // why the latest probe or restart failed
  std::uint64_t outages = 0;          // times the database went down
  std::uint64_t restarts = 0;         // restarts of the embedded PostgreSQL that worked
  std::uint64_t failed_restarts = 0;  // ... that did not
  model::Timestamp down_since{};      // set while not kUp
  model::Timestamp last_restart{};    // zero before the first restart
};

const char* HealthName(DatabaseHealth health);

class DatabaseSupervisor {
 public:
  // `embedded`: the cluster to restart, or null (--database). `pools`: every pool of the
  // instance on that database, marked down and up together. They must outlive the supervisor;
  // the supervisor alone restarts `embedded` while it runs.
  DatabaseSupervisor(std::string dsn, EmbeddedPostgres* embedded, std::vector<DbPool*> pools,
                     SupervisorOptions options = {});
  ~DatabaseSupervisor();
  DatabaseSupervisor(const DatabaseSupervisor&) = delete;
  DatabaseSupervisor& operator=(const DatabaseSupervisor&) = delete;

  void Start();
  void Stop();  // idempotent

  DatabaseStatus Status() const;

 private:
  void Loop();
  // Whether the database answers `SELECT 1` within the probe timeout; `error` says why not.
  // `timed_out`: it was reached but did not answer in time (hung or overloaded, unlike a
  // refused connection).
  bool Probe(std::string& error, bool& timed_out);
  void MarkDown(const std::string& error, DatabaseHealth health);
  void MarkUp();
  // Restarts the embedded cluster after the backoff (unless stopped meanwhile); a failure is
  // counted and logged, and the next probe tries again.
  void RestartEmbedded();
  // Sleeps up to `duration`; false when Stop() was called.
  bool Sleep(std::chrono::milliseconds duration);

  std::string dsn_;
  EmbeddedPostgres* embedded_;
  std::vector<DbPool*> pools_;
  SupervisorOptions options_;
  RestartBackoff backoff_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  DatabaseStatus status_;
  std::thread thread_;
};

}  // namespace cmdb::store
