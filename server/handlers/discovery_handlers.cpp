#include <boost/json.hpp>

#include "discovery/discovery_store.hpp"
#include "discovery/run_worker.hpp"
#include "model/db_pool.hpp"
#include "model/db_query.hpp"
#include "server/handlers/handlers.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using discovery::DiscoveryStore;
using model::Error;
using model::ErrorCode;

// --- sources ---

Response CreateDiscoverySource(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::DbSession session = ctx.db->Lease();
  discovery::Source source = DiscoveryStore(session.sql()).CreateSource(body);
  if (source.interval_seconds && ctx.discovery != nullptr) ctx.discovery->Wake();
  return ResourceResponse(201, discovery::SourceToJson(source), source.version,
                          "/api/v1/discovery/sources/" + std::to_string(source.id));
}

Response ListDiscoverySources(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::DbSession session = ctx.db->Lease();
  json::array items;
  for (const auto& s : DiscoveryStore(session.sql()).ListSources()) {
    items.push_back(discovery::SourceToJson(s));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response GetDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  model::DbSession session = ctx.db->Lease();
  auto source = DiscoveryStore(session.sql()).FindSource(id);
  if (!source) throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " not found");
  return ResourceResponse(200, discovery::SourceToJson(*source), source->version, "");
}

Response PatchDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  json::value patch = ParseJsonBody(request);
  model::DbSession session = ctx.db->Lease();
  discovery::Source source =
      DiscoveryStore(session.sql()).PatchSource(id, patch, ParseIfMatch(request));
  if (ctx.discovery != nullptr) ctx.discovery->Wake();
  return ResourceResponse(200, discovery::SourceToJson(source), source.version, "");
}

Response DeleteDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  model::DbSession session = ctx.db->Lease();
  DiscoveryStore(session.sql()).DeleteSource(id);
  Response response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

Response GetStaleCis(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  model::DbSession session = ctx.db->Lease();
  DiscoveryStore store(session.sql());
  auto source = store.FindSource(id);
  if (!source) throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " not found");
  json::array items;
  for (const auto& s : store.StaleCis(*source)) {
    items.push_back(json::object{{"ci", s.ci},
                                 {"name", s.name},
                                 {"last_run", s.last_run},
                                 {"last_seen_at", model::FormatTimestamp(s.last_seen_at)},
                                 {"missed_runs", s.missed_runs}});
  }
  json::object body{{"items", std::move(items)}};
  body["stale_after_runs"] = source->config.stale_after_runs
                                 ? json::value(*source->config.stale_after_runs)
                                 : json::value(nullptr);
  return JsonResponse(200, body);
}

// --- runs ---

Response CreateDiscoveryRun(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"source", "dry_run"});
  std::optional<std::int64_t> source = OptionalIdParam(request, "source");
  if (!source) {
    throw Error(ErrorCode::kInvalidArgument,
                "source is required: POST /api/v1/discovery/runs?source=<id>");
  }
  const bool dry_run = ParseBoolParam(request, "dry_run").value_or(false);
  model::DbSession session = ctx.db->Lease();
  discovery::Run run =
      DiscoveryStore(session.sql()).EnqueueRun(*source, dry_run, request.MediaType(), request.body);
  if (ctx.discovery != nullptr) ctx.discovery->Wake();
  Response response = JsonResponse(202, discovery::RunToJson(run));
  response.headers.emplace_back("Location", "/api/v1/discovery/runs/" + std::to_string(run.id));
  return response;
}

Response ListDiscoveryRuns(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"source", "limit", "cursor"});
  const int limit = ParseLimit(request);
  model::DbSession session = ctx.db->Lease();
  return PageResponse(
      DiscoveryStore(session.sql())
          .ListRuns(OptionalIdParam(request, "source"), DecodeCursor(request), limit + 1),
      static_cast<std::size_t>(limit),
      [](const discovery::Run& run) { return discovery::RunToJson(run); });
}

Response GetDiscoveryRun(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"outcome", "limit", "cursor"});
  const std::int64_t id = ParseId(params.at("id"), "run id");
  const std::optional<std::string> outcome =
      OneOfParam(request, "outcome", {"matched", "created", "unmatched", "ambiguous", "rejected"});
  const int limit = ParseLimit(request);
  model::DbSession session = ctx.db->Lease();
  // The run and its decisions as of one instant: never "running" with decisions showing.
  model::Transaction read(session.sql());
  read.ReadOnlySnapshot();
  DiscoveryStore store(session.sql());
  auto run = store.FindRun(id);
  if (!run) throw Error(ErrorCode::kNotFound, "run " + std::to_string(id) + " not found");
  discovery::DecisionPage page = store.Decisions(id, outcome, DecodeCursor(request), limit);
  read.Commit();
  json::object body = discovery::RunToJson(*run);
  body["decisions"] = std::move(page.items);
  body["next_cursor"] =
      page.next_after ? json::value(EncodeCursor(*page.next_after)) : json::value(nullptr);
  return JsonResponse(200, body);
}

// --- drift ---

Response ListDrift(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "ci", "authorized", "attribute", "run", "limit", "cursor"});
  discovery::FindingFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = OneOfParam(request, "state", {"open", "resolved", "accepted", "ignored"});
  filter.ci = OptionalIdParam(request, "ci");
  filter.run = OptionalIdParam(request, "run");
  filter.authorized = ParseBoolParam(request, "authorized");
  if (auto attribute = request.Query("attribute"); attribute && !attribute->empty()) {
    filter.attribute = *attribute;
  }
  model::DbSession session = ctx.db->Lease();
  return PageResponse(DiscoveryStore(session.sql()).ListFindings(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const discovery::Finding& f) { return discovery::FindingToJson(f); });
}

Response GetDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  model::DbSession session = ctx.db->Lease();
  auto finding = DiscoveryStore(session.sql()).FindFinding(id);
  if (!finding) throw Error(ErrorCode::kNotFound, "finding " + std::to_string(id) + " not found");
  return ResourceResponse(200, discovery::FindingToJson(*finding), finding->version, "");
}

Response AcceptDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  model::DbSession session = ctx.db->Lease();
  // Accepting writes one attribute: the graph is not affected.
  auto finding = DiscoveryStore(session.sql()).AcceptFinding(id, ParseIfMatch(request), Writer());
  return ResourceResponse(200, discovery::FindingToJson(finding), finding.version, "");
}

Response IgnoreDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  model::DbSession session = ctx.db->Lease();
  auto finding = DiscoveryStore(session.sql()).IgnoreFinding(id, ParseIfMatch(request), Writer());
  return ResourceResponse(200, discovery::FindingToJson(finding), finding.version, "");
}

}  // namespace cmdb::server::handlers
