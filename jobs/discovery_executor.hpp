#pragma once
// Executes discovery runs. Runs are queued in PostgreSQL; any instance's worker claims the
// oldest (jobs/job_worker.hpp). Each run is one transaction: CIs registered, records filled
// in, findings opened, updated and resolved, sightings, decisions and counts all commit
// together or not at all. A run that fails records its error; the worker goes on.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "jobs/job_worker.hpp"
#include "store/db_pool.hpp"

namespace cmdb::jobs {

// Reconciles and writes one claimed run on `db`; `progress(done, total)` is called while it
// works. Marks the run succeeded or failed; returns true when it succeeded. Throws only when
// the database fails.
bool ExecuteDiscoveryRun(store::DbSession& db, std::int64_t run_id,
                         const std::function<void(std::int64_t, std::int64_t)>& progress);

struct DiscoveryWorkerOptions {
  std::string instance = "cmdb";  // recorded in claimed_by
  std::chrono::milliseconds poll{500};
  bool schedule = true;  // queue runs of sources whose interval has come round
  // Called after a run that registered CIs committed: the instance's graph is out of date
  // (the server invalidates its graph cache, so its next read sees the new CIs at once
  // rather than after the background reload the notification triggers).
  std::function<void()> graph_changed;
};

class DiscoveryWorker {
 public:
  // Opens its own two sessions to `dsn` (one works, one reports progress).
  DiscoveryWorker(const std::string& dsn, const DiscoveryWorkerOptions& options);

  void Start() { worker_.Start(); }
  // Finishes the run in progress, then stops. Idempotent.
  void Stop() { worker_.Stop(); }
  // A run was queued: look now rather than at the next poll.
  void Wake() { worker_.Wake(); }

  // One pass on the calling thread: recover abandoned runs, queue due sources, execute queued
  // runs until none is left. Returns how many runs it executed.
  int RunPending() { return worker_.RunPending(); }

  // Runs left "running" by a dead instance go back to the queue (or fail after 3 attempts).
  // Returns how many were touched.
  int RecoverAbandoned() { return worker_.RecoverAbandoned(); }

  store::DbPool& pool() { return worker_.pool(); }

 private:
  JobWorker worker_;
};

}  // namespace cmdb::jobs
