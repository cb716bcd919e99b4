#pragma once
// Request handlers: each maps a Request to a Response in the shape of Beast's handle_request,
// and can be called without a socket. They throw model::Error for client and server failures;
// the router turns those into problem+json.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "graph/graph_contents.hpp"
#include "model/enum_names.hpp"
#include "model/history.hpp"
#include "model/timestamp.hpp"
#include "server/router.hpp"

namespace cmdb::server::handlers {

// --- helpers shared by handlers ---
// Parses a JSON body; 415 unless the content type is JSON (`application/json`, `+json`),
// 400 when empty or malformed.
boost::json::value ParseJsonBody(const Request& request);
Response JsonResponse(int status, const boost::json::value& body);
// A positive 64-bit id from a path segment; 400 otherwise (naming `what`).
std::int64_t ParseId(std::string_view text, std::string_view what);
// If-Match as a version; nullopt when absent or "*"; 400 when malformed.
std::optional<std::int64_t> ParseIfMatch(const Request& request);
// Integer query parameter `name` in [min, max], `fallback` when absent; 400 otherwise.
int ParseIntParam(const Request& request, const char* name, int fallback, int min, int max);
// `limit` (default 100, 1..1000); 400 otherwise.
int ParseLimit(const Request& request);
// `as_of` when present: RFC 3339, not in the future; 400 otherwise.
std::optional<model::Timestamp> ParseAsOf(const Request& request);
// Query parameter `name` as an RFC 3339 time (since, until, from, to); nullopt when absent or
// empty; 400 otherwise.
std::optional<model::Timestamp> TimeParam(const Request& request, const char* name);
// Opaque keyset cursors.
std::string EncodeCursor(std::int64_t after);
std::int64_t DecodeCursor(const Request& request);
// 400 naming the first query parameter not in `allowed` (and not attr.* when allowed).
void CheckQueryParams(const Request& request, std::initializer_list<std::string_view> allowed,
                      bool allow_attr = false);
std::string ETag(std::int64_t version);
// Query parameter `name` as an id; nullopt when absent or empty; 400 otherwise.
std::optional<std::int64_t> OptionalIdParam(const Request& request, const char* name);
// Query parameter `name` as true/1 or false/0; nullopt when absent or empty; 400 otherwise.
std::optional<bool> ParseBoolParam(const Request& request, const char* name);
// Query parameter `name` when it is one of `allowed`; nullopt when absent or empty; 400
// naming the allowed values otherwise.
std::optional<std::string> OneOfParam(const Request& request, const char* name,
                                      std::initializer_list<std::string_view> allowed);
std::optional<std::string> OneOfParam(const Request& request, const char* name,
                                      const std::vector<std::string_view>& allowed);
// Query parameter `name` as a value of an enum by its names in `table` (model/enum_names.hpp);
// nullopt when absent or empty; 400 naming the allowed values otherwise.
template <typename Enum, std::size_t N>
std::optional<Enum> EnumParam(const Request& request, const char* name,
                              const std::array<model::EnumName<Enum>, N>& table) {
  std::vector<std::string_view> names;
  names.reserve(N);
  for (const auto& row : table) names.push_back(row.name);
  std::optional<std::string> text = OneOfParam(request, name, names);
  if (!text) return std::nullopt;
  return model::ValueIn(table, *text);
}
// A JSON resource with its version as ETag, and its Location when just created (201).
Response ResourceResponse(int status, const boost::json::value& body, std::int64_t version,
                          const std::string& location);
// 204, no body: a delete or a revocation done.
Response NoContent();
// Who writes: the user the request acts as (history's changed_by, events' by).
model::WriteContext Writer(const Request& request);
// The principal the router verified; kUnauthenticated when there is none (a public route).
const model::Principal& Caller(const Request& request);

// A page of history fetched with one version more than `limit`, newest first; the cursor
// names the oldest version shown.
Response HistoryPage(const std::vector<model::HistoryEntry>& versions, int limit);

// A page of `rows` fetched with one row more than `limit`: the first `limit` as items and,
// when the extra row came back, the cursor after the last item shown.
template <typename Row, typename ToJson>
Response PageResponse(const std::vector<Row>& rows, std::size_t limit, ToJson&& to_json) {
  boost::json::array items;
  for (std::size_t i = 0; i < rows.size() && i < limit; ++i) items.push_back(to_json(rows[i]));
  boost::json::object body{{"items", std::move(items)}};
  body["next_cursor"] = rows.size() > limit ? boost::json::value(EncodeCursor(rows[limit - 1].id))
                                            : boost::json::value(nullptr);
  return JsonResponse(200, body);
}

// --- operational ---
Response GetHealth(const Request&, const PathParams&, AppContext&);
Response GetReady(const Request&, const PathParams&, AppContext&);
Response GetMetrics(const Request&, const PathParams&, AppContext&);
Response GetOpenApi(const Request&, const PathParams&, AppContext&);

// --- CI types ---
Response ListCiTypes(const Request&, const PathParams&, AppContext&);
Response CreateCiType(const Request&, const PathParams&, AppContext&);
Response GetCiType(const Request&, const PathParams&, AppContext&);
Response PutCiType(const Request&, const PathParams&, AppContext&);
Response DeleteCiType(const Request&, const PathParams&, AppContext&);

// --- CIs ---
Response ListCis(const Request&, const PathParams&, AppContext&);
Response CreateCi(const Request&, const PathParams&, AppContext&);
Response GetCi(const Request&, const PathParams&, AppContext&);
// GET /api/v1/cis/{id} of the present through AppContext::ci_reader (batched with concurrent
// reads, off the worker pool). as_of or any other parameter and bad ids are left to GetCi.
bool StartGetCi(const Request&, const PathParams&, AppContext&, Answer answer);
// Answered on the I/O thread: they must answer while every worker is busy (overload).
bool StartHealth(const Request&, const PathParams&, AppContext&, Answer answer);
bool StartMetrics(const Request&, const PathParams&, AppContext&, Answer answer);
Response PatchCi(const Request&, const PathParams&, AppContext&);
Response DeleteCi(const Request&, const PathParams&, AppContext&);
Response GetCiHistory(const Request&, const PathParams&, AppContext&);
Response GetCiImpact(const Request&, const PathParams&, AppContext&);
Response GetCiImpactGraph(const Request&, const PathParams&, AppContext&);
// The impact picture of CI {id} as GetCiImpactGraph draws it (its query parameters unchecked),
// every CI node linking to `node_link` ("{id}" replaced) when set.
Response CiImpactGraph(const Request&, const PathParams&, AppContext&,
                       const std::string& node_link);

// Marks the CIs of an impact picture that have open drift or an open incident.
}  // namespace cmdb::server::handlers
namespace cmdb::reports {
struct ImpactPicture;
}
namespace cmdb::server::handlers {
void MarkDriftAndIncidents(reports::ImpactPicture& picture, AppContext& ctx);
// Marks the picture and draws it in the request's ?format=svg|png|dot (default svg); 400 for
// any other format.
Response RenderPicture(const Request& request, reports::ImpactPicture& picture, AppContext& ctx);

// Marks the in-memory graph out of date after a committed write.
void GraphChanged(AppContext& ctx);
// After a write whose rows the handler knows: applied to this instance's graph at once.
void GraphChanged(AppContext& ctx, graph::GraphChanges changes);

// --- relations ---
Response ListRelationTypes(const Request&, const PathParams&, AppContext&);
Response CreateRelationType(const Request&, const PathParams&, AppContext&);
Response CreateRelation(const Request&, const PathParams&, AppContext&);
Response ListRelations(const Request&, const PathParams&, AppContext&);
Response GetRelation(const Request&, const PathParams&, AppContext&);
Response DeleteRelation(const Request&, const PathParams&, AppContext&);
Response GetRelationHistory(const Request&, const PathParams&, AppContext&);

// --- import ---
Response PostImport(const Request&, const PathParams&, AppContext&);
// The body of an asynchronous import, taken as a stream; nullptr for a synchronous one.
std::unique_ptr<StreamedRequest> StreamImport(const Request&, const PathParams&, AppContext&);
Response ListImportJobs(const Request&, const PathParams&, AppContext&);
Response GetImportJob(const Request&, const PathParams&, AppContext&);

// --- changes ---
Response CreateChange(const Request&, const PathParams&, AppContext&);
Response ListChanges(const Request&, const PathParams&, AppContext&);
Response GetChange(const Request&, const PathParams&, AppContext&);
Response GetChangeEvents(const Request&, const PathParams&, AppContext&);
Response SubmitChange(const Request&, const PathParams&, AppContext&);
Response ApproveChange(const Request&, const PathParams&, AppContext&);
Response RejectChange(const Request&, const PathParams&, AppContext&);
Response StartChange(const Request&, const PathParams&, AppContext&);
Response CompleteChange(const Request&, const PathParams&, AppContext&);
Response FailChange(const Request&, const PathParams&, AppContext&);
Response CancelChange(const Request&, const PathParams&, AppContext&);
Response GetChangeImpact(const Request&, const PathParams&, AppContext&);
Response GetChangeImpactGraph(const Request&, const PathParams&, AppContext&);

// --- incidents and knowledge ---
Response GetServiceCalendar(const Request&, const PathParams&, AppContext&);
Response PutServiceCalendar(const Request&, const PathParams&, AppContext&);
Response CreateIncident(const Request&, const PathParams&, AppContext&);
Response ListIncidents(const Request&, const PathParams&, AppContext&);
Response GetIncident(const Request&, const PathParams&, AppContext&);
Response GetIncidentEvents(const Request&, const PathParams&, AppContext&);
Response AssignIncident(const Request&, const PathParams&, AppContext&);
Response EscalateIncident(const Request&, const PathParams&, AppContext&);
Response ResolveIncident(const Request&, const PathParams&, AppContext&);
Response CloseIncident(const Request&, const PathParams&, AppContext&);
Response GetIncidentTrace(const Request&, const PathParams&, AppContext&);
Response CreateArticle(const Request&, const PathParams&, AppContext&);
Response ListArticles(const Request&, const PathParams&, AppContext&);
Response GetArticle(const Request&, const PathParams&, AppContext&);
Response ApproveArticle(const Request&, const PathParams&, AppContext&);

// --- discovery and drift ---
Response CreateDiscoverySource(const Request&, const PathParams&, AppContext&);
Response ListDiscoverySources(const Request&, const PathParams&, AppContext&);
Response GetDiscoverySource(const Request&, const PathParams&, AppContext&);
Response PatchDiscoverySource(const Request&, const PathParams&, AppContext&);
Response DeleteDiscoverySource(const Request&, const PathParams&, AppContext&);
Response GetStaleCis(const Request&, const PathParams&, AppContext&);
Response CreateDiscoveryRun(const Request&, const PathParams&, AppContext&);
Response ListDiscoveryRuns(const Request&, const PathParams&, AppContext&);
Response GetDiscoveryRun(const Request&, const PathParams&, AppContext&);
Response ListDrift(const Request&, const PathParams&, AppContext&);
Response GetDrift(const Request&, const PathParams&, AppContext&);
Response AcceptDrift(const Request&, const PathParams&, AppContext&);
Response IgnoreDrift(const Request&, const PathParams&, AppContext&);

// --- configuration audit ---
Response ListAuditRules(const Request&, const PathParams&, AppContext&);
Response CreateAuditRule(const Request&, const PathParams&, AppContext&);
Response GetAuditRule(const Request&, const PathParams&, AppContext&);
Response PutAuditRule(const Request&, const PathParams&, AppContext&);
Response DeleteAuditRule(const Request&, const PathParams&, AppContext&);
Response GetAuditRuleHistory(const Request&, const PathParams&, AppContext&);
Response TestAuditRule(const Request&, const PathParams&, AppContext&);
Response ListAuditRuleSets(const Request&, const PathParams&, AppContext&);
Response GetAuditRuleSet(const Request&, const PathParams&, AppContext&);
Response PutAuditRuleSet(const Request&, const PathParams&, AppContext&);
Response CreateAuditRun(const Request&, const PathParams&, AppContext&);
Response ListAuditRuns(const Request&, const PathParams&, AppContext&);
Response GetAuditRun(const Request&, const PathParams&, AppContext&);
Response GetAuditScores(const Request&, const PathParams&, AppContext&);
Response ListAuditFindings(const Request&, const PathParams&, AppContext&);
Response GetAuditFinding(const Request&, const PathParams&, AppContext&);
Response WaiveAuditFinding(const Request&, const PathParams&, AppContext&);
Response GetCiAudit(const Request&, const PathParams&, AppContext&);

// --- access: users, tokens, the audit log ---
Response ListUsers(const Request&, const PathParams&, AppContext&);
Response CreateUser(const Request&, const PathParams&, AppContext&);
Response GetUser(const Request&, const PathParams&, AppContext&);
Response PatchUser(const Request&, const PathParams&, AppContext&);
Response DeleteUser(const Request&, const PathParams&, AppContext&);
Response GetMe(const Request&, const PathParams&, AppContext&);
Response CreateToken(const Request&, const PathParams&, AppContext&);
Response ListTokens(const Request&, const PathParams&, AppContext&);
Response RevokeToken(const Request&, const PathParams&, AppContext&);
Response ListAuditLog(const Request&, const PathParams&, AppContext&);

// --- quality review ---
Response ListKeyUsers(const Request&, const PathParams&, AppContext&);
Response CreateKeyUser(const Request&, const PathParams&, AppContext&);
Response GetKeyUser(const Request&, const PathParams&, AppContext&);
Response PatchKeyUser(const Request&, const PathParams&, AppContext&);
Response CreateIncidentCallback(const Request&, const PathParams&, AppContext&);
Response ListIncidentCallbacks(const Request&, const PathParams&, AppContext&);
Response CreateKeyUserCallback(const Request&, const PathParams&, AppContext&);
Response ListCallbacks(const Request&, const PathParams&, AppContext&);
Response ListComplaints(const Request&, const PathParams&, AppContext&);
Response CreateComplaint(const Request&, const PathParams&, AppContext&);
Response GetComplaint(const Request&, const PathParams&, AppContext&);
Response GetComplaintEvents(const Request&, const PathParams&, AppContext&);
Response RectifyComplaint(const Request&, const PathParams&, AppContext&);
Response VerifyComplaint(const Request&, const PathParams&, AppContext&);
Response CloseComplaint(const Request&, const PathParams&, AppContext&);
Response LinkIncidentChange(const Request&, const PathParams&, AppContext&);
Response ListIncidentChanges(const Request&, const PathParams&, AppContext&);
Response ReopenIncident(const Request&, const PathParams&, AppContext&);

// --- reports ---
Response GetOperationsReport(const Request&, const PathParams&, AppContext&);
Response GetInventoryReport(const Request&, const PathParams&, AppContext&);
Response GetInventoryCompareReport(const Request&, const PathParams&, AppContext&);
Response GetDriftReport(const Request&, const PathParams&, AppContext&);
Response GetAuditReport(const Request&, const PathParams&, AppContext&);
Response GetChangesReport(const Request&, const PathParams&, AppContext&);

// --- web UI (ui_handlers.cpp) ---
// The web UI's routes: pages under /ui/, signed in with the session cookie.
std::vector<Route> UiRoutes();
// What the router answers on a /ui/ path: a problem becomes a page (401: to the sign-in page),
// and every answer gets the UI's security headers.
Response UiResponse(const Request& request, Response response);

}  // namespace cmdb::server::handlers
