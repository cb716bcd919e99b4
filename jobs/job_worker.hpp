#pragma once
// A background worker for jobs queued in a PostgreSQL table (discovery runs, import jobs; see
// store/job_queue.hpp). Any instance claims the oldest queued job and holds it while it works,
// so a job whose lock is free while it says "running" was abandoned by a stopped instance: it
// is queued again, or failed after three attempts. One thread; Start/Stop/Wake are
// thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/db_pool.hpp"
#include "store/job_queue.hpp"

namespace cmdb::jobs {

struct JobWorkerOptions {
  std::string instance = "cmdb";  // recorded in claimed_by
  std::chrono::milliseconds poll{500};
};

class JobWorker {
 public:
  // Executes one claimed job on `work` and records its outcome (state, finished_at) itself;
  // `progress` is a second session whose writes are visible while the job's transaction is
  // still open. Throws only when the database fails.
  using Execute =
      std::function<void(store::DbSession& work, store::DbSession& progress, std::int64_t id)>;
  // Called on every pass before jobs are claimed (discovery queues its scheduled runs).
  using BeforeClaims = std::function<void(store::DbSession&)>;

  // Opens its own two sessions to `dsn`.
  JobWorker(const std::string& dsn, store::JobTable table, JobWorkerOptions options,
            Execute execute, BeforeClaims before_claims = {});
  ~JobWorker();
  JobWorker(const JobWorker&) = delete;
  JobWorker& operator=(const JobWorker&) = delete;

  void Start();
  // Finishes the job in progress, then stops. Idempotent.
  void Stop();
  // A job was queued: look now rather than at the next poll.
  void Wake();

  // One pass on the calling thread: recover abandoned jobs, run `before_claims`, execute
  // queued jobs until none is left. Returns how many jobs it executed.
  int RunPending();

  // Jobs left "running" by a stopped instance go back to the queue (or fail after 3
  // attempts). Returns how many were touched.
  int RecoverAbandoned();

  // Its own sessions (for the DatabaseSupervisor, which marks them down and up).
  store::DbPool& pool() { return *pool_; }

 private:
  bool ClaimAndExecute();
  // Puts back the job that the database's going away interrupted, without counting it as an
  // attempt (the attempts limit stops jobs that kill instances, not database outages).
  void RequeueInterrupted();
  void Loop();

  store::JobTable table_;
  JobWorkerOptions options_;
  Execute execute_;
  BeforeClaims before_claims_;
  std::unique_ptr<store::DbPool> pool_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::optional<std::int64_t> interrupted_;  // the worker thread's only
};

}  // namespace cmdb::jobs
