#pragma once
// Runs background imports (model/import_job.hpp): any instance's import worker claims a queued
// job and runs it with the same importer as a synchronous import, reporting the phase it is
// in. The import and the job's outcome commit together. A job left running by a stopped
// instance is retried (three attempts).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "jobs/job_worker.hpp"
#include "store/db_pool.hpp"

namespace cmdb::jobs {

// Runs claimed job `id` on `work`, reporting phases through `progress`, and records its
// outcome. Returns true when it succeeded. Throws only when the database fails.
bool ExecuteImportJob(store::DbSession& work, store::DbSession& progress, std::int64_t id);

struct ImportWorkerOptions {
  JobWorkerOptions worker;
  // Called after a job committed: the instance's graph cache is out of date.
  std::function<void()> graph_changed;
};

// A worker (own thread, two sessions of its own) that executes queued import jobs.
std::unique_ptr<JobWorker> MakeImportWorker(const std::string& dsn,
                                            const ImportWorkerOptions& options);

}  // namespace cmdb::jobs
