#include "model/quality.hpp"

#include <algorithm>

#include "model/ci_type.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace {

json::value OptionalId(const std::optional<std::int64_t>& id) {
  return id ? json::value(*id) : json::value(nullptr);
}

bool Blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// `o.<field>`: a non-blank string of at most `max` bytes.
std::string RequiredText(const json::object& o, const char* field, std::size_t max,
                         FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string() || v->get_string().size() > max || Blank(v->get_string())) {
    errors.Add(field,
               "required: a non-blank string of at most " + std::to_string(max) + " characters");
    return {};
  }
  return std::string(v->get_string());
}

// `o.<field>` as a positive id; nullopt when absent or null (reported when `required`).
std::optional<std::int64_t> IdField(const json::object& o, const char* field, bool required,
                                    FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) {
    if (required) errors.Add(field, "required: an id");
    return std::nullopt;
  }
  if (!v->is_int64() || v->get_int64() <= 0) {
    errors.Add(field, "must be a positive integer id");
    return std::nullopt;
  }
  return v->get_int64();
}

// `o.<field>` as an RFC 3339 time; nullopt when absent or malformed (reported as such).
std::optional<Timestamp> TimeField(const json::object& o, const char* field, bool required,
                                   FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) {
    if (required) errors.Add(field, "required: an RFC 3339 time");
    return std::nullopt;
  }
  std::optional<Timestamp> t;
  if (v->is_string()) t = ParseTimestamp(v->get_string());
  if (!t) errors.Add(field, "must be an RFC 3339 time such as 2026-12-01T09:00:00Z");
  return t;
}

void CheckNul(const json::value& body, FieldErrors& errors) {
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
}

const json::object& ObjectOf(const json::value& body, const char* what) {
  const json::object* o = body.if_object();
  if (o == nullptr)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " is a JSON object");
  return *o;
}

}  // namespace

json::object KeyUserToJson(const KeyUser& u) {
  return {{"id", u.id},
          {"name", u.name},
          {"contact", u.contact},
          {"service_ids", IdsToJson(u.service_ids)},
          {"active", u.active},
          {"created_by", u.created_by},
          {"version", u.version},
          {"created_at", FormatTimestamp(u.created_at)},
          {"updated_at", FormatTimestamp(u.updated_at)}};
}

KeyUser KeyUserFromJson(const json::value& body, FieldErrors& errors) {
  const json::object& o = ObjectOf(body, "a key user");
  CheckFields(o, {"name", "contact", "service_ids", "active"}, errors);
  KeyUser u;
  u.name = RequiredText(o, "name", 200, errors);
  u.contact = OptionalText(o, "contact", 500, errors);
  u.service_ids =
      CiIdsFromJson(o.if_contains("service_ids"), "service_ids", /*required=*/true, 1000, errors);
  if (const json::value* a = o.if_contains("active")) {
    if (!a->is_bool()) {
      errors.Add("active", "must be true or false");
    } else {
      u.active = a->get_bool();
    }
  }
  CheckNul(body, errors);
  return u;
}

json::object CallbackToJson(const Callback& c) {
  return {{"id", c.id},
          {"kind", NameIn(kCallbackKindNames, c.kind)},
          {"incident_id", OptionalId(c.incident_id)},
          {"key_user_id", OptionalId(c.key_user_id)},
          {"service_id", OptionalId(c.service_id)},
          {"called_at", FormatTimestamp(c.called_at)},
          {"reached", c.reached},
          {"score", c.score ? json::value(*c.score) : json::value(nullptr)},
          {"comment", c.comment},
          {"caller", c.caller},
          {"created_at", FormatTimestamp(c.created_at)}};
}

Callback CallbackFromJson(const json::value& body, CallbackKind kind, Timestamp now,
                          FieldErrors& errors) {
  const json::object& o = ObjectOf(body, "a callback");
  if (kind == CallbackKind::kIncident) {
    CheckFields(o, {"called_at", "reached", "score", "comment"}, errors);
  } else {
    CheckFields(o, {"key_user_id", "service_id", "called_at", "reached", "score", "comment"},
                errors);
  }
  Callback c;
  c.kind = kind;
  if (kind == CallbackKind::kKeyUser) {
    c.key_user_id = IdField(o, "key_user_id", true, errors);
    c.service_id = IdField(o, "service_id", true, errors);
  }
  if (std::optional<Timestamp> at = TimeField(o, "called_at", true, errors)) {
    // A minute of clock skew between the caller's machine and the server is tolerated.
    if (at->micros > now.micros + 60'000'000) {
      errors.Add("called_at", "is in the future; record a call once it is made");
    }
    c.called_at = *at;
  }
  const json::value* reached = o.if_contains("reached");
  if (reached == nullptr || !reached->is_bool()) {
    errors.Add("reached", "required: true when the user was reached, false otherwise");
  } else {
    c.reached = reached->get_bool();
  }
  const json::value* score = o.if_contains("score");
  if (score != nullptr && !score->is_null()) {
    if (!score->is_int64() || score->get_int64() < 1 || score->get_int64() > 5) {
      errors.Add("score", "must be an integer from 1 (very dissatisfied) to 5 (very satisfied)");
    } else if (reached != nullptr && reached->is_bool() && !c.reached) {
      errors.Add("score", "only a user who was reached gives a score");
    } else {
      c.score = static_cast<int>(score->get_int64());
    }
  } else if (reached != nullptr && reached->is_bool() && c.reached) {
    errors.Add("score", "required when the user was reached: an integer from 1 to 5");
  }
  c.comment = OptionalText(o, "comment", 10000, errors);
  CheckNul(body, errors);
  return c;
}

json::object ComplaintToJson(const Complaint& c, Timestamp now) {
  return {{"id", c.id},
          {"title", c.title},
          {"description", c.description},
          {"complainant", c.complainant},
          {"incident_id", OptionalId(c.incident_id)},
          {"service_id", OptionalId(c.service_id)},
          {"handler", c.handler ? json::value(*c.handler) : json::value(nullptr)},
          {"state", NameIn(kComplaintStateNames, c.state)},
          {"owner", c.owner},
          {"due_at", FormatTimestamp(c.due_at)},
          {"overdue", c.state != ComplaintState::kClosed && c.due_at < now},
          {"note", c.note},
          {"created_by", c.created_by},
          {"version", c.version},
          {"created_at", FormatTimestamp(c.created_at)},
          {"updated_at", FormatTimestamp(c.updated_at)},
          {"closed_at", TimestampJson(c.closed_at)}};
}

Complaint ComplaintFromJson(const json::value& body, Timestamp now, FieldErrors& errors) {
  const json::object& o = ObjectOf(body, "a complaint");
  CheckFields(o,
              {"title", "description", "complainant", "incident_id", "service_id", "handler",
               "owner", "due_at", "note"},
              errors);
  Complaint c;
  c.title = RequiredTitle(o, errors);
  c.description = OptionalText(o, "description", 100000, errors);
  c.complainant = RequiredText(o, "complainant", 200, errors);
  c.incident_id = IdField(o, "incident_id", false, errors);
  c.service_id = IdField(o, "service_id", false, errors);
  if (const json::value* h = o.if_contains("handler"); h != nullptr && !h->is_null()) {
    c.handler = RequiredText(o, "handler", 200, errors);
  }
  c.owner = RequiredText(o, "owner", 200, errors);
  c.note = RequiredText(o, "note", 10000, errors);
  if (std::optional<Timestamp> due = TimeField(o, "due_at", true, errors)) {
    if (*due < now) errors.Add("due_at", "is in the past; a complaint is due in the future");
    c.due_at = *due;
  }
  CheckNul(body, errors);
  return c;
}

ComplaintStep ParseComplaintStep(std::string_view action, const json::value& body, Timestamp now) {
  if (action != "rectify" && action != "verify" && action != "close") {
    throw Error(ErrorCode::kNotFound, "no such action '" + std::string(action) + "'");
  }
  const json::object& o = ObjectOf(body, "a complaint step");
  FieldErrors errors;
  CheckFields(o, {"note", "owner", "due_at"}, errors);
  ComplaintStep step;
  step.note = RequiredText(o, "note", 10000, errors);
  step.owner = RequiredText(o, "owner", 200, errors);
  step.due_at = TimeField(o, "due_at", action != "close", errors);
  if (step.due_at && *step.due_at < now) {
    errors.Add("due_at", "is in the past; the next step is due in the future");
  }
  CheckNul(body, errors);
  errors.ThrowIfAny("the " + std::string(action) + " step is invalid");
  return step;
}

ComplaintState ComplaintTransition(ComplaintState state, std::string_view action, std::int64_t id) {
  struct Step {
    ComplaintState from;
    std::string_view action;
    ComplaintState to;
  };
  static constexpr std::array<Step, 3> kSteps{{
      {ComplaintState::kOpen, "rectify", ComplaintState::kRectifying},
      {ComplaintState::kRectifying, "verify", ComplaintState::kVerified},
      {ComplaintState::kVerified, "close", ComplaintState::kClosed},
  }};
  std::string allowed = "none (closed)";
  for (const Step& s : kSteps) {
    if (s.from == state && s.action == action) return s.to;
    if (s.from == state) allowed = std::string(s.action);
  }
  throw Error(ErrorCode::kConflict, "complaint " + std::to_string(id) + " is " +
                                        std::string(NameIn(kComplaintStateNames, state)) +
                                        "; steps are open -> rectify -> verify -> close and none "
                                        "is skipped. Allowed now: " +
                                        allowed);
}

json::object ComplaintEventToJson(const ComplaintEvent& e) {
  return {
      {"at", FormatTimestamp(e.at)},
      {"action", e.action},
      {"from", e.from ? json::value(NameIn(kComplaintStateNames, *e.from)) : json::value(nullptr)},
      {"to", NameIn(kComplaintStateNames, e.to)},
      {"by", e.by},
      {"owner", e.owner},
      {"due_at", FormatTimestamp(e.due_at)},
      {"note", e.note}};
}

json::object IncidentChangeToJson(const IncidentChange& l, Timestamp now) {
  json::value on_time = nullptr;
  if (l.completed_at) {
    on_time = *l.completed_at <= l.promised_by;
  } else if (l.promised_by < now) {
    on_time = false;
  }
  return {{"incident_id", l.incident_id},
          {"change_id", l.change_id},
          {"change_title", l.change_title},
          {"change_state", l.change_state},
          {"promised_by", FormatTimestamp(l.promised_by)},
          {"completed_at", TimestampJson(l.completed_at)},
          {"on_time", on_time},
          {"linked_at", FormatTimestamp(l.linked_at)},
          {"linked_by", l.linked_by},
          {"linked_tier", l.linked_tier ? json::value(*l.linked_tier) : json::value(nullptr)}};
}

IncidentChange IncidentChangeFromJson(const json::value& body, FieldErrors& errors) {
  const json::object& o = ObjectOf(body, "a plan");
  CheckFields(o, {"change_id", "promised_by"}, errors);
  IncidentChange l;
  l.change_id = IdField(o, "change_id", true, errors).value_or(0);
  if (auto t = TimeField(o, "promised_by", true, errors)) l.promised_by = *t;
  return l;
}

}  // namespace cmdb::model
