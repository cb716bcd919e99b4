#include <boost/json.hpp>

#include "model/ci_type_repository.hpp"
#include "model/db_pool.hpp"
#include "model/relation_repository.hpp"
#include "server/handlers/handlers.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

Response ListRelationTypes(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::DbSession session = ctx.db->Lease();
  boost::json::array items;
  for (const auto& t : model::CiTypeRepository(session.sql()).ListRelationTypes()) {
    items.emplace_back(model::RelationTypeToJson(t));
  }
  return JsonResponse(200, {{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response CreateRelationType(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::RelationType type = model::ParseRelationType(ParseJsonBody(request));
  model::DbSession session = ctx.db->Lease();
  model::RelationType created = model::CiTypeRepository(session.sql()).CreateRelationType(type);
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
  model::DbSession session = ctx.db->Lease();
  model::Relation created = model::RelationRepository(session.sql()).Create(draft, Writer());
  GraphChanged(ctx);
  return ResourceResponse(201, model::RelationToJson(created), created.version,
                          "/api/v1/relations/" + std::to_string(created.id));
}

Response ListRelations(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"ci", "type", "limit", "cursor"});
  model::RelationFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.ci = OptionalIdParam(request, "ci");
  if (auto type = request.Query("type"); type && !type->empty()) filter.type = *type;
  model::DbSession session = ctx.db->Lease();
  model::RelationPage page = model::RelationRepository(session.sql()).List(filter);
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
  model::DbSession session = ctx.db->Lease();
  std::optional<model::Relation> r = model::RelationRepository(session.sql()).FindById(id);
  if (!r) throw Error(ErrorCode::kNotFound, "relation " + std::to_string(id) + " does not exist");
  Response response = JsonResponse(200, model::RelationToJson(*r));
  response.headers.emplace_back("ETag", ETag(r->version));
  return response;
}

Response DeleteRelation(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::RelationId id = ParseId(params.at("id"), "relation id");
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  model::DbSession session = ctx.db->Lease();
  model::RelationRepository(session.sql()).Delete(id, if_match, Writer());
  GraphChanged(ctx);
  Response response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

Response GetRelationHistory(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"limit"});
  model::RelationId id = ParseId(params.at("id"), "relation id");
  int limit = ParseLimit(request);
  model::DbSession session = ctx.db->Lease();
  boost::json::array items;
  for (const auto& v : model::RelationRepository(session.sql()).History(id, limit)) {
    items.emplace_back(boost::json::object{{"version", v.version},
                                           {"changed_at", model::FormatTimestamp(v.changed_at)},
                                           {"changed_by", v.changed_by},
                                           {"source", v.source},
                                           {"operation", v.deleted ? "delete" : "create"},
                                           {"diff", v.diff}});
  }
  return JsonResponse(200, {{"items", std::move(items)}, {"next_cursor", nullptr}});
}

}  // namespace cmdb::server::handlers
