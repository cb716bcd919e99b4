#include "jobs/job_worker.hpp"

#include "model/error.hpp"
#include "model/log.hpp"

namespace cmdb::jobs {

namespace {

constexpr int kMaxAttempts = 3;

// Puts a running job back in the queue (JobQueue::Requeue) when no live session works on it:
// only then is its lock free. Whether it was touched.
bool RequeueIfFree(store::JobQueue& queue, std::int64_t id, bool count_attempt) {
  if (!queue.TryLock(id)) return false;
  bool touched = false;
  try {
    touched = queue.Requeue(id, kMaxAttempts, count_attempt);
  } catch (...) {
    queue.Unlock(id);
    throw;
  }
  queue.Unlock(id);
  return touched;
}

}  // namespace

JobWorker::JobWorker(const std::string& dsn, store::JobTable table, JobWorkerOptions options,
                     Execute execute, BeforeClaims before_claims)
    : table_(std::move(table)),
      options_(std::move(options)),
      execute_(std::move(execute)),
      before_claims_(std::move(before_claims)),
      pool_(std::make_unique<store::DbPool>(dsn, 2)) {}

JobWorker::~JobWorker() { Stop(); }

void JobWorker::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void JobWorker::Stop() {
  stopping_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void JobWorker::Wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

int JobWorker::RecoverAbandoned() {
  store::DbSession session = pool_->Lease();
  store::JobQueue queue(session, table_);
  int touched = 0;
  for (std::int64_t id : queue.Running()) {
    touched += RequeueIfFree(queue, id, /*count_attempt=*/true) ? 1 : 0;
  }
  return touched;
}

bool JobWorker::ClaimAndExecute() {
  store::DbSession session = pool_->Lease();
  store::JobQueue queue(session, table_);
  const std::optional<std::int64_t> id = queue.Claim(options_.instance);
  if (!id) return false;
  struct Unlock {
    store::JobQueue& queue;
    std::int64_t id;
    ~Unlock() {
      try {
        queue.Unlock(id);
      } catch (...) {  // NOLINT(bugprone-empty-catch): a lost connection drops the lock too
      }
    }
  } unlock{queue, *id};
  store::DbSession progress = pool_->Lease();
  try {
    execute_(session, progress, *id);
  } catch (const model::Error& e) {
    // Its session is gone with the database, and its lock with it; it is put back once the
    // database answers again.
    if (e.code() == model::ErrorCode::kUnavailable) interrupted_ = *id;
    throw;
  }
  return true;
}

void JobWorker::RequeueInterrupted() {
  if (!interrupted_) return;
  store::DbSession session = pool_->Lease();
  store::JobQueue queue(session, table_);
  RequeueIfFree(queue, *interrupted_, /*count_attempt=*/false);
  interrupted_.reset();  // or another instance has taken it over meanwhile
}

int JobWorker::RunPending() {
  RequeueInterrupted();
  RecoverAbandoned();
  if (before_claims_) {
    store::DbSession session = pool_->Lease();
    before_claims_(session);
  }
  int executed = 0;
  while (!stopping_ && ClaimAndExecute()) ++executed;
  return executed;
}

void JobWorker::Loop() {
  while (!stopping_) {
    try {
      RunPending();
    } catch (const std::exception& e) {
      // The database is unreachable or restarting: try again at the next poll.
      model::Log(model::LogLevel::kWarn, "job worker pass failed",
                 {{"kind", table_.kind}, {"error", e.what()}});
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.poll, [this] { return woken_ || stopping_.load(); });
    woken_ = false;
  }
}

}  // namespace cmdb::jobs
