#pragma once
// A queue of jobs in a PostgreSQL table (discovery_runs, import_jobs): the statements behind
// jobs/job_worker.hpp. A job is claimed with FOR UPDATE SKIP LOCKED and held, while it runs,
// by a session-level advisory lock; a job whose lock is free while it says "running" was
// abandoned by a stopped instance. The table has the columns id, state, attempts, claimed_by,
// started_at, finished_at, error and progress_done; its lock function maps an id to the
// advisory-lock key. Borrows one session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/db_pool.hpp"

namespace cmdb::store {

struct JobTable {
  std::string table;          // "discovery_runs"; a trusted name
  std::string lock_function;  // "cmdb_run_lock_key"; a trusted name
  std::string kind;           // for log lines: "discovery"
};

class JobQueue {
 public:
  JobQueue(DbSession& db, const JobTable& table) : db_(db), table_(table) {}

  // The jobs that say they are running, oldest first.
  std::vector<std::int64_t> Running();
  // Takes the job's advisory lock (held by this session until Unlock); false when another
  // live session holds it.
  bool TryLock(std::int64_t id);
  void Unlock(std::int64_t id);
  // A running job whose lock this session holds goes back to the queue, or fails once it has
  // been attempted `max_attempts` times. `count_attempt` false: the run that was interrupted
  // does not count (the database went away under it). Returns whether it was touched.
  bool Requeue(std::int64_t id, int max_attempts, bool count_attempt = true);
  // Claims the oldest queued job for `instance`: locked (TryLock) and marked running. nullopt
  // when there is none, or it is being recovered elsewhere right now.
  std::optional<std::int64_t> Claim(const std::string& instance);

 private:
  DbSession& db_;
  const JobTable& table_;
};

}  // namespace cmdb::store
