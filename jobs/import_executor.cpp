#include "jobs/import_executor.hpp"

#include <functional>
#include <optional>

#include "import/importer.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "model/log.hpp"
#include "store/audit_repository.hpp"
#include "store/import_job_repository.hpp"
#include "store/transaction.hpp"

namespace cmdb::jobs {

using model::Error;
using model::ErrorCode;

namespace {

// The cause of an internal failure goes to the log, as for requests; the job says to look.
void FailInternally(store::ImportJobRepository& jobs, std::int64_t id, const char* cause) {
  model::Log(model::LogLevel::kError, "import job failed", {{"job", id}, {"cause", cause}});
  jobs.Fail(id, Error(ErrorCode::kInternal, "the import failed; see the server log"));
}

// Feeds each chunk of the job's payload to `read`, in order.
void ReadPayload(store::ImportJobRepository& jobs, std::int64_t id,
                 const std::function<void(std::string_view)>& read) {
  for (int seq = 0;; ++seq) {
    std::optional<std::string> chunk = jobs.Chunk(id, seq);
    if (!chunk) return;
    read(*chunk);
  }
}

}  // namespace

bool ExecuteImportJob(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                      const ImportJobLimits& limits, import::ImportCache* cache) {
  store::ImportJobRepository jobs(work);
  std::optional<store::ImportJobInput> input = jobs.Input(id);
  if (!input) return false;
  import::ImportOptions options;
  options.atomic = input->atomic;
  options.ctx = {input->submitted_by, "import"};
  options.max_errors = limits.max_errors;
  options.cache = cache;
  // Progress and the payload's chunks go through the second session: `work` is the import's
  // while it writes a batch beside the reading of the next (BatchImport).
  store::ImportJobRepository reporter(progress);
  std::int64_t bytes_read = 0;
  options.progress = [&](const import::ImportProgress& p) {
    reporter.ReportPhase(id, {.phase = p.phase,
                              .done = p.done,
                              .total = import::kImportSteps,
                              .rows = p.rows >= 0 ? std::optional(p.rows) : std::nullopt,
                              .rows_done = p.rows_done,
                              .bytes_read = bytes_read});
  };
  try {
    // The import and the job's outcome commit together: a crash in between cannot leave an
    // import done and its job to be run again. A crash before leaves nothing of the import,
    // and the job is run again from the start.
    store::Transaction tr(work);
    import::ImportResult result;
    // Declared after the transaction, so destroyed before it: a failed import's write ends
    // before the rollback.
    std::optional<import::CsvStreamImport> csv;
    std::optional<import::BatchImport> batch;
    if (input->format == "csv") {
      csv.emplace(work, input->ci_type.value_or(""), options, limits.batches.cis);
      if (input->ci_rows) csv->ExpectCiRows(*input->ci_rows);
      ReadPayload(reporter, id, [&](std::string_view chunk) {
        csv->Write(chunk);
        bytes_read += static_cast<std::int64_t>(chunk.size());
      });
      result = csv->Finish();
    } else {
      batch.emplace(work, options);
      if (input->ci_rows) batch->ExpectCiRows(*input->ci_rows);
      batch->Report("parse", 0);
      result = import::ImportJsonParts(
          *batch, limits.batches,
          [&](int /*pass*/, const std::function<void(std::string_view)>& sink) {
            bytes_read = 0;  // a second reading (relations before the end of "cis") counts again
            ReadPayload(reporter, id, [&](std::string_view chunk) {
              bytes_read += static_cast<std::int64_t>(chunk.size());
              sink(chunk);
            });
          });
      batch->Report("commit", import::kImportSteps - 1);
    }
    jobs.Succeed(id, import::ImportResultToJson(result), import::kImportSteps);
    tr.Commit();
    // The types whose identities the job kept are recorded for the warm-up after a restart.
    if (csv) csv->Committed();
    if (batch) batch->Committed();
    return result.Wrote();
  } catch (const Error& e) {
    // The database is away: leave the job running; once this session is gone its lock is
    // free and the job is retried.
    if (e.code() == ErrorCode::kUnavailable) throw;
    if (e.code() == ErrorCode::kInternal) {
      FailInternally(jobs, id, e.what());
    } else {
      jobs.Fail(id, e);
    }
  } catch (const std::exception& e) {
    FailInternally(jobs, id, e.what());
  }
  return false;
}

std::unique_ptr<JobWorker> MakeImportWorker(const std::string& dsn,
                                            const ImportWorkerOptions& options) {
  return std::make_unique<JobWorker>(
      dsn, store::JobTable{"import_jobs", "cmdb_import_lock_key", "import"}, options.worker,
      [graph_changed = options.graph_changed, limits = options.limits, cache = options.cache](
          store::DbSession& work, store::DbSession& progress, std::int64_t id) {
        if (!ExecuteImportJob(work, progress, id, limits, cache)) return;
        if (graph_changed) graph_changed();
        store::AuditRepository(progress).RequestRun(model::AuditTrigger::kImport);
      });
}

}  // namespace cmdb::jobs
