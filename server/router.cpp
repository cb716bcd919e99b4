#include "server/router.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <optional>

#include <boost/json.hpp>

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
  return {
      {"GET", "/health", GetHealth, "public"},
      {"GET", "/ready", GetReady, "public"},
      {"GET", "/metrics", GetMetrics, "public"},
      {"GET", "/api/v1/openapi.json", GetOpenApi, "viewer"},
      {"GET", "/api/v1/ci-types", ListCiTypes, "viewer"},
      {"POST", "/api/v1/ci-types", CreateCiType, "asset_admin"},
      {"GET", "/api/v1/ci-types/{name}", GetCiType, "viewer"},
      {"PUT", "/api/v1/ci-types/{name}", PutCiType, "asset_admin"},
      {"DELETE", "/api/v1/ci-types/{name}", DeleteCiType, "asset_admin"},
      {"GET", "/api/v1/cis", ListCis, "viewer"},
      {"POST", "/api/v1/cis", CreateCi, "asset_admin"},
      {"GET", "/api/v1/cis/{id}", GetCi, "viewer", StartGetCi},
      {"PATCH", "/api/v1/cis/{id}", PatchCi, "asset_admin"},
      {"DELETE", "/api/v1/cis/{id}", DeleteCi, "asset_admin"},
      {"GET", "/api/v1/cis/{id}/history", GetCiHistory, "viewer"},
      {"GET", "/api/v1/cis/{id}/impact", GetCiImpact, "viewer"},
      {"GET", "/api/v1/cis/{id}/impact/graph", GetCiImpactGraph, "viewer"},
      {"GET", "/api/v1/relation-types", ListRelationTypes, "viewer"},
      {"POST", "/api/v1/relation-types", CreateRelationType, "asset_admin"},
      {"GET", "/api/v1/relations", ListRelations, "viewer"},
      {"POST", "/api/v1/relations", CreateRelation, "asset_admin"},
      {"GET", "/api/v1/relations/{id}", GetRelation, "viewer"},
      {"DELETE", "/api/v1/relations/{id}", DeleteRelation, "asset_admin"},
      {"GET", "/api/v1/relations/{id}/history", GetRelationHistory, "viewer"},
      {"POST", "/api/v1/import", PostImport, "asset_admin", {}, StreamImport},
      {"GET", "/api/v1/import-jobs", ListImportJobs, "viewer"},
      {"GET", "/api/v1/import-jobs/{id}", GetImportJob, "viewer"},
      {"GET", "/api/v1/discovery/sources", ListDiscoverySources, "viewer"},
      {"POST", "/api/v1/discovery/sources", CreateDiscoverySource, "asset_admin"},
      {"GET", "/api/v1/discovery/sources/{id}", GetDiscoverySource, "viewer"},
      {"PATCH", "/api/v1/discovery/sources/{id}", PatchDiscoverySource, "asset_admin"},
      {"DELETE", "/api/v1/discovery/sources/{id}", DeleteDiscoverySource, "asset_admin"},
      {"GET", "/api/v1/discovery/sources/{id}/stale", GetStaleCis, "viewer"},
      {"GET", "/api/v1/discovery/runs", ListDiscoveryRuns, "viewer"},
      {"POST", "/api/v1/discovery/runs", CreateDiscoveryRun, "asset_admin"},
      {"GET", "/api/v1/discovery/runs/{id}", GetDiscoveryRun, "viewer"},
      {"GET", "/api/v1/drift", ListDrift, "viewer"},
      {"GET", "/api/v1/drift/{id}", GetDrift, "viewer"},
      {"POST", "/api/v1/drift/{id}/accept", AcceptDrift, "asset_admin"},
      {"POST", "/api/v1/drift/{id}/ignore", IgnoreDrift, "asset_admin"},
      {"GET", "/api/v1/changes", ListChanges, "viewer"},
      {"POST", "/api/v1/changes", CreateChange, "asset_admin"},
      {"GET", "/api/v1/changes/{id}", GetChange, "viewer"},
      {"GET", "/api/v1/changes/{id}/events", GetChangeEvents, "viewer"},
      {"POST", "/api/v1/changes/{id}/submit", SubmitChange, "asset_admin"},
      {"POST", "/api/v1/changes/{id}/approve", ApproveChange, "change_reviewer"},
      {"POST", "/api/v1/changes/{id}/reject", RejectChange, "change_reviewer"},
      {"POST", "/api/v1/changes/{id}/start", StartChange, "asset_admin"},
      {"POST", "/api/v1/changes/{id}/complete", CompleteChange, "asset_admin"},
      {"POST", "/api/v1/changes/{id}/fail", FailChange, "asset_admin"},
      {"POST", "/api/v1/changes/{id}/cancel", CancelChange, "asset_admin"},
      {"GET", "/api/v1/changes/{id}/impact", GetChangeImpact, "viewer"},
      {"GET", "/api/v1/changes/{id}/impact/graph", GetChangeImpactGraph, "viewer"},
      {"GET", "/api/v1/service-calendar", GetServiceCalendar, "viewer"},
      {"PUT", "/api/v1/service-calendar", PutServiceCalendar, "admin"},
      {"GET", "/api/v1/incidents", ListIncidents, "viewer"},
      {"POST", "/api/v1/incidents", CreateIncident, "incident_handler"},
      {"GET", "/api/v1/incidents/{id}", GetIncident, "viewer"},
      {"GET", "/api/v1/incidents/{id}/events", GetIncidentEvents, "viewer"},
      {"POST", "/api/v1/incidents/{id}/assign", AssignIncident, "incident_handler"},
      {"POST", "/api/v1/incidents/{id}/escalate", EscalateIncident, "incident_handler"},
      {"POST", "/api/v1/incidents/{id}/resolve", ResolveIncident, "incident_handler"},
      {"POST", "/api/v1/incidents/{id}/close", CloseIncident, "incident_handler"},
      {"GET", "/api/v1/incidents/{id}/trace", GetIncidentTrace, "viewer"},
      {"GET", "/api/v1/knowledge", ListArticles, "viewer"},
      {"POST", "/api/v1/knowledge", CreateArticle, "incident_handler"},
      {"GET", "/api/v1/knowledge/{id}", GetArticle, "viewer"},
      {"POST", "/api/v1/knowledge/{id}/approve", ApproveArticle, "group_lead"},
  };
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

}  // namespace

Response Router::Dispatch(const Request& request, AppContext& ctx) const {
  auto started = std::chrono::steady_clock::now();
  Response response;
  std::string route_name = "unmatched";
  try {
    PathParams params;
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
      response = route->handler(request, params, ctx);
    }
  } catch (const std::exception&) {
    response = CurrentProblem(request);
  }
  Record(request, ctx, route_name, started, response);
  return response;
}

namespace {

// A route's StreamedRequest behind the BodySink the listener drives: the first failure is
// the answer, and the answer is recorded and logged once.
class RecordedSink : public BodySink {
 public:
  // `failed`: the answer already (the request was refused from its headers).
  RecordedSink(const Request& request, AppContext& ctx, std::string route,
               std::unique_ptr<StreamedRequest> inner, std::optional<Response> failed)
      : request_(request),
        ctx_(ctx),
        route_(std::move(route)),
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
    return response;
  }

  Response Abandon(Response problem) override {
    inner_.reset();
    Record(request_, ctx_, route_, started_, problem);
    return problem;
  }

 private:
  const Request& request_;
  AppContext& ctx_;
  std::string route_;
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
    inner = route->stream(request, params, ctx);
  } catch (const std::exception&) {
    // Refused from the headers alone (a bad parameter): answered without reading the body.
    return std::make_unique<RecordedSink>(request, ctx, route->pattern, nullptr,
                                          CurrentProblem(request));
  }
  if (inner == nullptr) return nullptr;
  return std::make_unique<RecordedSink>(request, ctx, route->pattern, std::move(inner),
                                        std::nullopt);
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
