#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include <boost/json.hpp>

#include "reports/graphviz_renderer.hpp"
#include "reports/impact_picture.hpp"
#include "server/handlers/handlers.hpp"
#include "server/json_writer.hpp"
#include "store/db_pool.hpp"
#include "store/drift_repository.hpp"
#include "store/graph_cache.hpp"
#include "store/historical_graphs.hpp"
#include "store/incident_repository.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

void GraphChanged(AppContext& ctx) {
  if (ctx.graph != nullptr) ctx.graph->Invalidate();
}

void GraphChanged(AppContext& ctx, graph::GraphChanges changes) {
  if (ctx.graph == nullptr) return;
  try {
    ctx.graph->Apply(std::move(changes));
  } catch (const std::exception&) {
    ctx.graph->Invalidate();  // the next read loads it instead
  }
}

namespace {

struct ComputedImpact {
  graph::ImpactQuery query;
  std::string direction;
  std::optional<model::Timestamp> as_of;
  std::shared_ptr<const graph::DependencyGraph> graph;
  graph::ImpactResult result;
};

// Parses the impact parameters shared by the JSON and the picture endpoints and runs the
// traversal, over the in-memory graph or, with as_of, over the graph rebuilt from history.
ComputedImpact ComputeImpact(const Request& request, const PathParams& params, AppContext& ctx) {
  ComputedImpact c;
  graph::ImpactQuery& query = c.query;
  query.root = ParseId(params.at("id"), "CI id");
  c.direction = request.Query("direction").value_or("down");
  if (c.direction == "down") {
    query.direction = graph::ImpactDirection::kDown;
  } else if (c.direction == "up") {
    query.direction = graph::ImpactDirection::kUp;
  } else {
    throw Error(ErrorCode::kInvalidArgument,
                "direction must be down (what fails with this CI) or up (what it needs)");
  }
  query.max_depth = ParseIntParam(request, "depth", -1, 0, 1000);
  query.max_nodes = static_cast<std::size_t>(ParseIntParam(request, "max_nodes", 10000, 1, 100000));
  if (std::optional<std::string> types = request.Query("relation_types")) {
    std::size_t start = 0;
    while (start <= types->size()) {
      std::size_t end = std::min(types->find(',', start), types->size());
      if (end > start) query.relation_types.push_back(types->substr(start, end - start));
      start = end + 1;
    }
  }
  c.as_of = ParseAsOf(request);
  if (c.as_of) {
    // The past is read from history (or a graph kept from an earlier request), not from the
    // in-memory graph.
    std::optional<store::DbSession> session;  // leased only to build
    c.graph = ctx.history->At(*c.as_of, [&]() -> store::DbSession& {
      if (!session) session.emplace(ctx.db->Lease());
      return *session;
    });
  } else {
    c.graph = ctx.graph->Current();
  }
  if (!c.graph->Find(query.root)) {
    throw Error(ErrorCode::kNotFound,
                "CI " + std::to_string(query.root) + " does not exist" +
                    (c.as_of ? " at " + model::FormatTimestamp(*c.as_of) : ""));
  }
  c.result = c.graph->Impact(query);
  return c;
}

}  // namespace

Response GetCiImpact(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"direction", "depth", "relation_types", "max_nodes", "as_of"});
  ComputedImpact c = ComputeImpact(request, params, ctx);
  const graph::ImpactQuery& query = c.query;
  const std::string& direction = c.direction;
  const std::optional<model::Timestamp>& as_of = c.as_of;
  const std::shared_ptr<const graph::DependencyGraph>& graph = c.graph;
  const graph::ImpactResult& result = c.result;
  // Written straight to text: a 1,000-CI impact is some 10,000 JSON values, and building them
  // as a tree and then serialising it took several times longer than the traversal.
  JsonWriter w(256 + result.nodes.size() * 120 + result.edges.size() * 64);
  auto node_fields = [&w](const graph::NodeView& node) {
    w.Field("id", node.id)
        .Field("name", node.name)
        .Field("type", node.type)
        .Field("status", node.status);
  };
  w.BeginObject().Key("root").BeginObject();
  node_fields(*graph->Find(query.root));
  w.EndObject().Field("direction", direction).Key("nodes").BeginArray();
  std::vector<model::RelationId> path;
  const std::size_t count = result.nodes.size();
  for (std::size_t i = 0; i < count; ++i) {
    if (i + 8 < count) result.nodes.Prefetch(i + 8);  // CIs spread over the whole graph
    w.BeginObject();
    node_fields(result.nodes.View(i));
    w.Field("distance", result.nodes.Distance(i)).Key("via").BeginArray();
    result.nodes.ViaPath(i, path);
    for (model::RelationId id : path) w.Int(id);
    w.EndArray().EndObject();
  }
  w.EndArray().Key("edges").BeginArray();
  for (const auto& e : result.edges) {
    w.BeginObject()
        .Field("id", e.id)
        .Field("type", e.type)
        .Field("from", e.from)
        .Field("to", e.to)
        .EndObject();
  }
  w.EndArray().Key("services").BeginArray();
  for (std::size_t at : result.services) {
    if (result.nodes.Distance(at) == 0) continue;  // the root (or a CI failing with it)
    const graph::NodeView v = result.nodes.View(at);
    w.BeginObject()
        .Field("id", v.id)
        .Field("name", v.name)
        .Field("distance", result.nodes.Distance(at))
        .EndObject();
  }
  w.EndArray().Key("absorbed").BeginArray();
  for (const auto& a : result.absorbed) {
    w.BeginObject();
    node_fields(*graph->Find(a.id));
    w.Field("providers", a.providers)
        .Field("failed", a.failed)
        .Field("healthy", a.healthy)
        .Field("min_healthy", a.min_healthy)
        .Field("reason", std::to_string(a.healthy) + " of " + std::to_string(a.providers) +
                             " providers stay healthy; " + std::to_string(a.min_healthy) +
                             " are needed")
        .EndObject();
  }
  w.EndArray().Field("truncated", result.truncated).Key("as_of");
  if (as_of) {
    w.String(model::FormatTimestamp(*as_of));
  } else {
    w.Null();
  }
  w.EndObject();
  Response response;
  response.body = std::move(w.str());
  return response;
}

}  // namespace cmdb::server::handlers

namespace cmdb::server::handlers {

Response RenderPicture(const Request& request, reports::ImpactPicture& picture, AppContext& ctx) {
  const std::string format = request.Query("format").value_or("svg");
  reports::RenderFormat render_format = reports::RenderFormat::kSvg;
  Response response;
  response.content_type = "image/svg+xml";
  if (format == "png") {
    render_format = reports::RenderFormat::kPng;
    response.content_type = "image/png";
  } else if (format == "dot") {
    render_format = reports::RenderFormat::kDot;
    response.content_type = "text/vnd.graphviz; charset=utf-8";
  } else if (format != "svg") {
    throw Error(ErrorCode::kInvalidArgument, "format must be svg, png or dot");
  }
  MarkDriftAndIncidents(picture, ctx);
  response.body = ctx.renderer->Render(picture, render_format);
  return response;
}

Response GetCiImpactGraph(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request,
                   {"direction", "depth", "relation_types", "max_nodes", "as_of", "format"});
  return CiImpactGraph(request, params, ctx, "");
}

Response CiImpactGraph(const Request& request, const PathParams& params, AppContext& ctx,
                       const std::string& node_link) {
  ComputedImpact c = ComputeImpact(request, params, ctx);
  reports::ImpactPicture picture = reports::BuildImpactPicture(c.result, *c.graph, c.query.root);
  picture.node_link = node_link;
  return RenderPicture(request, picture, ctx);
}

}  // namespace cmdb::server::handlers

namespace cmdb::server::handlers {

void MarkDriftAndIncidents(reports::ImpactPicture& picture, AppContext& ctx) {
  std::vector<model::CiId> ids;
  for (const auto& node : picture.nodes) {
    if (node.id > 0) ids.push_back(node.id);
  }
  if (ids.empty()) return;
  store::DbSession session = ctx.db->Lease();
  const std::set<model::CiId> drifted = store::DriftRepository(session).CisWithOpenDrift(ids);
  const std::set<model::CiId> incident =
      store::IncidentRepository(session).CisWithOpenIncidents(ids);
  for (auto& node : picture.nodes) {
    node.drifted = drifted.contains(node.id);
    node.incident = incident.contains(node.id);
  }
}

}  // namespace cmdb::server::handlers
