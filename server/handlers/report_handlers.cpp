// The reports over HTTP: each one endpoint answering ?format=json|csv|html (and ics for the
// change calendar) in ?lang=zh|en (default from Accept-Language).

#include <boost/json.hpp>

#include "graph/dependency_graph.hpp"
#include "reports/operations_report.hpp"
#include "reports/report_document.hpp"
#include "server/handlers/handlers.hpp"
#include "store/db_pool.hpp"
#include "store/graph_cache.hpp"
#include "store/incident_repository.hpp"
#include "store/report_repository.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using model::Timestamp;

reports::Lang ReportLang(const Request& request) {
  if (std::optional<std::string> lang = OneOfParam(request, "lang", {"zh", "en"})) {
    return *lang == "zh" ? reports::Lang::kZh : reports::Lang::kEn;
  }
  return reports::LangFromAcceptLanguage(request.Header("Accept-Language"));
}

std::string ReportFormat(const Request& request, bool ics) {
  std::optional<std::string> format =
      ics ? OneOfParam(request, "format", {"json", "csv", "html", "ics"})
          : OneOfParam(request, "format", {"json", "csv", "html"});
  return format.value_or("json");
}

bool CsvBom(const Request& request) { return ParseBoolParam(request, "bom").value_or(false); }

Response TextResponse(std::string content_type, std::string body, const std::string& filename) {
  Response response;
  response.status = 200;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  if (!filename.empty()) {
    response.headers.emplace_back("Content-Disposition",
                                  "attachment; filename=\"" + filename + "\"");
  }
  return response;
}

// A document in the requested format: HTML, CSV (every table in one long table, or `csv` when
// given) or the report's JSON.
Response ReportResponse(const Request& request, const std::string& format, const json::object& body,
                        const reports::Document& document, const std::string& name,
                        const reports::Table* csv = nullptr) {
  if (format == "html") {
    return TextResponse("text/html; charset=utf-8", reports::RenderHtml(document), "");
  }
  if (format == "csv") {
    const bool bom = CsvBom(request);
    return TextResponse(
        "text/csv; charset=utf-8; header=present",
        csv != nullptr ? reports::TableCsv(*csv, bom) : reports::DocumentCsv(document, bom),
        name + ".csv");
  }
  return JsonResponse(200, body);
}

Response GetOperationsReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"month", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, false);
  const reports::Lang lang = ReportLang(request);
  const std::optional<std::string> month = request.Query("month");
  if (!month || month->empty()) {
    throw Error(ErrorCode::kInvalidArgument, "month is required: the month to review, YYYY-MM");
  }
  store::DbSession session = ctx.db->Lease();
  const model::WorkingCalendar calendar = store::IncidentRepository(session).Calendar();
  const std::optional<reports::MonthWindow> window =
      reports::MonthBounds(*month, calendar.utc_offset_minutes);
  if (!window) {
    throw Error(ErrorCode::kInvalidArgument,
                "month must be a month such as 2026-11 (YYYY-MM), not '" + *month + "'");
  }
  const store::OperationsData data =
      store::ReportRepository(session).LoadOperations(window->start, window->end);
  std::shared_ptr<const graph::DependencyGraph> graph = ctx.graph->CurrentUpToDate();
  auto services_of = [&graph](const std::vector<std::int64_t>& cis) {
    std::vector<std::int64_t> out;
    if (!graph) return out;
    graph::ImpactQuery q;
    for (std::int64_t id : cis) {
      if (!graph->Find(id)) continue;
      if (q.root == 0) {
        q.root = id;
      } else {
        q.also_failing.push_back(id);
      }
    }
    if (q.root == 0) return out;
    q.include_edges = false;
    q.max_nodes = graph->node_count() + 1;
    const graph::ImpactResult down = graph->Impact(q);
    for (std::size_t at : down.services) out.push_back(down.nodes.View(at).id);
    std::sort(out.begin(), out.end());
    return out;
  };
  const reports::OperationsReport report =
      reports::BuildOperationsReport(*month, data, services_of, Timestamp::Now(), lang);
  return ReportResponse(request, format, report.json, report.document, "operations-" + *month);
}

}  // namespace cmdb::server::handlers
