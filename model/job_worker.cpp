#include "model/job_worker.hpp"

#include <cstdio>

#include "model/db_pool.hpp"
#include "model/db_query.hpp"
#include "model/error.hpp"

namespace cmdb::model {

namespace {

constexpr int kMaxAttempts = 3;

}  // namespace

JobWorker::JobWorker(const std::string& dsn, JobTable table, JobWorkerOptions options,
                     Execute execute, BeforeClaims before_claims)
    : table_(std::move(table)),
      options_(std::move(options)),
      execute_(std::move(execute)),
      before_claims_(std::move(before_claims)),
      pool_(std::make_unique<DbPool>(dsn, 2)) {}

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
  DbSession session = pool_->Lease();
  soci::session& sql = session.sql();
  const std::string lock = "SELECT pg_try_advisory_lock(" + table_.lock_function + "($1))";
  const std::string unlock = "SELECT pg_advisory_unlock(" + table_.lock_function + "($1))";
  PgResult running =
      Query(sql, "SELECT id FROM " + table_.table + " WHERE state = 'running' ORDER BY id");
  int touched = 0;
  for (int i = 0; i < running.rows(); ++i) {
    const PgParam id = P(running.Int(i, 0));
    // The lock is free only when no live session works on the job.
    PgResult got = Query(sql, lock, {id});
    if (!got.Bool(0, 0)) continue;
    try {
      PgResult r = Query(
          sql,
          "UPDATE " + table_.table +
              " SET state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, error = "
              "CASE WHEN attempts >= $2 THEN 'abandoned by a stopped instance ' || attempts || "
              "' times' ELSE NULL END, finished_at = CASE WHEN attempts >= $2 THEN "
              "clock_timestamp() END, claimed_by = NULL, progress_done = 0 WHERE id = $1 AND "
              "state = 'running'",
          {id, P(kMaxAttempts)});
      touched += static_cast<int>(r.affected());
    } catch (...) {
      Query(sql, unlock, {id});
      throw;
    }
    Query(sql, unlock, {id});
  }
  return touched;
}

bool JobWorker::ClaimAndExecute() {
  DbSession session = pool_->Lease();
  soci::session& sql = session.sql();
  std::int64_t id = 0;
  {
    Transaction tr(sql);
    PgResult next = Query(sql, "SELECT id FROM " + table_.table +
                                   " WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE "
                                   "SKIP LOCKED");
    if (next.rows() == 0) return false;
    id = next.Int(0, 0);
    PgResult got =
        Query(sql, "SELECT pg_try_advisory_lock(" + table_.lock_function + "($1))", {P(id)});
    if (!got.Bool(0, 0)) return false;  // being recovered elsewhere right now; next time
    Query(sql,
          "UPDATE " + table_.table +
              " SET state = 'running', attempts = attempts + 1, claimed_by = $2, started_at = "
              "clock_timestamp(), progress_done = 0 WHERE id = $1",
          {P(id), P(options_.instance)});
    tr.Commit();
  }
  struct Unlock {
    soci::session& sql;
    const std::string& function;
    std::int64_t id;
    ~Unlock() {
      try {
        Query(sql, "SELECT pg_advisory_unlock(" + function + "($1))", {P(id)});
      } catch (...) {  // NOLINT(bugprone-empty-catch): a lost connection drops the lock too
      }
    }
  } unlock{sql, table_.lock_function, id};
  DbSession progress = pool_->Lease();
  execute_(sql, progress.sql(), id);
  return true;
}

int JobWorker::RunPending() {
  RecoverAbandoned();
  if (before_claims_) {
    DbSession session = pool_->Lease();
    before_claims_(session.sql());
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
      std::fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"%s worker: %s\"}\n", table_.kind.c_str(),
                   e.what());
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.poll, [this] { return woken_ || stopping_.load(); });
    woken_ = false;
  }
}

}  // namespace cmdb::model
