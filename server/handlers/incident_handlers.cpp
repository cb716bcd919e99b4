#include <boost/json.hpp>

#include "model/db_pool.hpp"
#include "model/graph_cache.hpp"
#include "model/incident_repository.hpp"
#include "server/handlers/handlers.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

Response IncidentResponse(int status, const model::Incident& incident) {
  return ResourceResponse(status, model::IncidentToJson(incident, model::Timestamp::Now()),
                          incident.version, "/api/v1/incidents/" + std::to_string(incident.id));
}

model::Incident FindIncident(model::IncidentRepository& repo, const PathParams& params) {
  const std::int64_t id = ParseId(params.at("id"), "incident id");
  std::optional<model::Incident> incident = repo.Find(id);
  if (!incident) throw Error(ErrorCode::kNotFound, "incident " + std::to_string(id) + " not found");
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
  model::DbSession session = ctx.db->Lease();
  return IncidentResponse(200, model::IncidentRepository(session.sql())
                                   .Act(id, action, body, ParseIfMatch(request), Writer()));
}

std::optional<int> SmallIntParam(const Request& request, const char* name, int min, int max) {
  if (!request.Query(name) || request.Query(name)->empty()) return std::nullopt;
  return ParseIntParam(request, name, min, min, max);
}

}  // namespace

Response GetServiceCalendar(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::DbSession session = ctx.db->Lease();
  return JsonResponse(
      200, model::WorkingCalendarToJson(model::IncidentRepository(session.sql()).Calendar()));
}

Response PutServiceCalendar(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::DbSession session = ctx.db->Lease();
  return JsonResponse(200, model::WorkingCalendarToJson(
                               model::IncidentRepository(session.sql()).PutCalendar(body)));
}

Response CreateIncident(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::DbSession session = ctx.db->Lease();
  return IncidentResponse(201, model::IncidentRepository(session.sql()).Create(body, Writer()));
}

Response ListIncidents(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "ci", "severity", "tier", "limit", "cursor"});
  model::IncidentFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = OneOfParam(request, "state", {"new", "in_progress", "resolved", "closed"});
  filter.ci = OptionalIdParam(request, "ci");
  filter.severity = SmallIntParam(request, "severity", 1, 4);
  filter.tier = SmallIntParam(request, "tier", 1, 3);
  model::DbSession session = ctx.db->Lease();
  const model::Timestamp now = model::Timestamp::Now();
  return PageResponse(
      model::IncidentRepository(session.sql()).List(filter), static_cast<std::size_t>(filter.limit),
      [&now](const model::Incident& incident) { return model::IncidentToJson(incident, now); });
}

Response GetIncident(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::DbSession session = ctx.db->Lease();
  model::IncidentRepository repo(session.sql());
  return IncidentResponse(200, FindIncident(repo, params));
}

Response GetIncidentEvents(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::DbSession session = ctx.db->Lease();
  model::IncidentRepository repo(session.sql());
  model::Incident incident = FindIncident(repo, params);
  return JsonResponse(200, json::object{{"items", repo.Events(incident.id)}});
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

Response GetIncidentTrace(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"lookback_hours"});
  model::TraceOptions options;
  options.lookback_hours = ParseIntParam(request, "lookback_hours", 72, 1, 24 * 365);
  // Every change this instance knows of must be in the graph, or the trace reads history.
  std::shared_ptr<const model::DependencyGraph> graph = ctx.graph->CurrentUpToDate();
  options.current = graph.get();
  options.current_since = ctx.graph->changed_at();
  model::DbSession session = ctx.db->Lease();
  model::IncidentRepository repo(session.sql());
  model::Incident incident = FindIncident(repo, params);
  return JsonResponse(200, repo.Trace(incident, options));
}

Response CreateArticle(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::DbSession session = ctx.db->Lease();
  model::Article a = model::KnowledgeRepository(session.sql()).Create(body, Writer());
  return ResourceResponse(201, model::ArticleToJson(a), a.version,
                          "/api/v1/knowledge/" + std::to_string(a.id));
}

Response ListArticles(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"q", "state", "ci", "limit", "cursor"});
  model::ArticleFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  if (auto q = request.Query("q"); q && !q->empty()) filter.q = *q;
  filter.state = OneOfParam(request, "state", {"draft", "approved"});
  filter.ci = OptionalIdParam(request, "ci");
  model::DbSession session = ctx.db->Lease();
  return PageResponse(model::KnowledgeRepository(session.sql()).List(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::Article& a) { return model::ArticleToJson(a); });
}

Response GetArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  model::DbSession session = ctx.db->Lease();
  std::optional<model::Article> a = model::KnowledgeRepository(session.sql()).Find(id);
  if (!a) throw Error(ErrorCode::kNotFound, "article " + std::to_string(id) + " not found");
  return ResourceResponse(200, model::ArticleToJson(*a), a->version, "");
}

Response ApproveArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  model::DbSession session = ctx.db->Lease();
  model::Article a =
      model::KnowledgeRepository(session.sql()).Approve(id, ParseIfMatch(request), Writer());
  return ResourceResponse(200, model::ArticleToJson(a), a.version, "");
}

}  // namespace cmdb::server::handlers
