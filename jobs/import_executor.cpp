#include "jobs/import_executor.hpp"

#include "import/importer.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "model/log.hpp"
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

}  // namespace

bool ExecuteImportJob(store::DbSession& work, store::DbSession& progress, std::int64_t id) {
  store::ImportJobRepository jobs(work);
  std::optional<store::ImportJobInput> input = jobs.Input(id);
  if (!input) return false;
  import::ImportOptions options;
  options.atomic = input->atomic;
  options.ctx = {input->submitted_by, "import"};
  store::ImportJobRepository reporter(progress);
  options.progress = [&](std::string_view phase, int done, int total, std::int64_t rows) {
    reporter.ReportPhase(id, phase, done, total, rows);
  };
  try {
    options.progress("parse", 0, import::kImportSteps, 0);
    // The import and the job's outcome commit together: a crash in between cannot leave an
    // import done and its job to be run again.
    store::Transaction tr(work);
    import::ImportResult result;
    if (input->format == "csv") {
      result = import::ImportCsv(work, input->ci_type.value_or(""), input->payload, options);
    } else {
      boost::json::value document = model::ParseJson(input->payload);
      std::string().swap(input->payload);
      result = import::ImportDocument(work, document, options);
    }
    jobs.Succeed(id, import::ImportResultToJson(result), import::kImportSteps);
    tr.Commit();
    return true;
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
      [graph_changed = options.graph_changed](store::DbSession& work, store::DbSession& progress,
                                              std::int64_t id) {
        if (ExecuteImportJob(work, progress, id) && graph_changed) graph_changed();
      });
}

}  // namespace cmdb::jobs
