#pragma once
// Background imports in PostgreSQL (model/import_job.hpp): queued with their payload, run by
// any instance's import worker (jobs/import_executor.hpp), then holding the answer or the
// failure. A repository borrows one session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "model/error.hpp"
#include "model/import_job.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// What executing a job starts from.
struct ImportJobInput {
  std::string format;
  std::optional<std::string> ci_type;
  bool atomic = true;
  std::string submitted_by;
  std::string payload;
};

class ImportJobRepository {
 public:
  explicit ImportJobRepository(DbSession& db) : db_(db) {}

  model::ImportJob Enqueue(const model::ImportJobRequest& request);
  std::optional<model::ImportJob> Find(std::int64_t id);
  // Jobs with id > `after`, oldest first, optionally in one state.
  std::vector<model::ImportJob> List(std::optional<model::JobState> state, std::int64_t after,
                                     int limit);

  // --- while a job executes ---
  // The job's input when it is running; nullopt otherwise.
  std::optional<ImportJobInput> Input(std::int64_t id);
  void ReportPhase(std::int64_t id, std::string_view phase, int done, int total, std::int64_t rows);
  // The job's outcome; its payload is dropped.
  void Succeed(std::int64_t id, const boost::json::object& result, int phases);
  void Fail(std::int64_t id, const model::Error& error);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
