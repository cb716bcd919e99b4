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

// What executing a job starts from; the payload is read with Chunk.
struct ImportJobInput {
  std::string format;
  std::optional<std::string> ci_type;
  bool atomic = true;
  std::string submitted_by;
  std::int64_t payload_bytes = 0;
  std::optional<std::int64_t> ci_rows;  // of the payload, counted as it was uploaded
};

// The largest chunk a payload is stored in.
inline constexpr std::size_t kImportChunkBytes = std::size_t{1} << 20;

class ImportJobRepository {
 public:
  explicit ImportJobRepository(DbSession& db) : db_(db) {}

  // A job whose payload arrives in parts, all in the caller's transaction (nothing runs it
  // before that commits): Create, Append each part, then Seal.
  std::int64_t Create(const model::ImportJobRequest& request);
  // Appends `bytes` as chunk `seq` (0, 1, ...).
  void Append(std::int64_t id, int seq, std::string_view bytes);
  model::ImportJob Seal(std::int64_t id, std::int64_t payload_bytes,
                        std::optional<std::int64_t> ci_rows = std::nullopt);
  std::optional<model::ImportJob> Find(std::int64_t id);
  // Jobs with id > `after`, oldest first, optionally in one state.
  std::vector<model::ImportJob> List(std::optional<model::JobState> state, std::int64_t after,
                                     int limit);
  // Deletes the jobs that finished (succeeded or failed) more than `days` days ago, with their
  // results; returns how many. Queued and running jobs are never touched.
  std::int64_t PruneFinished(int days);

  // --- while a job executes ---
  // The job's input when it is running; nullopt otherwise.
  std::optional<ImportJobInput> Input(std::int64_t id);
  // Chunk `seq` of the job's payload; nullopt past the last one.
  std::optional<std::string> Chunk(std::int64_t id, int seq);
  struct Progress {
    std::string_view phase;
    int done = 0;
    int total = 0;
    std::optional<std::int64_t> rows;  // of the whole import, once known
    std::int64_t rows_done = 0;
    std::int64_t bytes_read = 0;
  };
  void ReportPhase(std::int64_t id, const Progress& progress);
  // The job's outcome; its payload's chunks are dropped (by the trigger of
  // 0017_import_job_payload_lifetime.sql, as when stopped instances abandon it for good).
  void Succeed(std::int64_t id, const boost::json::object& result, int phases);
  void Fail(std::int64_t id, const model::Error& error);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
