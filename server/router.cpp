#include "server/router.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <optional>

#include <boost/json.hpp>

#include "auth/authenticator.hpp"
#include "model/error.hpp"
#include "model/log.hpp"
#include "model/timestamp.hpp"
#include "server/handlers/handlers.hpp"
#include "server/metrics.hpp"
#include "server/problem.hpp"

namespace cmdb::server {
namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::vector<Route> ApiRoutes() {
  using namespace handlers;  // NOLINT(google-build-using-namespace): the table reads better
  using model::Role;
  // Who may call what: product.md's access table, row by row (docs/access.md shows it).
  const Access anyone = Public();
  const Access reader = Needs(Role::kViewer);
  const Access assets = Needs(Role::kAssetAdmin);
  const Access handler = Needs(Role::kIncidentHandler);
  const Access raiser = NeedsAnyOf({Role::kAssetAdmin, Role::kIncidentHandler});
  const Access reviewer = Needs(Role::kChangeReviewer);
  const Access admin = Needs(Role::kAdmin);
  const Access quality = Needs(Role::kQualityAuditor);
  const Access self = SignedIn();  // the handler allows only one's own, or an admin
  return {
      {"GET", "/health", GetHealth, anyone, StartHealth},
      {"GET", "/ready", GetReady, anyone},
      {"GET", "/metrics", GetMetrics, anyone, StartMetrics},
      {"GET", "/api/v1/openapi.json", GetOpenApi, anyone},
      {"GET", "/api/v1/ci-types", ListCiTypes, reader},
      {"POST", "/api/v1/ci-types", CreateCiType, assets},
      {"GET", "/api/v1/ci-types/{name}", GetCiType, reader},
      {"PUT", "/api/v1/ci-types/{name}", PutCiType, assets},
      {"DELETE", "/api/v1/ci-types/{name}", DeleteCiType, assets},
      {"GET", "/api/v1/cis", ListCis, reader},
      {"POST", "/api/v1/cis", CreateCi, assets},
      {"GET", "/api/v1/cis/{id}", GetCi, reader, StartGetCi},
      {"PATCH", "/api/v1/cis/{id}", PatchCi, assets},
      {"DELETE", "/api/v1/cis/{id}", DeleteCi, assets},
      {"GET", "/api/v1/cis/{id}/history", GetCiHistory, reader},
      {"GET", "/api/v1/cis/{id}/impact", GetCiImpact, reader},
      {"GET", "/api/v1/cis/{id}/impact/graph", GetCiImpactGraph, reader},
      {"GET", "/api/v1/relation-types", ListRelationTypes, reader},
      {"POST", "/api/v1/relation-types", CreateRelationType, assets},
      {"GET", "/api/v1/relations", ListRelations, reader},
      {"POST", "/api/v1/relations", CreateRelation, assets},
      {"GET", "/api/v1/relations/{id}", GetRelation, reader},
      {"DELETE", "/api/v1/relations/{id}", DeleteRelation, assets},
      {"GET", "/api/v1/relations/{id}/history", GetRelationHistory, reader},
      {"POST", "/api/v1/import", PostImport, assets, {}, StreamImport},
      {"GET", "/api/v1/import-jobs", ListImportJobs, reader},
      {"GET", "/api/v1/import-jobs/{id}", GetImportJob, reader},
      {"GET", "/api/v1/discovery/sources", ListDiscoverySources, reader},
      {"POST", "/api/v1/discovery/sources", CreateDiscoverySource, assets},
      {"GET", "/api/v1/discovery/sources/{id}", GetDiscoverySource, reader},
      {"PATCH", "/api/v1/discovery/sources/{id}", PatchDiscoverySource, assets},
      {"DELETE", "/api/v1/discovery/sources/{id}", DeleteDiscoverySource, assets},
      {"GET", "/api/v1/discovery/sources/{id}/stale", GetStaleCis, reader},
      {"GET", "/api/v1/discovery/runs", ListDiscoveryRuns, reader},
      // An agent posts only to the source it is bound to (checked by the handler).
      {"POST", "/api/v1/discovery/runs", CreateDiscoveryRun,
       NeedsAnyOf({Role::kAssetAdmin, Role::kDiscoveryAgent})},
      {"GET", "/api/v1/discovery/runs/{id}", GetDiscoveryRun, reader},
      {"GET", "/api/v1/drift", ListDrift, reader},
      {"GET", "/api/v1/drift/{id}", GetDrift, reader},
      {"POST", "/api/v1/drift/{id}/accept", AcceptDrift, assets},
      {"POST", "/api/v1/drift/{id}/ignore", IgnoreDrift, assets},
      {"GET", "/api/v1/changes", ListChanges, reader},
      {"POST", "/api/v1/changes", CreateChange, raiser},
      {"GET", "/api/v1/changes/{id}", GetChange, reader},
      {"GET", "/api/v1/changes/{id}/events", GetChangeEvents, reader},
      {"POST", "/api/v1/changes/{id}/submit", SubmitChange, raiser},
      // Never one's own change (checked where the transition is stored).
      {"POST", "/api/v1/changes/{id}/approve", ApproveChange, reviewer},
      {"POST", "/api/v1/changes/{id}/reject", RejectChange, reviewer},
      {"POST", "/api/v1/changes/{id}/start", StartChange, raiser},
      {"POST", "/api/v1/changes/{id}/complete", CompleteChange, raiser},
      {"POST", "/api/v1/changes/{id}/fail", FailChange, raiser},
      {"POST", "/api/v1/changes/{id}/cancel", CancelChange, raiser},
      {"GET", "/api/v1/changes/{id}/impact", GetChangeImpact, reader},
      {"GET", "/api/v1/changes/{id}/impact/graph", GetChangeImpactGraph, reader},
      {"GET", "/api/v1/service-calendar", GetServiceCalendar, reader},
      {"PUT", "/api/v1/service-calendar", PutServiceCalendar, admin},
      {"GET", "/api/v1/incidents", ListIncidents, reader},
      {"POST", "/api/v1/incidents", CreateIncident, handler},
      {"GET", "/api/v1/incidents/{id}", GetIncident, reader},
      {"GET", "/api/v1/incidents/{id}/events", GetIncidentEvents, reader},
      {"POST", "/api/v1/incidents/{id}/assign", AssignIncident, handler},
      // Only from the handler's own tier (checked by the handler).
      {"POST", "/api/v1/incidents/{id}/escalate", EscalateIncident, handler},
      {"POST", "/api/v1/incidents/{id}/resolve", ResolveIncident, handler},
      {"POST", "/api/v1/incidents/{id}/close", CloseIncident, handler},
      {"POST", "/api/v1/incidents/{id}/reopen", ReopenIncident, handler},
      {"GET", "/api/v1/incidents/{id}/trace", GetIncidentTrace, reader},
      // Second line's plan: a change answering the incident, with the date promised.
      {"GET", "/api/v1/incidents/{id}/changes", ListIncidentChanges, reader},
      {"POST", "/api/v1/incidents/{id}/changes", LinkIncidentChange, handler},
      {"GET", "/api/v1/incidents/{id}/callbacks", ListIncidentCallbacks, reader},
      {"POST", "/api/v1/incidents/{id}/callbacks", CreateIncidentCallback, quality},
      {"GET", "/api/v1/callbacks", ListCallbacks, reader},
      // First-line handlers too (their tier is checked by the handler).
      {"POST", "/api/v1/callbacks", CreateKeyUserCallback,
       NeedsAnyOf({Role::kQualityAuditor, Role::kIncidentHandler})},
      {"GET", "/api/v1/key-users", ListKeyUsers, reader},
      {"POST", "/api/v1/key-users", CreateKeyUser, quality},
      {"GET", "/api/v1/key-users/{id}", GetKeyUser, reader},
      {"PATCH", "/api/v1/key-users/{id}", PatchKeyUser, quality},
      {"GET", "/api/v1/complaints", ListComplaints, reader},
      {"POST", "/api/v1/complaints", CreateComplaint, quality},
      {"GET", "/api/v1/complaints/{id}", GetComplaint, reader},
      {"GET", "/api/v1/complaints/{id}/events", GetComplaintEvents, reader},
      {"POST", "/api/v1/complaints/{id}/rectify", RectifyComplaint, quality},
      {"POST", "/api/v1/complaints/{id}/verify", VerifyComplaint, quality},
      {"POST", "/api/v1/complaints/{id}/close", CloseComplaint, quality},
      {"GET", "/api/v1/knowledge", ListArticles, reader},
      {"POST", "/api/v1/knowledge", CreateArticle, handler},
      {"GET", "/api/v1/knowledge/{id}", GetArticle, reader},
      // Only staff of the lead's tier, never the lead's own (checked by the handler).
      {"POST", "/api/v1/knowledge/{id}/approve", ApproveArticle, Needs(Role::kGroupLead)},
      {"GET", "/api/v1/users", ListUsers, NeedsAnyOf({Role::kAdmin, Role::kAuditor})},
      {"POST", "/api/v1/users", CreateUser, admin},
      {"GET", "/api/v1/users/{name}", GetUser, NeedsAnyOf({Role::kAdmin, Role::kAuditor})},
      {"PATCH", "/api/v1/users/{name}", PatchUser, admin},
      {"DELETE", "/api/v1/users/{name}", DeleteUser, admin},
      {"GET", "/api/v1/me", GetMe, self},
      {"POST", "/api/v1/users/{name}/tokens", CreateToken, self},
      {"GET", "/api/v1/users/{name}/tokens", ListTokens, self},
      {"DELETE", "/api/v1/tokens/{id}", RevokeToken, self},
      {"GET", "/api/v1/audit-log", ListAuditLog, Needs(Role::kAuditor)},
      {"GET", "/api/v1/audit/rules", ListAuditRules, reader},
      {"POST", "/api/v1/audit/rules", CreateAuditRule, assets},
      {"GET", "/api/v1/audit/rules/{key}", GetAuditRule, reader},
      {"PUT", "/api/v1/audit/rules/{key}", PutAuditRule, assets},
      {"DELETE", "/api/v1/audit/rules/{key}", DeleteAuditRule, assets},
      {"GET", "/api/v1/audit/rules/{key}/history", GetAuditRuleHistory, reader},
      // Evaluates without writing: anyone who reads audit results may ask why.
      {"POST", "/api/v1/audit/rules/{key}/test", TestAuditRule, reader},
      {"GET", "/api/v1/audit/rule-sets", ListAuditRuleSets, reader},
      {"GET", "/api/v1/audit/rule-sets/{name}", GetAuditRuleSet, reader},
      {"PUT", "/api/v1/audit/rule-sets/{name}", PutAuditRuleSet, assets},
      {"GET", "/api/v1/audit/runs", ListAuditRuns, reader},
      {"POST", "/api/v1/audit/runs", CreateAuditRun, assets},
      {"GET", "/api/v1/audit/runs/{id}", GetAuditRun, reader},
      {"GET", "/api/v1/audit/scores", GetAuditScores, reader},
      {"GET", "/api/v1/audit/findings", ListAuditFindings, reader},
      {"GET", "/api/v1/audit/findings/{id}", GetAuditFinding, reader},
      {"POST", "/api/v1/audit/findings/{id}/waive", WaiveAuditFinding, assets},
      {"GET", "/api/v1/cis/{id}/audit", GetCiAudit, reader},
      {"GET", "/api/v1/reports/inventory", GetInventoryReport, reader},
      {"GET", "/api/v1/reports/inventory/compare", GetInventoryCompareReport, reader},
      {"GET", "/api/v1/reports/drift", GetDriftReport, reader},
      {"GET", "/api/v1/reports/audit", GetAuditReport, reader},
      {"GET", "/api/v1/reports/changes", GetChangesReport, reader},
      {"GET", "/api/v1/reports/operations", GetOperationsReport, reader},
  };
}

Access Public() { return Access{Access::Kind::kPublic, {}}; }
Access SignedIn() { return Access{Access::Kind::kSignedIn, {}}; }
Access Needs(model::Role role) { return Access{Access::Kind::kRoles, {role}}; }
Access NeedsAnyOf(std::initializer_list<model::Role> roles) {
  return Access{Access::Kind::kRoles, roles};
}

bool Access::Permits(const model::Principal& principal) const {
  switch (kind) {
    case Kind::kPublic:
    case Kind::kSignedIn:
      return true;
    case Kind::kRoles:
      return std::any_of(roles.begin(), roles.end(),
                         [&](model::Role r) { return principal.Allows(r); });
  }
  return false;
}

std::string Access::Describe() const {
  switch (kind) {
    case Kind::kPublic:
      return "public";
    case Kind::kSignedIn:
      return "signed_in";
    case Kind::kRoles:
      break;
  }
  std::string out;
  for (model::Role r : roles) {
    if (!out.empty()) out += " or ";
    out += model::RoleName(r);
  }
  return out;
}

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    segments_.push_back(Split(routes_[i].pattern));
    if (routes_[i].start) starters_.push_back(i);
  }
}

bool Router::PathMatches(std::size_t route, const std::vector<std::string>& parts,
                         PathParams& params) const {
  const auto& pattern = segments_[route];
  if (pattern.size() != parts.size()) return false;
  for (std::size_t s = 0; s < pattern.size(); ++s) {
    if (pattern[s].size() > 2 && pattern[s].front() == '{') {
      if (parts[s].empty()) return false;
      params[pattern[s].substr(1, pattern[s].size() - 2)] = parts[s];
    } else if (pattern[s] != parts[s]) {
      return false;
    }
  }
  return true;
}

const Route* Router::Match(const Request& request, PathParams& params, bool& path_known) const {
  std::vector<std::string> parts = Split(request.path);
  path_known = false;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    PathParams candidate;
    if (!PathMatches(i, parts, candidate)) continue;
    path_known = true;
    if (routes_[i].method == request.method ||
        (request.method == "HEAD" && routes_[i].method == "GET")) {
      params = std::move(candidate);
      return &routes_[i];
    }
  }
  return nullptr;
}

namespace {

// The problem response for the exception being handled: a model::Error as itself, anything
// else a 500 whose real message only reaches the log.
Response CurrentProblem(const Request& request) {
  try {
    throw;
  } catch (const model::Error& e) {
    Response response = MakeProblemResponse(e, request.path);
    if (e.code() == model::ErrorCode::kInternal || e.code() == model::ErrorCode::kUnavailable) {
      // A refusal to take on more work (it says when to retry) is the server protecting itself.
      model::Log(e.retry_after().count() > 0 ? model::LogLevel::kWarn : model::LogLevel::kError,
                 e.what(), {{"request_id", request.request_id}, {"path", request.path}});
      if (e.code() == model::ErrorCode::kInternal) {
        response = MakeProblemResponse(model::ErrorCode::kInternal,
                                       "the server failed; the request id is " + request.request_id,
                                       request.path);
      }
    }
    return response;
  } catch (const std::exception& e) {
    model::Log(model::LogLevel::kError, e.what(),
               {{"request_id", request.request_id}, {"path", request.path}});
    return MakeProblemResponse(model::ErrorCode::kInternal,
                               "the server failed; the request id is " + request.request_id,
                               request.path);
  } catch (...) {
    model::Log(model::LogLevel::kError, "unknown exception",
               {{"request_id", request.request_id}, {"path", request.path}});
    return MakeProblemResponse(model::ErrorCode::kInternal,
                               "the server failed; the request id is " + request.request_id,
                               request.path);
  }
}

// Metrics and the request's log line.
void Record(const Request& request, AppContext& ctx, const std::string& route_name,
            std::chrono::steady_clock::time_point started, const Response& response) {
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (ctx.metrics != nullptr)
    ctx.metrics->Record(request.method, route_name, response.status, seconds);
  if (ctx.log_requests && route_name != "/health" && route_name != "/metrics") {
    model::Log(model::LogLevel::kInfo, "request",
               {{"request_id", request.request_id},
                {"method", request.method},
                {"path", request.path},
                {"route", route_name},
                {"status", response.status},
                {"duration_ms", std::round(seconds * 1e6) / 1e3}});
  }
}

// Checks the caller of `route`: sets request.principal, or throws kUnauthenticated (401),
// kTooManyRequests (429) or kPermissionDenied (403, naming the role needed).
void Authorize(const Route& route, const Request& request, AppContext& ctx) {
  if (route.access.kind == Access::Kind::kPublic) return;
  if (ctx.auth == nullptr) {
    throw model::Error(model::ErrorCode::kUnauthenticated, "this server verifies no token");
  }
  // The web UI signs in once and sends its token in the HttpOnly session cookie instead.
  std::string authorization(request.Header("authorization"));
  if (authorization.empty() && IsUiPath(request.path)) {
    const std::string session = CookieValue(request.Header("cookie"), kSessionCookie);
    if (!session.empty()) authorization = "Bearer " + session;
  }
  request.principal = ctx.auth->Authenticate(authorization, request.client_address);
  if (!route.access.Permits(*request.principal)) {
    throw model::Error(model::ErrorCode::kPermissionDenied,
                       request.method + " " + route.pattern + " needs the role " +
                           route.access.Describe() + "; the token of '" + request.principal->user +
                           "' carries " + request.principal->roles.Describe());
  }
}

// Appends the request to the audit log when it is a write (any method but GET and HEAD,
// whatever its outcome) or a read refused by access control (401, 403).
void Audit(const Request& request, AppContext& ctx, const std::string& route_name,
           const PathParams& params, const Response& response) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (!ctx.audit || (read && response.status != 401 && response.status != 403)) return;
  // A path no route takes (404, 405) wrote nothing and was refused by no one: logging it would
  // let anyone fill the log without a token.
  if (route_name == "unmatched") return;
  model::AuditEntry entry;
  if (request.principal) {
    entry.actor = request.principal->user;
    entry.token_id = request.principal->token_id;
  }
  entry.method = request.method;
  entry.route = route_name;
  entry.path = request.path.substr(0, 2000);
  for (const auto& [name, value] : params) entry.target_ids.push_back(value.substr(0, 200));
  if (response.status == 201 || response.status == 202) {
    for (const auto& [name, value] : response.headers) {
      if (name == "Location") {
        const std::size_t slash = value.rfind('/');
        if (slash != std::string::npos) entry.target_ids.push_back(value.substr(slash + 1));
      }
    }
  }
  entry.status = response.status;
  entry.request_id = request.request_id;
  entry.client_address = request.client_address;
  entry.at = model::Timestamp::Now();
  try {
    ctx.audit(std::move(entry));
  } catch (const std::exception& e) {
    // The write itself is committed: the line is lost, and the log says so loudly.
    model::Log(model::LogLevel::kError, "could not append to the audit log",
               {{"request_id", request.request_id}, {"error", e.what()}});
  }
}

}  // namespace

Response Router::Dispatch(const Request& request, AppContext& ctx) const {
  auto started = std::chrono::steady_clock::now();
  Response response;
  std::string route_name = "unmatched";
  PathParams params;
  try {
    bool path_known = false;
    const Route* route = Match(request, params, path_known);
    if (route == nullptr) {
      if (path_known) {
        std::string allowed;
        std::vector<std::string> parts = Split(request.path);
        for (std::size_t i = 0; i < routes_.size(); ++i) {
          PathParams ignored;
          bool ok = segments_[i].size() == parts.size();
          for (std::size_t s = 0; ok && s < parts.size(); ++s) {
            ok = segments_[i][s].front() == '{' || segments_[i][s] == parts[s];
          }
          if (ok) allowed += (allowed.empty() ? "" : ", ") + routes_[i].method;
        }
        response = MakeProblemResponse(
            model::ErrorCode::kMethodNotAllowed,
            "method " + request.method + " is not allowed here; use " + allowed, request.path);
        response.headers.emplace_back("Allow", allowed);
      } else {
        response = MakeProblemResponse(model::ErrorCode::kNotFound,
                                       "no endpoint at " + request.path, request.path);
      }
    } else {
      route_name = route->pattern;
      Authorize(*route, request, ctx);
      response = route->handler(request, params, ctx);
    }
  } catch (const std::exception&) {
    response = CurrentProblem(request);
  }
  if (IsUiPath(request.path)) response = handlers::UiResponse(request, std::move(response));
  Record(request, ctx, route_name, started, response);
  Audit(request, ctx, route_name, params, response);
  return response;
}

namespace {

// A route's StreamedRequest behind the BodySink the listener drives: the first failure is
// the answer, and the answer is recorded and logged once.
class RecordedSink : public BodySink {
 public:
  // `failed`: the answer already (the request was refused from its headers).
  RecordedSink(const Request& request, AppContext& ctx, std::string route, PathParams params,
               std::unique_ptr<StreamedRequest> inner, std::optional<Response> failed)
      : request_(request),
        ctx_(ctx),
        route_(std::move(route)),
        params_(std::move(params)),
        inner_(std::move(inner)),
        started_(std::chrono::steady_clock::now()),
        failed_(std::move(failed)) {}

  bool Write(std::string_view part) override {
    if (failed_) return false;
    try {
      inner_->Write(part);
      return true;
    } catch (const std::exception&) {
      failed_ = CurrentProblem(request_);
      inner_.reset();  // what it began is abandoned (rolled back) now
      return false;
    }
  }

  Response Finish() override {
    Response response;
    if (failed_) {
      response = std::move(*failed_);
    } else {
      try {
        response = inner_->Finish();
      } catch (const std::exception&) {
        response = CurrentProblem(request_);
      }
      inner_.reset();
    }
    Record(request_, ctx_, route_, started_, response);
    Audit(request_, ctx_, route_, params_, response);
    return response;
  }

  Response Abandon(Response problem) override {
    inner_.reset();
    Record(request_, ctx_, route_, started_, problem);
    Audit(request_, ctx_, route_, params_, problem);
    return problem;
  }

 private:
  const Request& request_;
  AppContext& ctx_;
  std::string route_;
  PathParams params_;
  std::unique_ptr<StreamedRequest> inner_;
  std::chrono::steady_clock::time_point started_;
  std::optional<Response> failed_;
};

}  // namespace

bool Router::Streams(const Request& request) const {
  PathParams params;
  bool path_known = false;
  const Route* route = Match(request, params, path_known);
  return route != nullptr && route->stream;
}

std::unique_ptr<BodySink> Router::Stream(const Request& request, AppContext& ctx) const {
  PathParams params;
  bool path_known = false;
  const Route* route = Match(request, params, path_known);
  if (route == nullptr || !route->stream) return nullptr;
  std::unique_ptr<StreamedRequest> inner;
  try {
    Authorize(*route, request, ctx);  // before a byte of the body is read
    inner = route->stream(request, params, ctx);
  } catch (const std::exception&) {
    // Refused from the headers alone (no token, a bad parameter): answered without reading
    // the body.
    return std::make_unique<RecordedSink>(request, ctx, route->pattern, std::move(params), nullptr,
                                          CurrentProblem(request));
  }
  if (inner == nullptr) return nullptr;
  return std::make_unique<RecordedSink>(request, ctx, route->pattern, std::move(params),
                                        std::move(inner), std::nullopt);
}

bool Router::Start(const Request& request, AppContext& ctx,
                   std::function<void(Response)> done) const {
  if (request.method != "GET" && request.method != "HEAD") return false;
  // Most reads have no Starter: only those whose path a Starter's route takes are matched
  // against the whole table (which route wins is Match's to say).
  const std::vector<std::string> parts = Split(request.path);
  if (std::none_of(starters_.begin(), starters_.end(), [&](std::size_t i) {
        PathParams ignored;
        return PathMatches(i, parts, ignored);
      })) {
    return false;
  }
  const auto started = std::chrono::steady_clock::now();
  PathParams params;
  bool path_known = false;
  const Route* route = Match(request, params, path_known);
  if (route == nullptr || !route->start) return false;
  if (route->access.kind != Access::Kind::kPublic) {
    // On the I/O thread only a token verified within the last second is taken; anything else
    // (and every refusal, which is audited) goes to Dispatch on a worker.
    if (ctx.auth == nullptr) return false;
    std::shared_ptr<const model::Principal> principal =
        ctx.auth->Cached(request.Header("authorization"));
    if (principal == nullptr || !route->access.Permits(*principal)) return false;
    request.principal = std::move(principal);
  }
  Answer answer = [&request, &ctx, route, started,
                   done = std::move(done)](const std::function<Response()>& respond) {
    Response response;
    try {
      response = respond();
    } catch (...) {  // whatever it is, the session waiting for this answer must get one
      response = CurrentProblem(request);
    }
    Record(request, ctx, route->pattern, started, response);
    done(std::move(response));
  };
  try {
    return route->start(request, params, ctx, std::move(answer));
  } catch (const std::exception&) {
    return false;  // Dispatch runs the handler, which reports the problem
  }
}

}  // namespace cmdb::server
