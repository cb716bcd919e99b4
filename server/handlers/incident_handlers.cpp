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

model::WriteContext Writer() { return model::WriteContext{"anonymous", "api"}; }

Response IncidentResponse(int status, const model::Incident& incident) {
  Response response =
      JsonResponse(status, model::IncidentToJson(incident, model::Timestamp::Now()));
  response.headers.emplace_back("ETag", ETag(incident.version));
  if (status == 201) {
    response.headers.emplace_back("Location", "/api/v1/incidents/" + std::to_string(incident.id));
  }
  return response;
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
  if (auto state = request.Query("state"); state && !state->empty()) {
    if (*state != "new" && *state != "in_progress" && *state != "resolved" && *state != "closed") {
      throw Error(ErrorCode::kInvalidArgument,
                  "state must be one of new, in_progress, resolved, closed");
    }
    filter.state = *state;
  }
  if (auto ci = request.Query("ci"); ci && !ci->empty()) filter.ci = ParseId(*ci, "ci");
  filter.severity = SmallIntParam(request, "severity", 1, 4);
  filter.tier = SmallIntParam(request, "tier", 1, 3);
  model::DbSession session = ctx.db->Lease();
  std::vector<model::Incident> incidents = model::IncidentRepository(session.sql()).List(filter);
  const auto limit = static_cast<std::size_t>(filter.limit);
  const model::Timestamp now = model::Timestamp::Now();
  json::array items;
  for (std::size_t i = 0; i < incidents.size() && i < limit; ++i) {
    items.push_back(model::IncidentToJson(incidents[i], now));
  }
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = incidents.size() > limit
                            ? json::value(EncodeCursor(incidents[limit - 1].id))
                            : json::value(nullptr);
  return JsonResponse(200, body);
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
  Response response = JsonResponse(201, model::ArticleToJson(a));
  response.headers.emplace_back("ETag", ETag(a.version));
  response.headers.emplace_back("Location", "/api/v1/knowledge/" + std::to_string(a.id));
  return response;
}

Response ListArticles(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"q", "state", "ci", "limit", "cursor"});
  model::ArticleFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  if (auto q = request.Query("q"); q && !q->empty()) filter.q = *q;
  if (auto state = request.Query("state"); state && !state->empty()) {
    if (*state != "draft" && *state != "approved") {
      throw Error(ErrorCode::kInvalidArgument, "state must be draft or approved");
    }
    filter.state = *state;
  }
  if (auto ci = request.Query("ci"); ci && !ci->empty()) filter.ci = ParseId(*ci, "ci");
  model::DbSession session = ctx.db->Lease();
  std::vector<model::Article> articles = model::KnowledgeRepository(session.sql()).List(filter);
  const auto limit = static_cast<std::size_t>(filter.limit);
  json::array items;
  for (std::size_t i = 0; i < articles.size() && i < limit; ++i)
    items.push_back(model::ArticleToJson(articles[i]));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = articles.size() > limit ? json::value(EncodeCursor(articles[limit - 1].id))
                                                : json::value(nullptr);
  return JsonResponse(200, body);
}

Response GetArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  model::DbSession session = ctx.db->Lease();
  std::optional<model::Article> a = model::KnowledgeRepository(session.sql()).Find(id);
  if (!a) throw Error(ErrorCode::kNotFound, "article " + std::to_string(id) + " not found");
  Response response = JsonResponse(200, model::ArticleToJson(*a));
  response.headers.emplace_back("ETag", ETag(a->version));
  return response;
}

Response ApproveArticle(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "article id");
  model::DbSession session = ctx.db->Lease();
  model::Article a =
      model::KnowledgeRepository(session.sql()).Approve(id, ParseIfMatch(request), Writer());
  Response response = JsonResponse(200, model::ArticleToJson(a));
  response.headers.emplace_back("ETag", ETag(a.version));
  return response;
}

}  // namespace cmdb::server::handlers
