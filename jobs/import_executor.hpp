#pragma once
// Runs background imports (model/import_job.hpp): any instance's import worker claims a queued
// job and runs it with the same importer as a synchronous import, reporting the phase it is
// in. A JSON payload is read as a stream from its stored chunks and imported in batches, so
// the job's memory is bounded by a batch, not by the payload (a CSV file is read whole). The
// import and the job's outcome commit together; a job left running by a stopped instance
// (kill -9) left nothing behind and is run again from the start (three attempts).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "import/batch_sizes.hpp"
#include "jobs/job_worker.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {
class ImportCache;
}

namespace cmdb::jobs {

// How a job reads and answers a streamed import.
struct ImportJobLimits {
  import::BatchSizes batches;  // rows per batch (also of a synchronous JSON import)
  // Row errors the job's answer lists; the rest are counted (errors_omitted).
  std::size_t max_errors = 1000;
};

// Runs claimed job `id` on `work`, reporting phases through `progress`, and records its
// outcome. Returns true when it succeeded and created or changed something
// (ImportResult::Wrote). Throws only when the database fails.
bool ExecuteImportJob(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                      const ImportJobLimits& limits = {}, import::ImportCache* cache = nullptr);

struct ImportWorkerOptions {
  JobWorkerOptions worker;
  ImportJobLimits limits;
  // What the instance keeps between imports (import/import_cache.hpp); may be null.
  import::ImportCache* cache = nullptr;
  // Called after a job committed: the instance's graph cache is out of date.
  std::function<void()> graph_changed;
};

// A worker (own thread, two sessions of its own) that executes queued import jobs.
std::unique_ptr<JobWorker> MakeImportWorker(const std::string& dsn,
                                            const ImportWorkerOptions& options);

}  // namespace cmdb::jobs
