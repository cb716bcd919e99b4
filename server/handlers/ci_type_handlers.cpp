#include <boost/json.hpp>

#include "server/handlers/handlers.hpp"
#include "store/ci_type_repository.hpp"
#include "store/db_pool.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

namespace {

std::string TypeName(const PathParams& params) {
  const std::string& name = params.at("name");
  if (!model::IsValidIdentifier(name)) {
    throw Error(ErrorCode::kNotFound, "there is no CI type named '" + name.substr(0, 64) + "'");
  }
  return name;
}

Response TypeResponse(int status, const model::CiType& type) {
  Response response = JsonResponse(status, model::CiTypeToJson(type));
  response.headers.emplace_back("ETag", ETag(type.version));
  if (status == 201) response.headers.emplace_back("Location", "/api/v1/ci-types/" + type.name);
  return response;
}

}  // namespace

Response ListCiTypes(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  boost::json::array items;
  for (const auto& type : store::CiTypeRepository(session).List()) {
    items.emplace_back(model::CiTypeToJson(type));
  }
  return JsonResponse(200, {{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response CreateCiType(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::CiType type = model::ParseCiType(ParseJsonBody(request));
  store::DbSession session = ctx.db->Lease();
  return TypeResponse(201, store::CiTypeRepository(session).Create(type));
}

Response GetCiType(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  std::string name = TypeName(params);
  store::DbSession session = ctx.db->Lease();
  std::optional<model::CiType> type = store::CiTypeRepository(session).Find(name);
  if (!type) throw Error(ErrorCode::kNotFound, "there is no CI type named '" + name + "'");
  return TypeResponse(200, *type);
}

Response PutCiType(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  std::string name = TypeName(params);
  model::CiType type = model::ParseCiType(ParseJsonBody(request), name);
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  return TypeResponse(200, store::CiTypeRepository(session).Replace(type, if_match));
}

Response DeleteCiType(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  std::string name = TypeName(params);
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  store::CiTypeRepository(session).Delete(name, if_match);
  return NoContent();
}

}  // namespace cmdb::server::handlers
