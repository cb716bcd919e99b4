#include <boost/json.hpp>

#include "model/error.hpp"
#include "model/timestamp.hpp"
#include "server/handlers/handlers.hpp"
#include "server/metrics.hpp"
#include "store/database_supervisor.hpp"
#include "store/db_pool.hpp"

namespace cmdb::server::handlers {

Response GetHealth(const Request&, const PathParams&, AppContext&) {
  return JsonResponse(200, {{"status", "ok"}});
}

bool StartHealth(const Request& request, const PathParams& params, AppContext& ctx, Answer answer) {
  answer([&] { return GetHealth(request, params, ctx); });
  return true;
}

Response GetReady(const Request&, const PathParams&, AppContext& ctx) {
  boost::json::object body{{"status", "ready"}, {"database", "ok"}};
  if (ctx.database != nullptr) {
    const store::DatabaseStatus status = ctx.database->Status();
    if (status.health != store::DatabaseHealth::kUp) {
      std::string detail = std::string("the database is ") + store::HealthName(status.health);
      if (status.supervised) detail += " (the embedded PostgreSQL is being brought back)";
      if (!status.last_error.empty()) detail += ": " + status.last_error;
      throw model::Error(model::ErrorCode::kUnavailable, detail, std::chrono::seconds{5});
    }
    body["supervised"] = status.supervised;
    body["outages"] = status.outages;
    body["restarts"] = status.restarts;
    body["failed_restarts"] = status.failed_restarts;
    if (status.last_restart.micros != 0) {
      body["last_restart"] = model::FormatTimestamp(status.last_restart);
    }
  }
  try {
    store::DbSession session = ctx.db->Lease(std::chrono::seconds{2});
    store::Ping(session);
  } catch (const model::Error& e) {
    throw model::Error(model::ErrorCode::kUnavailable,
                       std::string("the database is not reachable: ") + e.what(),
                       std::chrono::seconds{5});
  }
  return JsonResponse(200, std::move(body));
}

Response GetMetrics(const Request&, const PathParams&, AppContext& ctx) {
  Response response;
  response.content_type = "text/plain; version=0.0.4";
  response.body = ctx.metrics->Render();
  return response;
}

bool StartMetrics(const Request& request, const PathParams& params, AppContext& ctx,
                  Answer answer) {
  answer([&] { return GetMetrics(request, params, ctx); });
  return true;
}

Response GetOpenApi(const Request&, const PathParams&, AppContext& ctx) {
  Response response;
  response.body = std::string(ctx.openapi_json);
  return response;
}

}  // namespace cmdb::server::handlers
