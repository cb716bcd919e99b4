#pragma once
// Background imports. A large import need not hold an HTTP request open: the body is queued
// in `import_jobs` and any instance's ImportJobWorker (a model::JobWorker) runs it with the
// same importer, reporting the phase it is in. The job then holds the import's answer (counts,
// per-row errors, ids) or why it failed. Jobs outlive the instance that queued them; one left
// running by a stopped instance is retried (three attempts).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/error.hpp"
#include "model/importer.hpp"
#include "model/job_worker.hpp"
#include "model/timestamp.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

// The answer of an import, as POST /api/v1/import returns it and a job stores it.
boost::json::object ImportResultToJson(const ImportResult& result);

struct ImportJobRequest {
  std::string format;                  // json, csv
  std::optional<std::string> ci_type;  // csv only
  bool atomic = true;
  std::string payload;
  std::string submitted_by = "anonymous";
};

struct ImportJob {
  std::int64_t id = 0;
  std::string state;   // queued, running, succeeded, failed
  std::string format;  // json, csv
  std::optional<std::string> ci_type;
  bool atomic = true;
  std::int64_t payload_bytes = 0;
  std::string submitted_by;
  std::optional<std::int64_t> rows;  // CIs + relations, once parsed
  std::optional<std::string> phase;  // while running
  std::int64_t phases_done = 0;
  std::optional<std::int64_t> phases_total;
  boost::json::value result;  // ImportResultToJson once succeeded, else null
  // A failed job: what went wrong, as the synchronous import would have answered it.
  std::optional<std::string> error;
  std::optional<ErrorCode> error_code;
  std::vector<FieldError> error_fields;
  int attempts = 0;
  std::optional<std::string> claimed_by;
  Timestamp queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
};

// Queues, reads and lists import jobs on a borrowed session. Not thread-safe.
class ImportJobStore {
 public:
  explicit ImportJobStore(soci::session& sql) : sql_(sql) {}

  ImportJob Enqueue(const ImportJobRequest& request);
  std::optional<ImportJob> Find(std::int64_t id);
  // Jobs with id > `after`, oldest first, optionally in one state.
  std::vector<ImportJob> List(const std::optional<std::string>& state, std::int64_t after,
                              int limit);

 private:
  soci::session& sql_;
};

// Runs claimed job `id` on `work`, reporting phases through `progress`, and records its
// outcome. Returns true when it succeeded. Throws only when the database fails.
bool ExecuteImportJob(soci::session& work, soci::session& progress, std::int64_t id);

struct ImportJobWorkerOptions {
  JobWorkerOptions worker;
  // Called after a job committed: the instance's graph cache is out of date.
  std::function<void()> graph_changed;
};

// A worker (own thread, two sessions of its own) that executes queued import jobs.
std::unique_ptr<JobWorker> MakeImportJobWorker(const std::string& dsn,
                                               const ImportJobWorkerOptions& options);

}  // namespace cmdb::model
