#include "model/incident.hpp"

#include <boost/json/value_from.hpp>

#include "model/json.hpp"

namespace cmdb::model {

namespace {

constexpr std::size_t kMaxIncidentCis = 10000;
constexpr std::int64_t kClockSkewMicros = std::int64_t{60} * 1000000;

}  // namespace

void tag_invoke(const json::value_from_tag&, json::value& out, IncidentState state) {
  out = IncidentStateName(state);
}

bool IncidentActionAllowed(IncidentState state, int tier, std::string_view action) {
  if (state == IncidentState::kNew || state == IncidentState::kInProgress) {
    return action == "assign" || action == "resolve" || (action == "escalate" && tier < 3);
  }
  // A resolution the user does not accept is reopened (the report counts the reopen rate).
  return state == IncidentState::kResolved && (action == "close" || action == "reopen");
}

std::string AllowedIncidentActions(IncidentState state, int tier) {
  std::string out;
  for (std::string_view action : {"assign", "escalate", "resolve", "close", "reopen"}) {
    if (IncidentActionAllowed(state, tier, action))
      out += (out.empty() ? "" : ", ") + std::string(action);
  }
  return out.empty() ? "none" : out;
}

json::object IncidentToJson(const Incident& i, Timestamp now) {
  auto optional_text = [](const std::optional<std::string>& s) {
    return s ? json::value(*s) : json::value(nullptr);
  };
  json::object o{{"id", i.id},
                 {"title", i.title},
                 {"description", i.description},
                 {"severity", i.severity},
                 {"tier", i.tier},
                 {"state", json::value_from(i.state)},
                 {"assignee", optional_text(i.assignee)},
                 {"ci_ids", IdsToJson(i.ci_ids)},
                 {"started_at", FormatTimestamp(i.started_at)},
                 {"tier_since", FormatTimestamp(i.tier_since)},
                 {"response_due", FormatTimestamp(i.response_due)},
                 {"responded_at", TimestampJson(i.responded_at)},
                 {"resolution", optional_text(i.resolution)},
                 {"allowed_actions", AllowedIncidentActions(i.state, i.tier)},
                 {"version", i.version},
                 {"created_at", FormatTimestamp(i.created_at)},
                 {"updated_at", FormatTimestamp(i.updated_at)},
                 {"resolved_at", TimestampJson(i.resolved_at)},
                 {"closed_at", TimestampJson(i.closed_at)}};
  // Met: answered by the due time. Overdue: not answered and past it.
  o["response_met"] = i.responded_at ? json::value(i.responded_at->micros <= i.response_due.micros)
                                     : json::value(nullptr);
  o["overdue"] = !i.responded_at && now.micros > i.response_due.micros;
  return o;
}

Incident IncidentFromJson(const json::value& body, Timestamp now, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an incident is a JSON object");
  CheckFields(*o, {"title", "description", "severity", "tier", "ci_ids", "started_at", "assignee"},
              errors);
  Incident i;
  i.title = RequiredTitle(*o, errors);
  i.description = OptionalText(*o, "description", 100000, errors);
  const json::value* severity = o->if_contains("severity");
  if (severity == nullptr || !severity->is_int64() || severity->get_int64() < 1 ||
      severity->get_int64() > 4) {
    errors.Add("severity", "required: 1 (critical) to 4 (low)");
  } else {
    i.severity = static_cast<int>(severity->get_int64());
  }
  if (const json::value* tier = o->if_contains("tier")) {
    if (!tier->is_int64() || tier->get_int64() < 1 || tier->get_int64() > 3) {
      errors.Add("tier", "must be 1 (first line), 2 (second line) or 3 (vendor)");
    } else {
      i.tier = static_cast<int>(tier->get_int64());
    }
  }
  i.started_at = now;
  i.tier_since = now;
  if (const json::value* s = o->if_contains("started_at")) {
    std::optional<Timestamp> t = s->is_string() ? ParseTimestamp(s->get_string()) : std::nullopt;
    if (!t || t->micros > now.micros + kClockSkewMicros) {
      errors.Add("started_at", "must be an RFC 3339 timestamp, not in the future");
    } else {
      i.started_at = *t;
    }
  }
  if (const json::value* a = o->if_contains("assignee"); a != nullptr && !a->is_null()) {
    if (!a->is_string() || a->get_string().empty() || a->get_string().size() > 200) {
      errors.Add("assignee", "must be a name of 1 to 200 characters, or null");
    } else {
      i.assignee = std::string(a->get_string());
    }
  }
  i.state = i.assignee ? IncidentState::kInProgress : IncidentState::kNew;
  i.ci_ids =
      CiIdsFromJson(o->if_contains("ci_ids"), "ci_ids", /*required=*/true, kMaxIncidentCis, errors);
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  return i;
}

IncidentActionRequest ParseIncidentAction(std::string_view action, const json::object& body) {
  FieldErrors errors;
  auto text = [&](const char* field, bool required) -> std::optional<std::string> {
    const json::value* v = body.if_contains(field);
    if (v == nullptr || v->is_null()) {
      if (required) errors.Add(field, "required");
      return std::nullopt;
    }
    if (!v->is_string() || v->get_string().size() > 10000 ||
        (required && v->get_string().find_first_not_of(" \t\r\n") == json::string::npos)) {
      errors.Add(field, required ? "required: a non-blank string" : "must be a string");
      return std::nullopt;
    }
    return std::string(v->get_string());
  };
  IncidentActionRequest request;
  if (action == "assign") {
    CheckFields(body, {"assignee", "reason"}, errors);
    request.assignee = text("assignee", true);
    request.reason = text("reason", false);
  } else if (action == "escalate") {
    CheckFields(body, {"reason"}, errors);
    request.reason = text("reason", true);
  } else if (action == "resolve") {
    CheckFields(body, {"resolution"}, errors);
    request.reason = text("resolution", false);
  } else if (action == "close") {
    CheckFields(body, {"reason"}, errors);
    request.reason = text("reason", false);
  } else if (action == "reopen") {
    CheckFields(body, {"reason"}, errors);
    request.reason = text("reason", true);
  } else {
    throw Error(ErrorCode::kNotFound, "no such action '" + std::string(action) + "'");
  }
  errors.ThrowIfAny("the " + std::string(action) + " request is invalid");
  return request;
}

IncidentTransition ApplyIncidentAction(const Incident& i, std::string_view action,
                                       const IncidentActionRequest& request, Timestamp now,
                                       const WorkingCalendar& calendar) {
  if (!IncidentActionAllowed(i.state, i.tier, action)) {
    throw Error(
        ErrorCode::kConflict,
        "incident " + std::to_string(i.id) + " is " + std::string(IncidentStateName(i.state)) +
            " at tier " + std::to_string(i.tier) + "; " + std::string(action) +
            " is not allowed now" +
            (action == "escalate" && i.tier == 3 ? " (tier 3, the vendor, is the last)" : "") +
            ". Allowed: " + AllowedIncidentActions(i.state, i.tier));
  }
  IncidentTransition t;
  t.state = i.state;
  t.tier = i.tier;
  t.tier_since = i.tier_since;
  t.response_due = i.response_due;
  t.responded_at = i.responded_at;
  t.assignee = request.assignee;
  if (action == "assign") {
    t.state = IncidentState::kInProgress;
    if (!t.responded_at) t.responded_at = now;
  } else if (action == "escalate") {
    t.tier += 1;
    t.tier_since = now;
    t.response_due = ResponseDue(calendar, t.tier, now);  // the next tier's clock starts now
    t.responded_at.reset();
    t.clear_assignee = true;
    t.assignee.reset();
    t.state = IncidentState::kNew;
  } else if (action == "resolve") {
    t.state = IncidentState::kResolved;
    if (!t.responded_at) t.responded_at = now;
    t.resolution = request.reason;
  } else if (action == "close") {
    t.state = IncidentState::kClosed;
  } else if (action == "reopen") {
    // Back to whoever had it, in the same tier; the response clock already stopped.
    t.state = i.assignee ? IncidentState::kInProgress : IncidentState::kNew;
  }
  t.reason = request.reason.value_or(request.assignee ? "assigned to " + *request.assignee : "");
  return t;
}

json::object IncidentEventToJson(const IncidentEvent& e) {
  return {{"at", FormatTimestamp(e.at)},
          {"action", e.action},
          {"from", e.from ? json::value_from(*e.from) : json::value(nullptr)},
          {"to", json::value_from(e.to)},
          {"from_tier", e.from_tier ? json::value(*e.from_tier) : json::value(nullptr)},
          {"to_tier", e.to_tier},
          {"by", e.by},
          {"reason", e.reason}};
}

}  // namespace cmdb::model
