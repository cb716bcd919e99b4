#include <boost/json.hpp>

#include "reports/incident_trace.hpp"
#include "server/handlers/handlers.hpp"
#include "store/db_pool.hpp"
#include "store/graph_cache.hpp"
#include "store/historical_graphs.hpp"
#include "store/incident_repository.hpp"
#include "store/knowledge_repository.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

Response IncidentResponse(int status, const model::Incident& incident) {
  return ResourceResponse(status, model::IncidentToJson(incident, model::Timestamp::Now()),
                          incident.version, "/api/v1/incidents/" + std::to_string(incident.id));
}

model::Incident FindIncident(store::IncidentRepository& repo, const PathParams& params) {
  const std::int64_t id = ParseId(params.at("id"), "incident id");
  std::optional<model::Incident> incident = repo.Find(id);
  if (!incident) {
    throw Error(ErrorCode::kNotFound, "incident " + std::to_string(id) + " does not exist");
  }
  return *incident;
}

Response Act(const Request& request, const PathParams& params, AppContext& ctx,
             std::string_view action) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "incident id");
  json::object body;
  if (!request.body.empty()) {
    json::value parsed = ParseJsonBody(request);
    if (!parsed.is_object()) throw Error(ErrorCode::kInvalidArgument, "the body is a JSON object");
    body = parsed.as_object();
  }
  model::IncidentActionRequest action_request = model::ParseIncidentAction(action, body);
  const model::Principal& caller = Caller(request);
  if (!caller.roles.Contains(model::Role::kAdmin))
    action_request.actor_tier = caller.tier.value_or(0);
  store::DbSession session = ctx.db->Lease();
  return IncidentResponse(
      200, store::IncidentRepository(session).Act(id, action, action_request, ParseIfMatch(request),
                                                  Writer(request)));
}

std::optional<int> SmallIntParam(const Request& request, const char* name, int min, int max) {
  if (!request.Query(name) || request.Query(name)->empty()) return std::nullopt;
  return ParseIntParam(request, name, min, min, max);
}

}  // namespace

Response GetServiceCalendar(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  return JsonResponse(200,
                      model::WorkingCalendarToJson(store::IncidentRepository(session).Calendar()));
}

Response PutServiceCalendar(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  store::DbSession session = ctx.db->Lease();
  return JsonResponse(
      200, model::WorkingCalendarToJson(store::IncidentRepository(session).PutCalendar(body)));
}

Response CreateIncident(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::Incident draft = model::IncidentFromJson(body, model::Timestamp::Now(), errors);
  store::DbSession session = ctx.db->Lease();
  store::IncidentRepository repo(session);
  repo.Validate(draft, errors);
  errors.ThrowIfAny("the incident is invalid");
  return IncidentResponse(201, repo.Create(draft, Writer(request)));
}

Response ListIncidents(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "ci", "severity", "tier", "limit", "cursor"});
  store::IncidentFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = EnumParam(request, "state", model::kIncidentStateNames);
  filter.ci = OptionalIdParam(request, "ci");
  filter.severity = SmallIntParam(request, "severity", 1, 4);
  filter.tier = SmallIntParam(request, "tier", 1, 3);
  store::DbSession session = ctx.db->Lease();
  const model::Timestamp now = model::Timestamp::Now();
  return PageResponse(
      store::IncidentRepository(session).List(filter), static_cast<std::size_t>(filter.limit),
      [&now](const model::Incident& incident) { return model::IncidentToJson(incident, now); });
}

Response GetIncident(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  store::IncidentRepository repo(session);
  return IncidentResponse(200, FindIncident(repo, params));
}

Response GetIncidentEvents(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  store::IncidentRepository repo(session);
  model::Incident incident = FindIncident(repo, params);
  json::array items;
  for (const model::IncidentEvent& e : repo.Events(incident.id)) {
    items.push_back(model::IncidentEventToJson(e));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response AssignIncident(const Request& r, const PathParams& p, AppContext& c) {
  return Act(r, p, c, "assign");
}
Response EscalateIncident(const Request& r, const PathParams& p, AppContext& c) {
  return Act(r, p, c, "escalate");
}
Response ResolveIncident(const Request& r, const PathParams& p, AppContext& c) {
  return Act(r, p, c, "resolve");
}
Response CloseIncident(const Request& r, const PathParams& p, AppContext& c) {
  return Act(r, p, c, "close");
}
Response ReopenIncident(const Request& r, const PathParams& p, AppContext& c) {
  return Act(r, p, c, "reopen");
}

Response GetIncidentTrace(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"lookback_hours"});
  reports::TraceOptions options;
  options.lookback_hours = ParseIntParam(request, "lookback_hours", 72, 1, 24 * 365);
  // Every change this instance knows of must be in the graph, or the trace reads history.
  std::shared_ptr<const graph::DependencyGraph> graph = ctx.graph->CurrentUpToDate();
  options.current = graph.get();
  options.current_since = ctx.graph->changed_at();
  store::DbSession session = ctx.db->Lease();
  options.graph_as_of = [&](model::Timestamp at) { return ctx.history->At(session, at); };
  store::IncidentRepository repo(session);
  const model::Incident incident = FindIncident(repo, params);
  return JsonResponse(200, reports::TraceIncident(session, incident, options));
}

Response CreateArticle(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::Article draft = model::ArticleFromJson(body, errors);
  store::DbSession session = ctx.db->Lease();
  store::KnowledgeRepository repo(session);
  repo.Validate(draft, errors);
  errors.ThrowIfAny("the article is invalid");
  draft.created_by_tier = Caller(request).tier;
  model::Article a = repo.Create(draft, Writer(request));
  return ResourceResponse(201, model::ArticleToJson(a), a.version,
                          "/api/v1/knowledge/" + std::to_string(a.id));
}

Response ListArticles(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"q", "state", "ci", "limit", "cursor"});
  store::ArticleFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  if (auto q = request.Query("q"); q && !q->empty()) filter.q = *q;
  filter.state = EnumParam(request, "state", model::kArticleStateNames);
  filter.ci = OptionalIdParam(request, "ci");
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::KnowledgeRepository(session).List(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::Article& a) { return model::ArticleToJson(a); });
}

Response GetArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  store::DbSession session = ctx.db->Lease();
  std::optional<model::Article> a = store::KnowledgeRepository(session).Find(id);
  if (!a) throw Error(ErrorCode::kNotFound, "article " + std::to_string(id) + " does not exist");
  return ResourceResponse(200, model::ArticleToJson(*a), a->version, "");
}

Response ApproveArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  const model::Principal& caller = Caller(request);
  // A lead approves the knowledge of their own line; an admin that of any line.
  const std::optional<int> lead_tier = caller.roles.Contains(model::Role::kAdmin)
                                           ? std::nullopt
                                           : std::optional<int>(caller.tier.value_or(0));
  store::DbSession session = ctx.db->Lease();
  model::Article a = store::KnowledgeRepository(session).Approve(id, ParseIfMatch(request),
                                                                 Writer(request), lead_tier);
  return ResourceResponse(200, model::ArticleToJson(a), a.version, "");
}

}  // namespace cmdb::server::handlers
