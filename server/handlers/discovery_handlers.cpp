#include <boost/json.hpp>

#include "discovery/decision_log.hpp"
#include "jobs/discovery_executor.hpp"
#include "server/handlers/handlers.hpp"
#include "store/db_pool.hpp"
#include "store/discovery_run_repository.hpp"
#include "store/discovery_source_repository.hpp"
#include "store/drift_repository.hpp"
#include "store/transaction.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

// --- sources ---

Response CreateDiscoverySource(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  const model::DiscoverySource draft = model::DiscoverySourceFromJson(ParseJsonBody(request));
  store::DbSession session = ctx.db->Lease();
  const model::DiscoverySource source = store::DiscoverySourceRepository(session).Create(draft);
  if (source.interval_seconds && ctx.discovery != nullptr) ctx.discovery->Wake();
  return ResourceResponse(201, model::DiscoverySourceToJson(source), source.version,
                          "/api/v1/discovery/sources/" + std::to_string(source.id));
}

Response ListDiscoverySources(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  json::array items;
  for (const auto& s : store::DiscoverySourceRepository(session).List()) {
    items.push_back(model::DiscoverySourceToJson(s));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response GetDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  store::DbSession session = ctx.db->Lease();
  auto source = store::DiscoverySourceRepository(session).Find(id);
  if (!source)
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " does not exist");
  return ResourceResponse(200, model::DiscoverySourceToJson(*source), source->version, "");
}

Response PatchDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  json::value patch = ParseJsonBody(request);
  store::DbSession session = ctx.db->Lease();
  const model::DiscoverySource source =
      store::DiscoverySourceRepository(session).Patch(id, patch, ParseIfMatch(request));
  if (ctx.discovery != nullptr) ctx.discovery->Wake();
  return ResourceResponse(200, model::DiscoverySourceToJson(source), source.version, "");
}

Response DeleteDiscoverySource(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  store::DbSession session = ctx.db->Lease();
  store::DiscoverySourceRepository(session).Delete(id);
  return NoContent();
}

Response GetStaleCis(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "source id");
  store::DbSession session = ctx.db->Lease();
  store::DiscoverySourceRepository sources(session);
  auto source = sources.Find(id);
  if (!source)
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " does not exist");
  json::array items;
  for (const auto& s : sources.StaleCis(*source)) items.push_back(model::StaleCiToJson(s));
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
  const model::Principal& caller = Caller(request);
  if (!caller.Allows(model::Role::kAssetAdmin) && caller.source_id != source) {
    // Allowed here as a discovery_agent: only to the source the agent is bound to.
    throw Error(ErrorCode::kPermissionDenied,
                "discovery_agent '" + caller.user + "' posts runs only to source " +
                    (caller.source_id ? std::to_string(*caller.source_id) : std::string("(none)")) +
                    ", not " + std::to_string(*source));
  }
  store::DbSession session = ctx.db->Lease();
  const model::DiscoveryRun run = store::DiscoveryRunRepository(session).Enqueue(
      *source, dry_run, request.MediaType(), request.body);
  if (ctx.discovery != nullptr) ctx.discovery->Wake();
  Response response = JsonResponse(202, model::DiscoveryRunToJson(run));
  response.headers.emplace_back("Location", "/api/v1/discovery/runs/" + std::to_string(run.id));
  return response;
}

Response ListDiscoveryRuns(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"source", "limit", "cursor"});
  const int limit = ParseLimit(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::DiscoveryRunRepository(session).List(
                          OptionalIdParam(request, "source"), DecodeCursor(request), limit + 1),
                      static_cast<std::size_t>(limit), [](const model::DiscoveryRun& run) {
                        return model::DiscoveryRunToJson(run);
                      });
}

Response GetDiscoveryRun(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"outcome", "limit", "cursor"});
  const std::int64_t id = ParseId(params.at("id"), "run id");
  const std::optional<std::string> outcome =
      OneOfParam(request, "outcome", {"matched", "created", "unmatched", "ambiguous", "rejected"});
  const int limit = ParseLimit(request);
  store::DbSession session = ctx.db->Lease();
  // The run and its decisions as of one instant: never "running" with decisions showing.
  store::Transaction read(session);
  read.ReadOnlySnapshot();
  store::DiscoveryRunRepository runs(session);
  auto run = runs.Find(id);
  if (!run) throw Error(ErrorCode::kNotFound, "run " + std::to_string(id) + " does not exist");
  model::DecisionPage page = discovery::PageDecisions(
      [&](std::int64_t after_seq) { return runs.DecisionBlocks(id, after_seq, outcome, 4); },
      outcome, DecodeCursor(request), limit);
  read.Commit();
  json::object body = model::DiscoveryRunToJson(*run);
  body["decisions"] = std::move(page.items);
  body["next_cursor"] =
      page.next_after ? json::value(EncodeCursor(*page.next_after)) : json::value(nullptr);
  return JsonResponse(200, body);
}

// --- drift ---

Response ListDrift(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "ci", "authorized", "attribute", "run", "limit", "cursor"});
  store::FindingFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = EnumParam(request, "state", model::kFindingStateNames);
  filter.ci = OptionalIdParam(request, "ci");
  filter.run = OptionalIdParam(request, "run");
  filter.authorized = ParseBoolParam(request, "authorized");
  if (auto attribute = request.Query("attribute"); attribute && !attribute->empty()) {
    filter.attribute = *attribute;
  }
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::DriftRepository(session).List(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::DriftFinding& f) { return model::DriftFindingToJson(f); });
}

Response GetDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  store::DbSession session = ctx.db->Lease();
  auto finding = store::DriftRepository(session).Find(id);
  if (!finding) {
    throw Error(ErrorCode::kNotFound, "finding " + std::to_string(id) + " does not exist");
  }
  return ResourceResponse(200, model::DriftFindingToJson(*finding), finding->version, "");
}

Response AcceptDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  store::DbSession session = ctx.db->Lease();
  // Accepting writes one attribute: the graph is not affected.
  auto finding = store::DriftRepository(session).Accept(id, ParseIfMatch(request), Writer(request));
  return ResourceResponse(200, model::DriftFindingToJson(finding), finding.version, "");
}

Response IgnoreDrift(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "finding id");
  store::DbSession session = ctx.db->Lease();
  auto finding = store::DriftRepository(session).Ignore(id, ParseIfMatch(request), Writer(request));
  return ResourceResponse(200, model::DriftFindingToJson(finding), finding.version, "");
}

}  // namespace cmdb::server::handlers
