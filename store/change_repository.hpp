#pragma once
// Changes (RFCs) in PostgreSQL: drafts, transitions with their events, the impact assessment
// and impact set frozen at submit, the planned attribute values checked against discovery on
// completion, and the queries that change assessments, incident traces and discovery ask of
// the change tables. A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "model/change.hpp"
#include "model/history.hpp"
#include "model/paging.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct ChangeFilter {
  std::optional<model::ChangeState> state;
  std::optional<model::CiId> ci;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

// What submitting a change freezes: the assessment reviewers see and the set of CIs its
// failure reaches (sorted ids), against which later changes' collisions are computed.
struct FrozenAssessment {
  boost::json::object assessment;
  std::vector<model::CiId> impact_set;
};
// Computes the assessment of a change being submitted (inside the submit's transaction).
using AssessChange = std::function<FrozenAssessment(const model::Change&)>;

// A submitted, approved or in-progress change, as collisions compare it.
struct ActiveChange {
  std::int64_t id = 0;
  std::string title;
  model::ChangeState state = model::ChangeState::kSubmitted;
  model::Timestamp planned_start;
  model::Timestamp planned_end;
  std::vector<model::CiId> impact_set;  // as frozen at submit
};

// A change that may have caused an incident: in progress, or finished, around its start.
struct SuspectChange {
  std::int64_t id = 0;
  model::ChangeState state = model::ChangeState::kDraft;  // now
  std::vector<model::CiId> ci_ids;
  model::Timestamp at;  // completion (when completed in the window), else start
  bool completed_in_window = false;
};

class ChangeRepository {
 public:
  explicit ChangeRepository(DbSession& db) : db_(db) {}

  // Adds to `errors` what only the database can tell about a draft: CIs of ci_ids that do not
  // exist, planned values that do not fit their CI's type.
  void Validate(const model::Change& draft, model::FieldErrors& errors);
  // Stores a validated draft and its creation event.
  model::Change Create(const model::Change& draft, const model::WriteContext& ctx);
  std::optional<model::Change> Find(std::int64_t id);
  std::vector<model::Change> List(const ChangeFilter& filter);  // up to limit + 1

  // Applies `action` ("submit", "approve", ...). kNotFound; kConflict naming the allowed
  // actions when the state does not allow it (of two concurrent transitions exactly one
  // wins); kVersionMismatch for a stale If-Match. Submit freezes what `assess` computes;
  // complete checks the plan against discovery (see ApplyPlan in the .cpp).
  model::Change Transition(std::int64_t id, std::string_view action, const std::string& reason,
                           std::optional<std::int64_t> if_match, const AssessChange& assess,
                           const model::WriteContext& ctx);

  // The impact set frozen when the change was submitted (empty before).
  std::vector<model::CiId> FrozenImpactSet(std::int64_t id);
  // The transitions of a change, oldest first.
  std::vector<model::ChangeEvent> Events(std::int64_t id);
  // Submitted, approved and in-progress changes other than `except` whose planned windows
  // overlap [start, end), in id order.
  std::vector<ActiveChange> ActiveInWindow(model::Timestamp start, model::Timestamp end,
                                           std::int64_t except);
  // Changes completed in [window_start, at], in progress at `at`, or started by `at` and
  // finished after it; only those touching `cis` when given (else all of them: the caller
  // filters a large set itself).
  std::vector<SuspectChange> Suspects(model::Timestamp at, model::Timestamp window_start,
                                      const std::optional<std::vector<model::CiId>>& cis);
  // The titles of changes `ids`.
  std::map<std::int64_t, std::string> Titles(const std::vector<std::int64_t>& ids);
  // Per CI of `cis`, the approved or in-progress change that covers it at `at` (the one with
  // the lowest id when several do): discovery's drift on it is authorised.
  std::map<model::CiId, std::int64_t> Authorizing(const std::vector<model::CiId>& cis,
                                                  model::Timestamp at);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
