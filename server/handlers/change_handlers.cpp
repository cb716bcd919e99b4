#include <boost/json.hpp>

#include "reports/change_assessment.hpp"
#include "reports/impact_picture.hpp"
#include "server/handlers/handlers.hpp"
#include "store/change_repository.hpp"
#include "store/db_pool.hpp"
#include "store/graph_cache.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

Response ChangeResponse(int status, const model::Change& change) {
  return ResourceResponse(status, model::ChangeToJson(change), change.version,
                          "/api/v1/changes/" + std::to_string(change.id));
}

model::Change FindChange(store::ChangeRepository& repo, const PathParams& params) {
  const std::int64_t id = ParseId(params.at("id"), "change id");
  std::optional<model::Change> change = repo.Find(id);
  if (!change)
    throw Error(ErrorCode::kNotFound, "change " + std::to_string(id) + " does not exist");
  return *change;
}

// A transition's body is empty or {"reason": "..."}.
std::string ReasonOf(const Request& request) {
  if (request.body.empty()) return {};
  json::value body = ParseJsonBody(request);
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, R"(the body is {"reason": "..."})");
  for (const auto& [key, value] : *o) {
    if (key != "reason") {
      throw Error(ErrorCode::kValidationFailed, "the transition is invalid",
                  {{std::string(key), "unknown field"}});
    }
    if (!value.is_string() || value.get_string().size() > 10000) {
      throw Error(ErrorCode::kValidationFailed, "the transition is invalid",
                  {{"reason", "must be a string of at most 10000 characters"}});
    }
  }
  const json::value* reason = o->if_contains("reason");
  return reason != nullptr ? std::string(reason->get_string()) : std::string();
}

Response Transition(const Request& request, const PathParams& params, AppContext& ctx,
                    std::string_view action) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "change id");
  const std::string reason = ReasonOf(request);
  // Only submit reads the graph (to freeze the impact); the others must not wait for a reload.
  std::shared_ptr<const graph::DependencyGraph> graph =
      action == "submit" ? ctx.graph->Current() : nullptr;
  store::DbSession session = ctx.db->Lease();
  store::AssessChange assess;
  if (graph) {
    assess = [&](const model::Change& change) {
      store::FrozenAssessment frozen = reports::AssessChange(session, change, *graph);
      frozen.assessment["collisions"] =
          reports::ChangeCollisions(session, change, frozen.impact_set);
      return frozen;
    };
  }
  return ChangeResponse(
      200, store::ChangeRepository(session).Transition(id, action, reason, ParseIfMatch(request),
                                                       assess, Writer(request)));
}

}  // namespace

Response CreateChange(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::Change draft = model::ChangeFromJson(body, errors);
  store::DbSession session = ctx.db->Lease();
  store::ChangeRepository repo(session);
  repo.Validate(draft, errors);
  errors.ThrowIfAny("the change is invalid");
  return ChangeResponse(201, repo.Create(draft, Writer(request)));
}

Response ListChanges(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "ci", "limit", "cursor"});
  store::ChangeFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.state = EnumParam(request, "state", model::kChangeStateNames);
  filter.ci = OptionalIdParam(request, "ci");
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::ChangeRepository(session).List(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::Change& c) { return model::ChangeToJson(c); });
}

Response GetChange(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  store::ChangeRepository repo(session);
  return ChangeResponse(200, FindChange(repo, params));
}

Response GetChangeEvents(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  store::ChangeRepository repo(session);
  model::Change change = FindChange(repo, params);
  json::array items;
  for (const model::ChangeEvent& e : repo.Events(change.id)) {
    items.push_back(model::ChangeEventToJson(e));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response SubmitChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "submit");
}
Response ApproveChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "approve");
}
Response RejectChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "reject");
}
Response StartChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "start");
}
Response CompleteChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "complete");
}
Response FailChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "fail");
}
Response CancelChange(const Request& r, const PathParams& p, AppContext& c) {
  return Transition(r, p, c, "cancel");
}

Response GetChangeImpact(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  std::shared_ptr<const graph::DependencyGraph> graph = ctx.graph->Current();
  store::DbSession session = ctx.db->Lease();
  store::ChangeRepository repo(session);
  const model::Change change = FindChange(repo, params);
  json::object body;
  std::vector<model::CiId> impact_set;
  if (change.assessment.is_object()) {
    // What the reviewer saw at submit, unchanged by later graph edits.
    body = change.assessment.as_object();
    body["frozen"] = true;
    if (json::value* at_submit = body.if_contains("collisions")) {
      body["collisions_at_submit"] = std::move(*at_submit);
    }
    impact_set = repo.FrozenImpactSet(change.id);
  } else {
    store::FrozenAssessment now = reports::AssessChange(session, change, *graph);
    body = std::move(now.assessment);
    body["frozen"] = false;
    impact_set = std::move(now.impact_set);
  }
  body["change"] = change.id;
  body["state"] = json::value_from(change.state);
  // Collisions are always current: changes submitted after this one collide with it too.
  body["collisions"] = reports::ChangeCollisions(session, change, impact_set);
  return JsonResponse(200, body);
}

Response GetChangeImpactGraph(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"format"});
  std::shared_ptr<const graph::DependencyGraph> graph = ctx.graph->Current();
  model::Change change;
  {
    store::DbSession session = ctx.db->Lease();
    store::ChangeRepository repo(session);
    change = FindChange(repo, params);
  }
  graph::ImpactResult result;
  try {
    result = graph->Impact(reports::ChangeImpactQuery(change, 10000));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kConflict, std::string(e.what()) + " any more");
  }
  reports::ImpactPicture picture = reports::BuildImpactPicture(result, *graph, change.ci_ids.at(0));
  picture.title = "Impact of change " + std::to_string(change.id) + ": " + change.title;
  // The change's CIs are drawn as roots.
  for (auto& node : picture.nodes) {
    if (std::find(change.ci_ids.begin(), change.ci_ids.end(), node.id) != change.ci_ids.end()) {
      node.root = true;
    }
  }
  return RenderPicture(request, picture, ctx);
}

}  // namespace cmdb::server::handlers
