#include "model/change.hpp"

#include <algorithm>

#include <boost/json/value_from.hpp>

#include "model/ci_type.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace {

constexpr std::size_t kMaxChangeCis = 10000;

// The planned window; problems go to `errors` under planned_start / planned_end.
void ReadWindow(const json::object& o, Change& c, FieldErrors& errors) {
  bool window_ok = true;
  for (const char* field : {"planned_start", "planned_end"}) {
    const json::value* v = o.if_contains(field);
    std::optional<Timestamp> ts;
    if (v != nullptr && v->is_string()) ts = ParseTimestamp(v->get_string());
    if (!ts) {
      errors.Add(field, "required: an RFC 3339 timestamp");
      window_ok = false;
      continue;
    }
    (std::string_view(field) == "planned_start" ? c.planned_start : c.planned_end) = *ts;
  }
  if (window_ok && c.planned_end.micros <= c.planned_start.micros) {
    errors.Add("planned_end", "must be after planned_start");
  }
}

// planned_attributes: {"<ci id of ci_ids>": {attribute: value, ...}}.
void ReadPlannedAttributes(const json::value& planned, Change& c, FieldErrors& errors) {
  if (!planned.is_object()) {
    errors.Add("planned_attributes", "must be an object: {\"<ci id>\": {attribute: value}}");
    return;
  }
  for (const auto& [key, attrs] : planned.get_object()) {
    const std::string field = "planned_attributes." + std::string(key);
    CiId ci = 0;
    try {
      std::size_t used = 0;
      ci = std::stoll(std::string(key), &used);
      if (used != key.size()) ci = 0;
    } catch (const std::exception&) {
      ci = 0;
    }
    if (ci <= 0 || std::find(c.ci_ids.begin(), c.ci_ids.end(), ci) == c.ci_ids.end()) {
      errors.Add(field, "must name a CI of ci_ids");
      continue;
    }
    if (!attrs.is_object() || attrs.get_object().empty()) {
      errors.Add(field, "must be an object of attribute values");
      continue;
    }
    c.planned_attributes[key] = attrs;
  }
}

}  // namespace

void tag_invoke(const json::value_from_tag&, json::value& out, ChangeState state) {
  out = ChangeStateName(state);
}

json::object ChangeToJson(const Change& c) {
  return {{"id", c.id},
          {"title", c.title},
          {"description", c.description},
          {"risk", c.risk},
          {"state", json::value_from(c.state)},
          {"planned_start", FormatTimestamp(c.planned_start)},
          {"planned_end", FormatTimestamp(c.planned_end)},
          {"ci_ids", IdsToJson(c.ci_ids)},
          {"planned_attributes", c.planned_attributes},
          {"allowed_actions", AllowedActions(c.state)},
          {"assessment", c.assessment},
          {"outcome", c.outcome},
          {"requested_by", c.requested_by},
          {"incident_ids", IdsToJson(c.incident_ids)},
          {"version", c.version},
          {"created_at", FormatTimestamp(c.created_at)},
          {"updated_at", FormatTimestamp(c.updated_at)}};
}

Change ChangeFromJson(const json::value& body, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a change is a JSON object");
  Change c;
  CheckFields(*o,
              {"title", "description", "risk", "planned_start", "planned_end", "ci_ids",
               "planned_attributes", "incident_ids", "promised_by"},
              errors);
  c.title = RequiredTitle(*o, errors);
  c.description = OptionalText(*o, "description", 100000, errors);
  if (const json::value* risk = o->if_contains("risk")) {
    if (*risk != "low" && *risk != "medium" && *risk != "high" && *risk != "critical") {
      errors.Add("risk", "must be one of low, medium, high, critical");
    } else {
      c.risk = std::string(risk->get_string());
    }
  }
  ReadWindow(*o, c, errors);
  c.ci_ids =
      CiIdsFromJson(o->if_contains("ci_ids"), "ci_ids", /*required=*/true, kMaxChangeCis, errors);
  if (const json::value* planned = o->if_contains("planned_attributes")) {
    ReadPlannedAttributes(*planned, c, errors);
  }
  // A plan for incidents: the ids they answer and the completion date promised to the users.
  if (const json::value* ids = o->if_contains("incident_ids"); ids != nullptr && !ids->is_null()) {
    if (!ids->is_array() || ids->get_array().size() > 100) {
      errors.Add("incident_ids", "must be a list of at most 100 incident ids");
    } else {
      std::size_t index = 0;
      for (const json::value& id : ids->get_array()) {
        const std::string field = "incident_ids[" + std::to_string(index++) + "]";
        if (!id.is_int64() || id.get_int64() <= 0) {
          errors.Add(field, "must be an incident id");
        } else if (std::find(c.incident_ids.begin(), c.incident_ids.end(), id.get_int64()) !=
                   c.incident_ids.end()) {
          errors.Add(field, "names incident " + std::to_string(id.get_int64()) + " twice");
        } else {
          c.incident_ids.push_back(id.get_int64());
        }
      }
    }
  }
  const json::value* promised = o->if_contains("promised_by");
  if (promised != nullptr && !promised->is_null()) {
    if (promised->is_string()) c.promised_by = ParseTimestamp(promised->get_string());
    if (!c.promised_by) {
      errors.Add("promised_by", "must be an RFC 3339 time: the completion date promised");
    } else if (c.incident_ids.empty()) {
      errors.Add("promised_by", "is the date promised to the users of incident_ids; name them");
    } else if (*c.promised_by < c.planned_end) {
      errors.Add("promised_by", "is before planned_end: the plan cannot keep that promise");
    }
  } else if (!c.incident_ids.empty()) {
    errors.Add("promised_by", "required with incident_ids: the completion date promised");
  }
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  return c;
}

const std::vector<ChangeAction>& ChangeActions() {
  using S = ChangeState;
  static const std::vector<ChangeAction> actions = {
      {"submit", {S::kDraft}, S::kSubmitted},
      {"approve", {S::kSubmitted}, S::kApproved},
      {"reject", {S::kSubmitted}, S::kRejected},
      {"start", {S::kApproved}, S::kInProgress},
      {"complete", {S::kInProgress}, S::kCompleted},
      {"fail", {S::kInProgress}, S::kFailed},
      {"cancel", {S::kDraft, S::kSubmitted, S::kApproved}, S::kCancelled},
  };
  return actions;
}

const ChangeAction& FindChangeAction(std::string_view name) {
  const auto& actions = ChangeActions();
  auto it = std::find_if(actions.begin(), actions.end(),
                         [&](const ChangeAction& a) { return a.name == name; });
  if (it == actions.end()) {
    throw Error(ErrorCode::kNotFound, "no such action '" + std::string(name) + "'");
  }
  return *it;
}

std::string AllowedActions(ChangeState state) {
  std::string out;
  for (const auto& a : ChangeActions()) {
    if (std::find(a.from.begin(), a.from.end(), state) == a.from.end()) continue;
    out += (out.empty() ? "" : ", ") + std::string(a.name);
  }
  return out.empty() ? "none" : out;
}

json::object ChangeEventToJson(const ChangeEvent& e) {
  return {{"at", FormatTimestamp(e.at)},
          {"action", e.action},
          {"from", e.from ? json::value_from(*e.from) : json::value(nullptr)},
          {"to", json::value_from(e.to)},
          {"by", e.by},
          {"reason", e.reason}};
}

}  // namespace cmdb::model
