#include "store/job_queue.hpp"

#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::store {

std::vector<std::int64_t> JobQueue::Running() {
  std::vector<std::int64_t> ids;
  sql::ForEachRow(db_, "SELECT id FROM " + table_.table + " WHERE state = 'running' ORDER BY id",
                  [&](const soci::row& r) { ids.push_back(sql::Int(r, 0)); });
  return ids;
}

bool JobQueue::TryLock(std::int64_t id) {
  bool got = false;
  sql::Run(db_, "SELECT pg_try_advisory_lock(" + table_.lock_function + "($1))", soci::into(got),
           soci::use(static_cast<long long>(id)));
  return got;
}

void JobQueue::Unlock(std::int64_t id) {
  sql::Execute(db_, "SELECT pg_advisory_unlock(" + table_.lock_function + "($1))",
               soci::use(static_cast<long long>(id)));
}

bool JobQueue::Requeue(std::int64_t id, int max_attempts, bool count_attempt) {
  if (!count_attempt) {
    return sql::Execute(db_,
                        "UPDATE " + table_.table +
                            " SET state = 'queued', attempts = greatest(attempts - 1, 0), "
                            "claimed_by = NULL, progress_done = 0 WHERE id = $1 AND state = "
                            "'running'",
                        soci::use(static_cast<long long>(id))) > 0;
  }
  return sql::Execute(db_,
                      "UPDATE " + table_.table +
                          " SET state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, "
                          "error = CASE WHEN attempts >= $2 THEN 'abandoned by a stopped "
                          "instance ' || attempts || ' times' ELSE NULL END, finished_at = CASE "
                          "WHEN attempts >= $2 THEN clock_timestamp() END, claimed_by = NULL, "
                          "progress_done = 0 WHERE id = $1 AND state = 'running'",
                      soci::use(static_cast<long long>(id)), soci::use(max_attempts)) > 0;
}

std::optional<std::int64_t> JobQueue::Claim(const std::string& instance) {
  Transaction tr(db_);
  long long id = 0;
  if (!sql::Run(db_,
                "SELECT id FROM " + table_.table +
                    " WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                soci::into(id))) {
    return std::nullopt;
  }
  if (!TryLock(id)) return std::nullopt;  // being recovered elsewhere right now; next time
  sql::Execute(db_,
               "UPDATE " + table_.table +
                   " SET state = 'running', attempts = attempts + 1, claimed_by = $2, "
                   "started_at = clock_timestamp(), progress_done = 0 WHERE id = $1",
               soci::use(id), soci::use(instance));
  tr.Commit();
  return id;
}

}  // namespace cmdb::store
