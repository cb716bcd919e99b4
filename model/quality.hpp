#pragma once
// The quality review: key users (called at least once a month about the business services they
// speak for), callbacks after incidents and to key users with a satisfaction score, complaints
// with their rectification lifecycle (open -> rectifying -> verified -> closed, no step
// skipped, each with a note, an owner and a due date), and second line's plans (a change
// linked to the incident it answers, with the completion date promised to the user). Value
// types, validation and the JSON mapping; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

struct KeyUser {
  std::int64_t id = 0;
  std::string name;
  std::string contact;
  std::vector<std::int64_t> service_ids;  // business services (CI ids)
  bool active = true;
  std::string created_by;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object KeyUserToJson(const KeyUser& user);
// {"name", "contact", "service_ids", "active"}; whether the services exist is the store's.
KeyUser KeyUserFromJson(const boost::json::value& body, FieldErrors& errors);

enum class CallbackKind { kIncident, kKeyUser };
inline constexpr std::array<EnumName<CallbackKind>, 2> kCallbackKindNames{{
    {CallbackKind::kIncident, "incident"},
    {CallbackKind::kKeyUser, "key_user"},
}};

struct Callback {
  std::int64_t id = 0;
  CallbackKind kind = CallbackKind::kIncident;
  std::optional<std::int64_t> incident_id;
  std::optional<std::int64_t> key_user_id;
  std::optional<std::int64_t> service_id;
  Timestamp called_at;
  bool reached = false;
  std::optional<int> score;  // 1-5, only when reached
  std::string comment;
  std::string caller;
  Timestamp created_at;
};
boost::json::object CallbackToJson(const Callback& callback);
// {"called_at", "reached", "score", "comment"} and, for a key-user call, {"key_user_id",
// "service_id"}. called_at may not be in the future (after `now`); a reached user gives a score
// of 1 to 5, an unreached one none.
Callback CallbackFromJson(const boost::json::value& body, CallbackKind kind, Timestamp now,
                          FieldErrors& errors);

enum class ComplaintState { kOpen, kRectifying, kVerified, kClosed };
inline constexpr std::array<EnumName<ComplaintState>, 4> kComplaintStateNames{{
    {ComplaintState::kOpen, "open"},
    {ComplaintState::kRectifying, "rectifying"},
    {ComplaintState::kVerified, "verified"},
    {ComplaintState::kClosed, "closed"},
}};

struct Complaint {
  std::int64_t id = 0;
  std::string title;
  std::string description;
  std::string complainant;                  // who complained
  std::optional<std::int64_t> incident_id;  // what about
  std::optional<std::int64_t> service_id;
  std::optional<std::string> handler;  // the staff member complained about
  ComplaintState state = ComplaintState::kOpen;
  std::string owner;  // who must act on the current step
  Timestamp due_at;   // by when
  std::string note;   // the current step's note
  std::string created_by;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> closed_at;
};
// `overdue`: not closed and past its due time at `now`.
boost::json::object ComplaintToJson(const Complaint& complaint, Timestamp now);
// {"title", "description", "complainant", "incident_id", "service_id", "handler", "owner",
// "due_at", "note"}: the complaint as opened. due_at must not be before `now`.
Complaint ComplaintFromJson(const boost::json::value& body, Timestamp now, FieldErrors& errors);

// One step of the lifecycle: rectify (open -> rectifying), verify (rectifying -> verified),
// close (verified -> closed). Every step takes {"note", "owner", "due_at"}; close needs no
// due date (the complaint is done; it keeps the last one).
struct ComplaintStep {
  std::string note;
  std::string owner;
  std::optional<Timestamp> due_at;
};
// Throws Error{kNotFound} for an unknown action, Error{kValidationFailed} naming every bad
// field.
ComplaintStep ParseComplaintStep(std::string_view action, const boost::json::value& body,
                                 Timestamp now);
// The state `action` leads to from `state`; Error{kConflict} naming the one allowed step when
// it would skip or go back.
ComplaintState ComplaintTransition(ComplaintState state, std::string_view action, std::int64_t id);

struct ComplaintEvent {
  Timestamp at;
  std::string action;
  std::optional<ComplaintState> from;
  ComplaintState to = ComplaintState::kOpen;
  std::string by;
  std::string owner;
  Timestamp due_at;
  std::string note;
};
boost::json::object ComplaintEventToJson(const ComplaintEvent& event);

// A change answering an incident, with the completion date promised to the user.
struct IncidentChange {
  std::int64_t incident_id = 0;
  std::int64_t change_id = 0;
  Timestamp promised_by;
  Timestamp linked_at;
  std::string linked_by;
  std::optional<int> linked_tier;  // the incident's tier when the plan was made
  // The change, for the answer: its state and when it completed.
  std::string change_title;
  std::string change_state;
  std::optional<Timestamp> completed_at;
};
// `on_time`: completed by the promised date (null while neither completed nor late).
boost::json::object IncidentChangeToJson(const IncidentChange& link, Timestamp now);
// {"change_id", "promised_by"}.
IncidentChange IncidentChangeFromJson(const boost::json::value& body, FieldErrors& errors);

}  // namespace cmdb::model
