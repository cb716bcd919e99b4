#include <boost/json.hpp>

#include "server/handlers/handlers.hpp"
#include "store/db_pool.hpp"
#include "store/relation_repository.hpp"
#include "store/relation_type_repository.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

Response ListRelationTypes(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  boost::json::array items;
  for (const auto& t : store::RelationTypeRepository(session).List()) {
    items.emplace_back(model::RelationTypeToJson(t));
  }
  return JsonResponse(200, {{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response CreateRelationType(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::RelationType type = model::ParseRelationType(ParseJsonBody(request));
  store::DbSession session = ctx.db->Lease();
  model::RelationType created = store::RelationTypeRepository(session).Create(type);
  GraphChanged(ctx);
  Response response = JsonResponse(201, model::RelationTypeToJson(created));
  response.headers.emplace_back("Location", "/api/v1/relation-types/" + type.name);
  return response;
}

Response CreateRelation(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  boost::json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::Relation draft = model::RelationFromJson(body, errors);
  errors.ThrowIfAny("the relation is invalid");
  store::DbSession session = ctx.db->Lease();
  model::Relation created = store::RelationRepository(session).Create(draft, Writer(request));
  graph::GraphChanges written;
  written.relation_ids = {created.id};
  written.relations = {{created.id, created.from, created.to, created.type}};
  GraphChanged(ctx, std::move(written));
  return ResourceResponse(201, model::RelationToJson(created), created.version,
                          "/api/v1/relations/" + std::to_string(created.id));
}

Response ListRelations(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"ci", "type", "limit", "cursor"});
  store::RelationFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.ci = OptionalIdParam(request, "ci");
  if (auto type = request.Query("type"); type && !type->empty()) filter.type = *type;
  store::DbSession session = ctx.db->Lease();
  store::RelationPage page = store::RelationRepository(session).List(filter);
  boost::json::array items;
  for (const auto& r : page.items) items.emplace_back(model::RelationToJson(r));
  boost::json::object body{{"items", std::move(items)}};
  body["next_cursor"] = page.next_after ? boost::json::value(EncodeCursor(*page.next_after))
                                        : boost::json::value(nullptr);
  return JsonResponse(200, body);
}

Response GetRelation(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::RelationId id = ParseId(params.at("id"), "relation id");
  store::DbSession session = ctx.db->Lease();
  std::optional<model::Relation> r = store::RelationRepository(session).FindById(id);
  if (!r) throw Error(ErrorCode::kNotFound, "relation " + std::to_string(id) + " does not exist");
  Response response = JsonResponse(200, model::RelationToJson(*r));
  response.headers.emplace_back("ETag", ETag(r->version));
  return response;
}

Response DeleteRelation(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::RelationId id = ParseId(params.at("id"), "relation id");
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  store::RelationRepository(session).Delete(id, if_match, Writer(request));
  graph::GraphChanges deleted;
  deleted.relation_ids = {id};  // no row: gone
  GraphChanged(ctx, std::move(deleted));
  return NoContent();
}

Response GetRelationHistory(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"limit", "cursor"});
  model::RelationId id = ParseId(params.at("id"), "relation id");
  const int limit = ParseLimit(request);
  const std::int64_t before = DecodeCursor(request);
  store::DbSession session = ctx.db->Lease();
  return HistoryPage(store::RelationRepository(session).History(
                         id, limit + 1, before > 0 ? std::optional(before) : std::nullopt),
                     limit);
}

}  // namespace cmdb::server::handlers
