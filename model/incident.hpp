#pragma once
// Incidents: severity 1-4, support tier 1-3, new -> in_progress -> resolved -> closed, a
// response target per tier on the working-day calendar; the actions on them (assign,
// escalate, resolve, close) as pure transitions, their events and the JSON mapping. Value
// types and pure functions; thread-safe.

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
#include "model/working_calendar.hpp"

namespace cmdb::model {

enum class IncidentState { kNew, kInProgress, kResolved, kClosed };
inline constexpr std::array<EnumName<IncidentState>, 4> kIncidentStateNames{{
    {IncidentState::kNew, "new"},
    {IncidentState::kInProgress, "in_progress"},
    {IncidentState::kResolved, "resolved"},
    {IncidentState::kClosed, "closed"},
}};
inline std::string_view IncidentStateName(IncidentState s) {
  return NameIn(kIncidentStateNames, s);
}
inline std::optional<IncidentState> IncidentStateFromName(std::string_view name) {
  return ValueIn(kIncidentStateNames, name);
}
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, IncidentState state);

struct Incident {
  std::int64_t id = 0;
  std::string title;
  std::string description;
  int severity = 3;
  int tier = 1;
  IncidentState state = IncidentState::kNew;
  std::optional<std::string> assignee;
  std::vector<CiId> ci_ids;
  Timestamp started_at;
  Timestamp tier_since;
  Timestamp response_due;
  std::optional<Timestamp> responded_at;
  std::optional<std::string> resolution;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> resolved_at;
  std::optional<Timestamp> closed_at;
};
// `now` decides `overdue` (not answered and past the due time).
boost::json::object IncidentToJson(const Incident& incident, Timestamp now);

// Reads an incident document (title, description, severity, tier, ci_ids, started_at,
// assignee) raised at `now`; the state follows from the assignee. Every problem goes to
// `errors`; whether the CIs exist is the store's to check. Throws Error{kInvalidArgument}
// when `body` is not an object.
Incident IncidentFromJson(const boost::json::value& body, Timestamp now, FieldErrors& errors);

// Whether `action` is allowed for an incident in `state` at `tier`.
bool IncidentActionAllowed(IncidentState state, int tier, std::string_view action);
// The actions allowed in an incident's state, comma separated, or "none".
std::string AllowedIncidentActions(IncidentState state, int tier);

// The body of an action: assign {"assignee", "reason"}, escalate {"reason"} (required),
// resolve {"resolution"}, close {"reason"}.
struct IncidentActionRequest {
  std::optional<std::string> assignee;
  std::optional<std::string> reason;  // the resolution, for resolve
  // The tier of who acts; an escalation is only from one's own tier. nullopt: any (admin).
  std::optional<int> actor_tier;
};
// Throws Error{kNotFound} for an unknown action, Error{kValidationFailed} naming every bad
// field of `body`.
IncidentActionRequest ParseIncidentAction(std::string_view action, const boost::json::object& body);

// What an allowed action does to an incident at `now`: its new state, tier, response clock
// (escalation starts the next tier's, due by `calendar`) and assignee. Error{kConflict} naming
// the allowed actions when the incident's state does not allow it.
struct IncidentTransition {
  IncidentState state = IncidentState::kNew;
  int tier = 1;
  Timestamp tier_since;
  Timestamp response_due;
  std::optional<Timestamp> responded_at;
  bool clear_assignee = false;            // escalation: the next tier assigns afresh
  std::optional<std::string> assignee;    // assign: the new assignee
  std::optional<std::string> resolution;  // resolve
  std::string reason;                     // for the event
};
IncidentTransition ApplyIncidentAction(const Incident& incident, std::string_view action,
                                       const IncidentActionRequest& request, Timestamp now,
                                       const WorkingCalendar& calendar);

// One event of an incident (its creation included), as GET /incidents/{id}/events lists it.
struct IncidentEvent {
  Timestamp at;
  std::string action;
  std::optional<IncidentState> from;  // none for the creation
  IncidentState to = IncidentState::kNew;
  std::optional<int> from_tier;
  int to_tier = 1;
  std::string by;
  std::string reason;
  // The response due time of the tier's clock this event started (creation, escalation);
  // none for other events and for events older than its recording.
  std::optional<Timestamp> response_due;
};
boost::json::object IncidentEventToJson(const IncidentEvent& event);

}  // namespace cmdb::model
