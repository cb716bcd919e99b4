#pragma once
// Drift findings in PostgreSQL: read and closed by people (accept, ignore), closed by changes
// on completion, and written in bulk by discovery runs. A repository borrows one leased
// session; not thread-safe.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "model/drift_finding.hpp"
#include "model/history.hpp"
#include "model/paging.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct FindingFilter {
  std::optional<model::FindingState> state;
  std::optional<std::int64_t> ci;
  std::optional<bool> authorized;
  std::optional<std::string> attribute;
  std::optional<std::int64_t> run;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

// A finding as a run reconciles against it: its id, CI, attribute and values.
struct KnownFinding {
  std::int64_t id = 0;
  std::int64_t ci = 0;
  std::string attribute;
  boost::json::value expected;
  boost::json::value actual;
};

// What one run writes to the findings (see jobs/discovery_executor.cpp).
struct RunFindings {
  struct Opened {  // a new finding, its id drawn beforehand (NextIds)
    std::int64_t id = 0;
    std::int64_t ci = 0;
    std::string attribute;
    boost::json::value expected;
    boost::json::value actual;
    std::int64_t change = 0;  // the change that authorises it, 0 for none
  };
  struct Updated {  // an open finding whose observed (or recorded) value changed
    std::int64_t id = 0;
    boost::json::value expected;
    boost::json::value actual;
    std::int64_t change = 0;
  };
  struct Unchanged {  // an open finding observed again with the same values
    std::int64_t id = 0;
    std::int64_t change = 0;  // whether a change covers it is decided at every observation
  };
  std::vector<Opened> opened;
  std::vector<Updated> updated;
  std::vector<Unchanged> unchanged;
  std::vector<std::int64_t> resolved;  // back at the record
};

class DriftRepository {
 public:
  explicit DriftRepository(DbSession& db) : db_(db) {}

  std::vector<model::DriftFinding> List(const FindingFilter& filter);  // up to limit + 1
  std::optional<model::DriftFinding> Find(std::int64_t id);
  // The record takes the observed value (history source "drift:<id>"). Only open findings;
  // kConflict otherwise or when the CI no longer exists.
  model::DriftFinding Accept(std::int64_t id, std::optional<std::int64_t> if_match,
                             const model::WriteContext& ctx);
  // The difference is known and accepted as it is: not reported again while it stays the same.
  model::DriftFinding Ignore(std::int64_t id, std::optional<std::int64_t> if_match,
                             const model::WriteContext& ctx);

  // The open finding of (ci, attribute), locked for the rest of the transaction.
  std::optional<model::DriftFinding> LockOpen(std::int64_t ci, const std::string& attribute);
  // Closes finding `id` as accepted and authorised by change `change` (a completed change
  // whose plan discovery observed).
  void AcceptAuthorized(std::int64_t id, std::int64_t change, const std::string& by);

  // The open findings on the CIs of `cis`, oldest first, at most 1000. A closure can hold 100k
  // CIs: the ids are joined as a set, not planned as an `= ANY` constant.
  std::vector<model::DriftFinding> OpenOn(const std::vector<std::int64_t>& cis);
  // The CIs of `cis` with an open finding.
  std::set<std::int64_t> CisWithOpenDrift(const std::vector<std::int64_t>& cis);

  // --- for discovery runs ---
  // The open findings of the CIs of `types`, and the latest closed finding of each (CI,
  // attribute) when it was ignored.
  void LoadKnown(const std::vector<std::string>& types, std::vector<KnownFinding>& open,
                 std::vector<KnownFinding>& ignored);
  // Draws `count` ids for findings a run opens (the decision log names them before they are
  // written).
  std::vector<std::int64_t> NextIds(std::size_t count);
  // Writes what run `run_id` (observing at `observed_at`) decided; resolved findings are
  // closed by `resolved_by`.
  void WriteRun(std::int64_t run_id, model::Timestamp observed_at, const RunFindings& findings,
                const std::string& resolved_by);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
