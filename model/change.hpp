#pragma once
// Changes (RFCs): the change document, its state machine draft -> submitted ->
// approved|rejected -> in_progress -> completed|failed (cancel before in_progress), its events
// and their JSON mapping. Value types and pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

enum class ChangeState {
  kDraft,
  kSubmitted,
  kApproved,
  kRejected,
  kInProgress,
  kCompleted,
  kFailed,
  kCancelled,
};
inline constexpr std::array<EnumName<ChangeState>, 8> kChangeStateNames{{
    {ChangeState::kDraft, "draft"},
    {ChangeState::kSubmitted, "submitted"},
    {ChangeState::kApproved, "approved"},
    {ChangeState::kRejected, "rejected"},
    {ChangeState::kInProgress, "in_progress"},
    {ChangeState::kCompleted, "completed"},
    {ChangeState::kFailed, "failed"},
    {ChangeState::kCancelled, "cancelled"},
}};
inline std::string_view ChangeStateName(ChangeState s) { return NameIn(kChangeStateNames, s); }
inline std::optional<ChangeState> ChangeStateFromName(std::string_view name) {
  return ValueIn(kChangeStateNames, name);
}
// The JSON mapping: a state is its name.
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, ChangeState state);

struct Change {
  std::int64_t id = 0;
  std::string title;
  std::string description;
  std::string risk = "medium";  // low, medium, high, critical
  ChangeState state = ChangeState::kDraft;
  Timestamp planned_start;
  Timestamp planned_end;
  std::vector<CiId> ci_ids;
  boost::json::object planned_attributes;  // "<ci id>" -> {attribute: value}
  boost::json::value assessment;           // frozen at submit; null before
  boost::json::value outcome;              // set on complete: plan against observation
  std::string requested_by;                // who created it; never its reviewer
  // The incidents this change answers (second line's plan) and, on creation, the completion
  // date promised to their users (model/quality.hpp, IncidentChange).
  std::vector<std::int64_t> incident_ids;
  std::optional<Timestamp> promised_by;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object ChangeToJson(const Change& change);

// Reads a change document: title, description, risk, the planned window, ci_ids and
// planned_attributes (keys must name CIs of ci_ids). Every problem goes to `errors`; whether
// the CIs exist and the planned values fit their types is the store's to check. Throws
// Error{kInvalidArgument} when `body` is not an object.
Change ChangeFromJson(const boost::json::value& body, FieldErrors& errors);

// One action of the state machine and the states it is allowed from.
struct ChangeAction {
  std::string_view name;
  std::vector<ChangeState> from;
  ChangeState to;
};
const std::vector<ChangeAction>& ChangeActions();
// The action named `name`; Error{kNotFound} for any other name.
const ChangeAction& FindChangeAction(std::string_view name);
// The actions allowed in `state`, comma separated ("start, cancel"), or "none".
std::string AllowedActions(ChangeState state);

// One transition of a change (its creation included), as GET /changes/{id}/events lists it.
struct ChangeEvent {
  Timestamp at;
  std::string action;
  std::optional<ChangeState> from;  // none for the creation
  ChangeState to = ChangeState::kDraft;
  std::string by;
  std::string reason;
};
boost::json::object ChangeEventToJson(const ChangeEvent& event);

}  // namespace cmdb::model
