#include <boost/json.hpp>

#include "model/error.hpp"
#include "server/handlers/handlers.hpp"
#include "server/metrics.hpp"
#include "store/db_pool.hpp"

namespace cmdb::server::handlers {

Response GetHealth(const Request&, const PathParams&, AppContext&) {
  return JsonResponse(200, {{"status", "ok"}});
}

Response GetReady(const Request& request, const PathParams&, AppContext& ctx) {
  try {
    store::DbSession session = ctx.db->Lease(std::chrono::seconds{2});
    store::Ping(session);
  } catch (const model::Error& e) {
    throw model::Error(model::ErrorCode::kUnavailable,
                       std::string("the database is not reachable: ") + e.what());
  }
  (void)request;
  return JsonResponse(200, {{"status", "ready"}, {"database", "ok"}});
}

Response GetMetrics(const Request&, const PathParams&, AppContext& ctx) {
  Response response;
  response.content_type = "text/plain; version=0.0.4";
  response.body = ctx.metrics->Render();
  return response;
}

Response GetOpenApi(const Request&, const PathParams&, AppContext& ctx) {
  Response response;
  response.body = std::string(ctx.openapi_json);
  return response;
}

}  // namespace cmdb::server::handlers
