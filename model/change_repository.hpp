#pragma once
// Changes (RFCs): the state machine draft -> submitted -> approved|rejected -> in_progress ->
// completed|failed (cancel before in_progress), the impact assessment frozen at submit, the
// collisions with other active changes, the planned attribute values checked against
// discovery on completion, and the query discovery uses to authorise drift. A repository
// borrows one leased session; not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/ci_repository.hpp"
#include "model/timestamp.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

class DependencyGraph;

struct Change {
  std::int64_t id = 0;
  std::string title;
  std::string description;
  std::string risk = "medium";  // low, medium, high, critical
  std::string state = "draft";
  Timestamp planned_start;
  Timestamp planned_end;
  std::vector<CiId> ci_ids;
  boost::json::object planned_attributes;  // "<ci id>" -> {attribute: value}
  boost::json::value assessment;           // frozen at submit; null before
  boost::json::value outcome;              // set on complete: plan against observation
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object ChangeToJson(const Change& change);

// The actions of the state machine, and which states each is allowed from.
struct ChangeAction {
  std::string_view name;
  std::vector<std::string_view> from;
  std::string_view to;
};
const std::vector<ChangeAction>& ChangeActions();
// The actions allowed in `state`, comma separated ("start, cancel"), or "none".
std::string AllowedActions(std::string_view state);

struct ChangeFilter {
  std::optional<std::string> state;
  std::optional<CiId> ci;
  std::int64_t after = 0;
  int limit = kDefaultPageSize;
};

// The CIs a change's failure reaches: its CIs and their downstream closure.
struct ChangeImpact {
  boost::json::object assessment;  // affected, services, open_drift, open_incidents, ...
  std::vector<CiId> impact_set;    // sorted ids
};

class ChangeRepository {
 public:
  explicit ChangeRepository(soci::session& sql) : sql_(sql) {}

  // Validates and stores a draft. kValidationFailed naming every bad field (unknown CIs,
  // end before start, planned attributes invalid for the CI's type, ...).
  Change Create(const boost::json::value& body, const WriteContext& ctx);
  std::optional<Change> Find(std::int64_t id);
  std::vector<Change> List(const ChangeFilter& filter);  // up to limit + 1

  // Applies `action` ("submit", "approve", ...). kNotFound; kConflict naming the allowed
  // actions when the state does not allow it (of two concurrent transitions exactly one
  // wins); kVersionMismatch for a stale If-Match. `graph` (the current dependency graph) is
  // read by submit only, which freezes the impact; other actions may pass null.
  Change Transition(std::int64_t id, std::string_view action, const std::string& reason,
                    std::optional<std::int64_t> if_match, const DependencyGraph* graph,
                    const WriteContext& ctx);

  // The impact of a change computed now (drafts; the frozen one is in Change::assessment).
  ChangeImpact ComputeImpact(const Change& change, const DependencyGraph& graph);

  // Other submitted, approved or in-progress changes whose windows overlap `change`'s and
  // whose impact sets intersect `impact_set`, each with the shared CIs.
  boost::json::array Collisions(const Change& change, const std::vector<CiId>& impact_set);

  // The transitions of a change, oldest first.
  boost::json::array Events(std::int64_t id);

 private:
  soci::session& sql_;
};

// An open drift finding, as change assessments and incident traces list them.
struct OpenFinding {
  std::int64_t id = 0;
  CiId ci = 0;
  std::string attribute;
  boost::json::value expected;
  boost::json::value actual;
  bool authorized = false;
  std::optional<std::int64_t> change;  // the change that authorises it
};

// The open drift findings on the CIs of `ci_ids_literal` (a bigint[] literal, see
// IdArrayLiteral), oldest first, at most 1000. A closure can hold 100k CIs: the ids are
// joined as a set, not planned as an `= ANY` constant (8 ms of planning for 35k ids).
std::vector<OpenFinding> OpenDriftOn(soci::session& sql, const std::string& ci_ids_literal);

// For discovery: per CI of `cis`, the approved or in-progress change that covers it at `at`
// (the one with the lowest id when several do).
std::map<CiId, std::int64_t> AuthorizingChanges(soci::session& sql, const std::vector<CiId>& cis,
                                                Timestamp at);

}  // namespace cmdb::model
