// Configuration audit: rules and rule sets, runs, scores, findings and waivers, one CI's
// results across rules.

#include <boost/json.hpp>

#include "audit/rule_engine.hpp"
#include "jobs/audit_executor.hpp"
#include "jobs/job_worker.hpp"
#include "model/audit.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"
#include "store/audit_repository.hpp"
#include "store/ci_repository.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

Response RuleResponse(int status, const model::AuditRule& rule) {
  return ResourceResponse(status, model::AuditRuleToJson(rule), rule.version,
                          status == 201 ? "/api/v1/audit/rules/" + rule.key : "");
}

std::string RuleKeyFromPath(const PathParams& params) {
  const std::string& key = params.at("key");
  if (!model::IsValidRuleKey(key)) {
    throw Error(ErrorCode::kInvalidArgument,
                "a rule key is 1-63 lower-case letters, digits, '-' or '_', a letter first");
  }
  return key;
}

// Reads and compiles a rule body: 422 naming every bad part by its JSON pointer.
model::AuditRule ReadRule(const Request& request, std::optional<std::string> key,
                          store::DbSession& session) {
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::AuditRule rule = model::AuditRuleFromJson(body, std::move(key), errors);
  if (errors.empty()) {
    const audit::Catalogue catalogue = store::AuditRepository(session).LoadCatalogue();
    audit::Compile(rule, catalogue, errors);
  }
  errors.ThrowIfAny("the audit rule is invalid");
  return rule;
}

json::object ResultJson(const audit::Evaluator& evaluator, std::size_t r, std::uint32_t ci,
                        bool truncated) {
  std::vector<std::string> why;
  model::AuditOutcome outcome = evaluator.Evaluate(r, ci, &why);
  if (truncated && evaluator.rule(r).reach() > 1 && evaluator.InScope(r, ci)) {
    outcome = model::AuditOutcome::kError;
    why = {
        "more than 100,000 CIs lie within the rule's reach of this CI: only an audit run "
        "decides it (see its findings)"};
  }
  const model::AuditRule& rule = evaluator.rule(r).rule();
  json::array reasons;
  for (auto& w : why) reasons.emplace_back(w);
  json::object out{
      {"rule", rule.key},
      {"title", rule.title},
      {"kpi", model::AuditKpiName(rule.kpi)},
      {"severity", model::AuditSeverityName(rule.severity)},
      {"outcome", model::AuditOutcomeName(outcome)},
      {"message", outcome == model::AuditOutcome::kFail ? json::value(evaluator.Message(r, ci))
                                                        : json::value(nullptr)},
      {"why", std::move(reasons)}};
  return out;
}

}  // namespace

// --- rules ---

Response ListAuditRules(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  json::array items;
  for (const auto& rule : store::AuditRepository(session).ListRules()) {
    items.push_back(model::AuditRuleToJson(rule));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response CreateAuditRule(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  const model::AuditRule rule = ReadRule(request, std::nullopt, session);
  store::AuditRepository repo(session);
  if (repo.FindRule(rule.key)) {
    throw Error(ErrorCode::kAlreadyExists, "audit rule " + rule.key + " exists; PUT replaces it");
  }
  bool created = false;
  const model::AuditRule stored = repo.PutRule(rule, std::nullopt, Writer(request), created);
  if (!created) throw Error(ErrorCode::kAlreadyExists, "audit rule " + rule.key + " exists");
  return RuleResponse(201, stored);
}

Response GetAuditRule(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string key = RuleKeyFromPath(params);
  store::DbSession session = ctx.db->Lease();
  auto rule = store::AuditRepository(session).FindRule(key);
  if (!rule) throw Error(ErrorCode::kNotFound, "audit rule " + key + " does not exist");
  return RuleResponse(200, *rule);
}

Response PutAuditRule(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string key = RuleKeyFromPath(params);
  const std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  const model::AuditRule rule = ReadRule(request, key, session);
  bool created = false;
  const model::AuditRule stored =
      store::AuditRepository(session).PutRule(rule, if_match, Writer(request), created);
  return RuleResponse(created ? 201 : 200, stored);
}

Response DeleteAuditRule(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string key = RuleKeyFromPath(params);
  store::DbSession session = ctx.db->Lease();
  store::AuditRepository(session).DeleteRule(key, ParseIfMatch(request), Writer(request));
  return NoContent();
}

Response GetAuditRuleHistory(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string key = RuleKeyFromPath(params);
  store::DbSession session = ctx.db->Lease();
  const auto versions = store::AuditRepository(session).RuleHistory(key);
  if (versions.empty()) throw Error(ErrorCode::kNotFound, "audit rule " + key + " never existed");
  json::array items;
  for (const auto& v : versions) {
    items.push_back(json::object{{"version", v.version},
                                 {"deleted", v.deleted},
                                 {"changed_at", model::FormatTimestamp(v.valid_from)},
                                 {"changed_by", v.changed_by},
                                 {"rule", v.body}});
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response TestAuditRule(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"ci"});
  const std::string key = RuleKeyFromPath(params);
  const std::optional<std::int64_t> ci = OptionalIdParam(request, "ci");
  if (!ci) throw Error(ErrorCode::kInvalidArgument, "ci is required: the id of the CI to test");
  store::DbSession session = ctx.db->Lease();
  // A body, when sent, is a draft of the rule to try before saving it.
  std::optional<model::AuditRule> rule;
  if (!request.body.empty()) {
    rule = ReadRule(request, key, session);
  } else {
    rule = store::AuditRepository(session).FindRule(key);
    if (!rule) throw Error(ErrorCode::kNotFound, "audit rule " + key + " does not exist");
  }
  jobs::CiAudit results = jobs::EvaluateCi(session, *ci, {*rule});
  if (!results.broken.empty()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "audit rule " + key + " no longer compiles against the catalogue; PUT it again");
  }
  if (results.compiled.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "audit rule " + key + " is about discovery sources, not CIs");
  }
  json::object body = ResultJson(*results.evaluator, 0, results.index, results.truncated);
  body["ci_id"] = *ci;
  body["evaluated_at"] = model::FormatTimestamp(results.estate->at());
  return JsonResponse(200, body);
}

// --- rule sets ---

Response ListAuditRuleSets(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  json::array items;
  for (const auto& set : store::AuditRepository(session).ListSets()) {
    items.push_back(model::AuditRuleSetToJson(set));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response GetAuditRuleSet(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string& name = params.at("name");
  store::DbSession session = ctx.db->Lease();
  auto set = store::AuditRepository(session).FindSet(name);
  if (!set) throw Error(ErrorCode::kNotFound, "rule set " + name + " does not exist");
  return ResourceResponse(200, model::AuditRuleSetToJson(*set), set->version, "");
}

Response PutAuditRuleSet(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::optional<std::int64_t> if_match = ParseIfMatch(request);
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::AuditRuleSet set = model::AuditRuleSetFromJson(body, params.at("name"), errors);
  errors.ThrowIfAny("the rule set is invalid");
  store::DbSession session = ctx.db->Lease();
  bool created = false;
  const model::AuditRuleSet stored =
      store::AuditRepository(session).PutSet(set, if_match, Writer(request), created);
  return ResourceResponse(created ? 201 : 200, model::AuditRuleSetToJson(stored), stored.version,
                          created ? "/api/v1/audit/rule-sets/" + stored.name : "");
}

// --- runs ---

Response CreateAuditRun(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = request.body.empty() ? json::value(json::object{}) : ParseJsonBody(request);
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an audit run is a JSON object");
  model::FieldErrors errors;
  model::CheckFields(*o, {"set", "as_of"}, errors);
  std::string set = "baseline";
  if (const json::value* s = o->if_contains("set")) {
    if (!s->is_string() || !model::IsValidRuleKey(s->get_string())) {
      errors.Add("set", "must be the name of a rule set");
    } else {
      set = std::string(s->get_string());
    }
  }
  std::optional<model::Timestamp> as_of;
  if (const json::value* a = o->if_contains("as_of"); a != nullptr && !a->is_null()) {
    if (a->is_string()) as_of = model::ParseTimestamp(a->get_string());
    if (!as_of) {
      errors.Add("as_of", "must be an RFC 3339 instant");
    } else if (as_of->micros > model::Timestamp::Now().micros) {
      errors.Add("as_of", "is in the future: an audit evaluates what was, not what will be");
      as_of.reset();
    }
  }
  errors.ThrowIfAny("the audit run is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::AuditRun run = store::AuditRepository(session).QueueRun(
      set, as_of, model::AuditTrigger::kApi, Writer(request).changed_by);
  if (ctx.audits != nullptr) ctx.audits->Wake();
  Response response = JsonResponse(202, model::AuditRunToJson(run));
  response.headers.emplace_back("Location", "/api/v1/audit/runs/" + std::to_string(run.id));
  return response;
}

Response ListAuditRuns(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "limit", "cursor"});
  const int limit = ParseLimit(request);
  const std::int64_t after = DecodeCursor(request);
  const auto state = EnumParam(request, "state", model::kJobStateNames);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::AuditRepository(session).ListRuns(state, after, limit),
                      static_cast<std::size_t>(limit),
                      [](const model::AuditRun& run) { return model::AuditRunToJson(run); });
}

Response GetAuditRun(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "audit run id");
  store::DbSession session = ctx.db->Lease();
  auto run = store::AuditRepository(session).FindRun(id);
  if (!run)
    throw Error(ErrorCode::kNotFound, "audit run " + std::to_string(id) + " does not exist");
  return JsonResponse(200, model::AuditRunToJson(*run));
}

// --- scores ---

Response GetAuditScores(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"group_by", "from", "to", "set"});
  const std::string group =
      OneOfParam(request, "group_by", {"overall", "rule", "kpi", "type", "owner"})
          .value_or("overall");
  const std::optional<model::Timestamp> from = TimeParam(request, "from");
  const std::optional<model::Timestamp> to = TimeParam(request, "to");
  if (from && to && from->micros > to->micros) {
    throw Error(ErrorCode::kInvalidArgument, "from is after to");
  }
  std::string set = request.Query("set").value_or("");
  if (set.empty()) set = "baseline";
  store::DbSession session = ctx.db->Lease();
  // One series per group, its points in time order.
  std::map<std::string, json::array> series;
  for (const auto& p : store::AuditRepository(session).Scores(set, group, from, to)) {
    json::object point = model::AuditCountsToJson(p.counts);
    point["run_id"] = p.run_id;
    point["at"] = model::FormatTimestamp(p.at);
    series[p.group].push_back(std::move(point));
  }
  json::array out;
  for (auto& [key, points] : series) {
    out.push_back(json::object{
        {"group", key.empty() && group == "owner" ? json::value(nullptr) : json::value(key)},
        {"points", std::move(points)}});
  }
  return JsonResponse(200,
                      json::object{{"set", set}, {"group_by", group}, {"series", std::move(out)}});
}

// --- findings ---

Response ListAuditFindings(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "rule", "owner", "type", "ci", "limit", "cursor"});
  store::AuditFindingFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = EnumParam(request, "state", model::kAuditFindingStateNames);
  for (const char* name : {"rule", "owner", "type"}) {
    std::optional<std::string> value = request.Query(name);
    if (!value || value->empty()) continue;
    if (std::string_view(name) == "rule") filter.rule = *value;
    if (std::string_view(name) == "owner") filter.owner = *value;
    if (std::string_view(name) == "type") filter.type = *value;
  }
  filter.ci = OptionalIdParam(request, "ci");
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::AuditRepository(session).ListFindings(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::AuditFinding& f) { return model::AuditFindingToJson(f); });
}

Response GetAuditFinding(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "audit finding id");
  store::DbSession session = ctx.db->Lease();
  auto f = store::AuditRepository(session).FindFinding(id);
  if (!f) {
    throw Error(ErrorCode::kNotFound, "audit finding " + std::to_string(id) + " does not exist");
  }
  return ResourceResponse(200, model::AuditFindingToJson(*f), f->version, "");
}

Response WaiveAuditFinding(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "audit finding id");
  const std::optional<std::int64_t> if_match = ParseIfMatch(request);
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  const model::Waiver waiver = model::WaiverFromJson(body, model::Timestamp::Now(), errors);
  errors.ThrowIfAny("the waiver is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::AuditFinding f =
      store::AuditRepository(session).Waive(id, waiver, if_match, Writer(request));
  return ResourceResponse(200, model::AuditFindingToJson(f), f.version, "");
}

Response GetCiAudit(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "CI id");
  store::DbSession session = ctx.db->Lease();
  store::AuditRepository repo(session);
  const std::vector<model::AuditRule> rules = repo.ListRules();
  jobs::CiAudit results = jobs::EvaluateCi(session, id, rules);
  json::array items;
  for (std::size_t r = 0; r < results.compiled.size(); ++r) {
    items.push_back(ResultJson(*results.evaluator, r, results.index, results.truncated));
  }
  for (const model::AuditRule& rule : results.broken) {
    items.push_back(json::object{{"rule", rule.key},
                                 {"title", rule.title},
                                 {"kpi", model::AuditKpiName(rule.kpi)},
                                 {"severity", model::AuditSeverityName(rule.severity)},
                                 {"outcome", "error"},
                                 {"message", nullptr},
                                 {"why", json::array{"the rule no longer compiles against the "
                                                     "catalogue"}}});
  }
  store::AuditFindingFilter filter;
  filter.ci = id;
  filter.limit = 1000;
  json::array findings;
  for (const auto& f : repo.ListFindings(filter)) {
    if (f.state != model::AuditFindingState::kResolved)
      findings.push_back(model::AuditFindingToJson(f));
  }
  return JsonResponse(200,
                      json::object{{"ci_id", id},
                                   {"evaluated_at", model::FormatTimestamp(results.estate->at())},
                                   {"results", std::move(items)},
                                   {"findings", std::move(findings)}});
}

}  // namespace cmdb::server::handlers
