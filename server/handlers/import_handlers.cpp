#include <boost/json.hpp>

#include "model/db_pool.hpp"
#include "model/importer.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

namespace {

boost::json::object CountsJson(const model::ImportCounts& c) {
  return {{"created", c.created},
          {"updated", c.updated},
          {"unchanged", c.unchanged},
          {"rejected", c.rejected}};
}

}  // namespace

Response PostImport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"mode", "type"});
  model::ImportOptions options;
  if (auto mode = request.Query("mode")) {
    if (*mode != "atomic" && *mode != "partial") {
      throw Error(ErrorCode::kInvalidArgument, "mode must be atomic or partial");
    }
    options.atomic = *mode == "atomic";
  }
  std::string media = request.MediaType();
  model::ImportResult result;
  if (media == "text/csv") {
    std::optional<std::string> type = request.Query("type");
    if (!type || type->empty()) {
      throw Error(ErrorCode::kInvalidArgument, "a CSV import names its CI type: ?type=server");
    }
    if (request.body.empty()) throw Error(ErrorCode::kInvalidArgument, "the CSV body is empty");
    model::DbSession session = ctx.db->Lease();
    result = model::ImportCsv(session.sql(), *type, request.body, options);
  } else {
    if (request.Query("type")) {
      throw Error(ErrorCode::kInvalidArgument,
                  "type applies to CSV imports; a JSON import names each CI's type");
    }
    if (media != "application/json" && !media.empty() &&
        !(media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0)) {
      throw Error(ErrorCode::kUnsupportedMediaType,
                  "import takes application/json or text/csv, not " + media);
    }
    boost::json::value document = ParseJsonBody(request);
    model::DbSession session = ctx.db->Lease();
    result = model::ImportDocument(session.sql(), document, options);
  }
  GraphChanged(ctx);
  boost::json::object body = CountsJson(result.cis);
  body["relations"] = CountsJson(result.relations);
  boost::json::array errors;
  for (const auto& e : result.errors) {
    errors.push_back(boost::json::object{{"row", e.row},
                                         {"field", e.row + (e.field.empty() ? "" : "." + e.field)},
                                         {"message", e.message}});
  }
  body["errors"] = std::move(errors);
  boost::json::array ids;
  for (auto id : result.ci_ids) {
    ids.emplace_back(id == 0 ? boost::json::value(nullptr) : boost::json::value(id));
  }
  body["ci_ids"] = std::move(ids);
  boost::json::object phases;
  for (const auto& phase : result.phases) phases[phase.name] = phase.seconds;
  body["timings"] = std::move(phases);
  return JsonResponse(200, body);
}

}  // namespace cmdb::server::handlers
