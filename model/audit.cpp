#include "model/audit.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "model/ci_type.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace json = boost::json;

namespace {

std::string RequiredString(const json::object& o, std::string_view field, std::size_t max,
                           FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string() || v->get_string().empty() || v->get_string().size() > max) {
    errors.Add("/" + std::string(field),
               "required: a string of 1 to " + std::to_string(max) + " characters");
    return {};
  }
  return std::string(v->get_string());
}

template <typename Enum, std::size_t N>
Enum EnumField(const json::object& o, std::string_view field,
               const std::array<EnumName<Enum>, N>& table, Enum fallback, bool required,
               FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr && !required) return fallback;
  std::string names;
  for (const auto& row : table) names += (names.empty() ? "" : ", ") + std::string(row.name);
  if (v == nullptr || !v->is_string()) {
    errors.Add("/" + std::string(field), "required: one of " + names);
    return fallback;
  }
  std::optional<Enum> value = ValueIn(table, v->get_string());
  if (!value) {
    errors.Add("/" + std::string(field), "must be one of " + names);
    return fallback;
  }
  return *value;
}

}  // namespace

bool IsValidRuleKey(std::string_view key) {
  if (key.empty() || key.size() > 63 || key[0] < 'a' || key[0] > 'z') return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

json::object AuditRuleBodyJson(const AuditRule& rule) {
  return {{"key", rule.key},
          {"title", rule.title},
          {"description", rule.description},
          {"kpi", AuditKpiName(rule.kpi)},
          {"severity", AuditSeverityName(rule.severity)},
          {"scope", rule.scope},
          {"check", rule.check},
          {"message", rule.message}};
}

json::object AuditRuleToJson(const AuditRule& rule) {
  json::object out = AuditRuleBodyJson(rule);
  out["version"] = rule.version;
  out["created_at"] = FormatTimestamp(rule.created_at);
  out["updated_at"] = FormatTimestamp(rule.updated_at);
  out["updated_by"] = rule.updated_by;
  return out;
}

AuditRule AuditRuleFromJson(const json::value& body, std::optional<std::string> key,
                            FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an audit rule is a JSON object");
  for (const auto& [name, value] : *o) {
    // What GET answers may be sent back as is: the read-only fields are ignored.
    static constexpr std::array<std::string_view, 12> kAllowed = {
        "key",   "title",   "description", "kpi",        "severity",   "scope",
        "check", "message", "version",     "updated_by", "created_at", "updated_at"};
    if (std::find(kAllowed.begin(), kAllowed.end(), name) == kAllowed.end()) {
      errors.Add("/" + std::string(name), "unknown field");
    }
    (void)value;
  }
  AuditRule rule;
  if (key) {
    rule.key = std::move(*key);
    const json::value* in_body = o->if_contains("key");
    if (in_body != nullptr && (!in_body->is_string() || in_body->get_string() != rule.key)) {
      errors.Add("/key", "must be the key of the path, '" + rule.key + "'");
    }
  } else {
    rule.key = RequiredString(*o, "key", 63, errors);
  }
  if (!rule.key.empty() && !IsValidRuleKey(rule.key)) {
    errors.Add("/key", "must be 1-63 lower-case letters, digits, '-' or '_', a letter first");
  }
  rule.title = RequiredString(*o, "title", 500, errors);
  rule.description = OptionalText(*o, "description", 10000, errors);
  rule.kpi = EnumField(*o, "kpi", kAuditKpiNames, AuditKpi::kCompleteness, true, errors);
  rule.severity =
      EnumField(*o, "severity", kAuditSeverityNames, AuditSeverity::kMedium, false, errors);
  const json::value* scope = o->if_contains("scope");
  if (scope != nullptr && !scope->is_object()) {
    errors.Add("/scope", "must be an object of CI list filters, e.g. {\"type\": [\"server\"]}");
  } else if (scope != nullptr) {
    rule.scope = scope->get_object();
  }
  const json::value* check = o->if_contains("check");
  if (check == nullptr || !check->is_object()) {
    errors.Add("/check", "required: an object with one operator, e.g. {\"present\": \"owner\"}");
  } else {
    rule.check = *check;
  }
  rule.message = RequiredString(*o, "message", 1000, errors);
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  return rule;
}

json::object AuditRuleSetToJson(const AuditRuleSet& set) {
  json::array rules;
  for (const std::string& r : set.rules) rules.emplace_back(r);
  return {{"name", set.name},
          {"description", set.description},
          {"rules", std::move(rules)},
          {"version", set.version},
          {"updated_at", FormatTimestamp(set.updated_at)},
          {"updated_by", set.updated_by}};
}

AuditRuleSet AuditRuleSetFromJson(const json::value& body, std::string name, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a rule set is a JSON object");
  CheckFields(*o, {"name", "description", "rules", "version", "updated_at", "updated_by"}, errors);
  AuditRuleSet set;
  set.name = std::move(name);
  if (!IsValidRuleKey(set.name)) {
    errors.Add("name", "must be 1-63 lower-case letters, digits, '-' or '_', a letter first");
  }
  set.description = OptionalText(*o, "description", 10000, errors);
  const json::value* rules = o->if_contains("rules");
  if (rules == nullptr || !rules->is_array() || rules->get_array().size() > 1000) {
    errors.Add("rules", "required: an array of at most 1000 rule keys");
    return set;
  }
  for (std::size_t i = 0; i < rules->get_array().size(); ++i) {
    const json::value& r = rules->get_array()[i];
    const std::string field = "rules[" + std::to_string(i) + "]";
    if (!r.is_string() || !IsValidRuleKey(r.get_string())) {
      errors.Add(field, "must be a rule key");
      continue;
    }
    std::string k(r.get_string());
    if (std::find(set.rules.begin(), set.rules.end(), k) != set.rules.end()) {
      errors.Add(field, "names rule '" + k + "' twice");
      continue;
    }
    set.rules.push_back(std::move(k));
  }
  return set;
}

void AuditCounts::Add(AuditOutcome outcome, std::int64_t n) {
  switch (outcome) {
    case AuditOutcome::kPass:
      pass += n;
      break;
    case AuditOutcome::kFail:
      fail += n;
      break;
    case AuditOutcome::kNotApplicable:
      not_applicable += n;
      break;
    case AuditOutcome::kError:
      error += n;
      break;
  }
}

AuditCounts& AuditCounts::operator+=(const AuditCounts& other) {
  pass += other.pass;
  fail += other.fail;
  not_applicable += other.not_applicable;
  error += other.error;
  return *this;
}

std::optional<double> AuditCounts::Score() const {
  if (pass + fail == 0) return std::nullopt;
  return static_cast<double>(pass) / static_cast<double>(pass + fail);
}

json::object AuditCountsToJson(const AuditCounts& counts) {
  const std::optional<double> score = counts.Score();
  return {{"pass", counts.pass},
          {"fail", counts.fail},
          {"not_applicable", counts.not_applicable},
          {"error", counts.error},
          {"score", score ? json::value(*score) : json::value(nullptr)}};
}

json::object AuditRunToJson(const AuditRun& run) {
  json::object rules;
  for (const auto& [key, counts] : run.rules) rules[key] = AuditCountsToJson(counts);
  json::object progress{
      {"done", run.progress_done},
      {"total", run.progress_total ? json::value(*run.progress_total) : json::value(nullptr)}};
  return {{"id", run.id},
          {"set", run.set},
          {"as_of", TimestampJson(run.as_of)},
          {"evaluated_at", TimestampJson(run.evaluated_at)},
          {"trigger", NameIn(kAuditTriggerNames, run.trigger)},
          {"state", JobStateName(run.state)},
          {"submitted_by", run.submitted_by},
          {"phase", run.phase ? json::value(*run.phase) : json::value(nullptr)},
          {"progress", std::move(progress)},
          {"subjects", run.subjects},
          {"rules", std::move(rules)},
          {"total", AuditCountsToJson(run.total)},
          {"error", run.error ? json::value(*run.error) : json::value(nullptr)},
          {"timings", run.timings ? json::value(*run.timings) : json::value(nullptr)},
          {"queued_at", FormatTimestamp(run.queued_at)},
          {"started_at", TimestampJson(run.started_at)},
          {"finished_at", TimestampJson(run.finished_at)}};
}

json::object AuditFindingToJson(const AuditFinding& f) {
  auto text = [](const std::optional<std::string>& s) {
    return s ? json::value(*s) : json::value(nullptr);
  };
  json::object out{
      {"id", f.id},
      {"rule", f.rule},
      {"subject", NameIn(kAuditSubjectNames, f.subject)},
      {"ci_id", f.subject == AuditSubject::kCi ? json::value(f.subject_id) : json::value(nullptr)},
      {"source_id", f.subject == AuditSubject::kDiscoverySource ? json::value(f.subject_id)
                                                                : json::value(nullptr)},
      {"name", f.name},
      {"ci_type", text(f.ci_type)},
      {"owner", text(f.owner)},
      {"message", f.message},
      {"state", NameIn(kAuditFindingStateNames, f.state)},
      {"first_run_id", f.first_run_id},
      {"last_run_id", f.last_run_id},
      {"first_failed_at", FormatTimestamp(f.first_failed_at)},
      {"last_failed_at", FormatTimestamp(f.last_failed_at)},
      {"resolved_run_id",
       f.resolved_run_id ? json::value(*f.resolved_run_id) : json::value(nullptr)},
      {"resolved_at", TimestampJson(f.resolved_at)},
      {"version", f.version}};
  if (f.waived_by) {
    out["waiver"] = json::object{{"by", *f.waived_by},
                                 {"reason", text(f.waiver_reason)},
                                 {"until", TimestampJson(f.waived_until)},
                                 {"at", TimestampJson(f.waived_at)}};
  } else {
    out["waiver"] = nullptr;
  }
  return out;
}

Waiver WaiverFromJson(const json::value& body, Timestamp now, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a waiver is a JSON object");
  CheckFields(*o, {"reason", "until"}, errors);
  Waiver w;
  const json::value* reason = o->if_contains("reason");
  if (reason == nullptr || !reason->is_string() ||
      reason->get_string().find_first_not_of(" \t\r\n") == json::string::npos ||
      reason->get_string().size() > 2000) {
    errors.Add("reason", "required: why the finding is accepted, 1 to 2000 characters");
  } else {
    w.reason = std::string(reason->get_string());
  }
  const json::value* until = o->if_contains("until");
  std::optional<Timestamp> at;
  if (until != nullptr && until->is_string()) at = ParseTimestamp(until->get_string());
  constexpr std::int64_t kYear = 366LL * 24 * 3600 * 1000000;
  if (!at) {
    errors.Add("until", "required: the instant the waiver ends (RFC 3339)");
  } else if (at->micros <= now.micros) {
    errors.Add("until", "must be in the future");
  } else if (at->micros > now.micros + kYear) {
    errors.Add("until", "must be at most a year ahead: waivers are reviewed, not forgotten");
  } else {
    w.until = *at;
  }
  if (ContainsNul(body)) errors.Add("reason", "cannot contain the NUL character (\\u0000)");
  return w;
}

}  // namespace cmdb::model
