#pragma once
// Runs audit runs (model::AuditRun): any instance's audit worker claims a queued run, reads
// the rules of its set and the estate (now, or as of the run's instant from history) in one
// snapshot, evaluates every (rule, CI) on all cores, and writes the counts per rule, the
// per-run score rows and — for a run of the present — the findings that opened or resolved,
// all in one transaction with the run's outcome. The worker also queues the nightly run and
// the debounced run that imports and discovery runs ask for.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "audit/rule_engine.hpp"
#include "jobs/job_worker.hpp"
#include "store/db_pool.hpp"

namespace cmdb::jobs {

// Runs claimed audit run `id` on `work`, reporting its phase through `progress`, and records
// its outcome. Returns true when it succeeded. Throws only when the database fails.
bool ExecuteAuditRun(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                     const audit::EvaluatorOptions& options = {});

struct AuditWorkerOptions {
  JobWorkerOptions worker;
  // How long after the latest import or discovery run the audit it asked for is queued: a
  // burst of runs gives one audit.
  std::chrono::seconds debounce{60};
  // Whether this worker queues the nightly and the debounced runs (every instance may: the
  // schedule row is locked while it is read).
  bool schedule = true;
};

// A worker (own thread, two sessions of its own) that executes queued audit runs.
std::unique_ptr<JobWorker> MakeAuditWorker(const std::string& dsn,
                                           const AuditWorkerOptions& options);

}  // namespace cmdb::jobs
