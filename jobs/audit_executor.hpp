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
#include <optional>
#include <string>
#include <vector>

#include "audit/rule_engine.hpp"
#include "jobs/job_worker.hpp"
#include "model/audit.hpp"
#include "store/audit_repository.hpp"
#include "store/db_pool.hpp"

namespace cmdb::jobs {

// Runs claimed audit run `id` on `work`, reporting its phase through `progress`, and records
// its outcome. Returns true when it succeeded. Throws only when the database fails.
// With `cache`, a run of the present brings the estate the cache holds up to date instead of
// reading all of it (store::AuditRepository::LoadPresentEstate) and leaves its own there.
bool ExecuteAuditRun(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                     const audit::EvaluatorOptions& options = {},
                     store::AuditRepository::EstateCache* cache = nullptr);

struct AuditWorkerOptions {
  JobWorkerOptions worker;
  // How long after the latest import or discovery run the audit it asked for is queued: a
  // burst of runs gives one audit.
  std::chrono::seconds debounce{60};
  // Whether this worker queues the nightly and the debounced runs (every instance may: the
  // schedule row is locked while it is read).
  bool schedule = true;
  // Whether the worker keeps the estate of its latest run of the present in memory (about
  // what the graph of the estate takes again, plus the rules' attributes per CI) so that the
  // next run reads only what changed.
  bool keep_estate = true;
};

// One CI across `rules`, now: the CI's neighbourhood read as far as the rules whose scope holds
// it walk (store::AuditRepository::LoadNeighbourhood), the rules compiled and an evaluator over
// it; GET /api/v1/cis/{id}/audit and the rule test use it. Throws Error{kNotFound} when the CI
// does not exist.
struct CiAudit {
  std::vector<std::shared_ptr<const audit::CompiledRule>> compiled;  // the CI rules
  std::vector<model::AuditRule> broken;                              // rules that no longer compile
  std::optional<audit::Estate> estate;
  std::unique_ptr<audit::Evaluator> evaluator;  // over `estate`, with `compiled`
  std::uint32_t index = 0;                      // the CI's in `estate`
  // The walk stopped short (a hub within reach): rules walking past the CI's own neighbours
  // are not decided here.
  bool truncated = false;
};
CiAudit EvaluateCi(store::DbSession& session, model::CiId id,
                   const std::vector<model::AuditRule>& rules);

// A worker (own thread, two sessions of its own) that executes queued audit runs.
std::unique_ptr<JobWorker> MakeAuditWorker(const std::string& dsn,
                                           const AuditWorkerOptions& options);

}  // namespace cmdb::jobs
