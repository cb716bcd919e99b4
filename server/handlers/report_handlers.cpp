// The reports over HTTP: each one endpoint answering ?format=json|csv|html (and ics for the
// change calendar) in ?lang=zh|en (default from Accept-Language).

#include <boost/json.hpp>

#include "graph/dependency_graph.hpp"
#include "reports/estate_reports.hpp"
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

namespace {

constexpr std::int64_t kDay = std::int64_t{86400} * 1000000;

// [from, to) of a report: both optional with defaults relative to now; from before to.
struct Period {
  Timestamp from;
  Timestamp to;
};
Period PeriodParams(const Request& request, std::int64_t default_from, std::int64_t default_to) {
  const Timestamp now = Timestamp::Now();
  Period p{TimeParam(request, "from").value_or(Timestamp{now.micros + default_from}),
           TimeParam(request, "to").value_or(Timestamp{now.micros + default_to})};
  if (!(p.from < p.to)) {
    throw Error(ErrorCode::kInvalidArgument, "from (" + model::FormatTimestamp(p.from) +
                                                 ") must be before to (" +
                                                 model::FormatTimestamp(p.to) + ")");
  }
  return p;
}

std::optional<std::string> TextParam(const Request& request, const char* name) {
  std::optional<std::string> v = request.Query(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

Response BuiltResponse(const Request& request, const std::string& format,
                       const reports::BuiltReport& report, const std::string& name) {
  if (format == "ics") {
    return TextResponse("text/calendar; charset=utf-8", report.ics, name + ".ics");
  }
  return ReportResponse(request, format, report.json, report.document, name, &report.csv);
}

}  // namespace

Response GetInventoryReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"as_of", "group_by", "type", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, false);
  const reports::Lang lang = ReportLang(request);
  const std::optional<Timestamp> as_of = ParseAsOf(request);
  const std::string group_by =
      OneOfParam(request, "group_by", {"type", "owner", "status", "tag"}).value_or("type");
  const std::optional<std::string> type = TextParam(request, "type");
  if (format == "csv") {
    // Every CI, one row each, streamed a batch at a time: memory stays flat for a million.
    auto cursor = std::make_shared<store::ReportCursorHolder>();
    cursor->cursor = std::make_unique<store::InventoryCursor>(ctx.db->Lease(), as_of, type);
    Response response =
        TextResponse("text/csv; charset=utf-8; header=present", "", "inventory.csv");
    auto header = std::make_shared<std::string>(reports::InventoryCsvHeader(CsvBom(request)));
    response.source = [cursor, header, rows = std::make_shared<std::vector<store::InventoryRow>>()](
                          std::string& out) {
      if (!header->empty()) {
        out.swap(*header);
        header->clear();
      }
      const bool more = cursor->cursor->Next(*rows, 5000);
      reports::AppendInventoryCsv(out, *rows);
      if (!more) cursor->cursor.reset();  // the connection goes back to the pool at once
      return more;
    };
    return response;
  }
  store::DbSession session = ctx.db->Lease();
  const std::vector<store::InventoryGroup> groups =
      store::ReportRepository(session).InventoryGroups(as_of, group_by, type);
  const reports::BuiltReport report =
      reports::BuildInventoryReport(groups, group_by, as_of, type, lang, Timestamp::Now());
  return BuiltResponse(request, format, report, "inventory");
}

Response GetInventoryCompareReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"from", "to", "type", "relation_type", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, false);
  const reports::Lang lang = ReportLang(request);
  const std::optional<Timestamp> from = TimeParam(request, "from");
  const std::optional<Timestamp> to = TimeParam(request, "to");
  if (!from || !to) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(!from ? "from" : "to") +
                    " is required: the compare reads the estate at two instants, from and to");
  }
  if (!(*from < *to)) {
    throw Error(ErrorCode::kInvalidArgument, "from must be before to");
  }
  if (*to > Timestamp::Now()) {
    throw Error(ErrorCode::kInvalidArgument,
                "to is in the future; history can only be read up to now");
  }
  const std::optional<std::string> type = TextParam(request, "type");
  const std::optional<std::string> relation_type = TextParam(request, "relation_type");
  store::DbSession session = ctx.db->Lease();
  store::ReportRepository repo(session);
  const auto cis = repo.CompareCis(*from, *to, type);
  const auto relations = repo.CompareRelations(*from, *to, relation_type);
  const reports::BuiltReport report =
      reports::BuildCompareReport(cis, relations, *from, *to, type, lang, Timestamp::Now());
  return BuiltResponse(request, format, report, "inventory-compare");
}

Response GetDriftReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"from", "to", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, false);
  const reports::Lang lang = ReportLang(request);
  const Period p = PeriodParams(request, -30 * kDay, 0);
  store::DbSession session = ctx.db->Lease();
  const auto findings = store::ReportRepository(session).Drift(p.from, p.to);
  return BuiltResponse(request, format,
                       reports::BuildDriftReport(findings, p.from, p.to, lang, Timestamp::Now()),
                       "drift");
}

Response GetAuditReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"from", "to", "set", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, false);
  const reports::Lang lang = ReportLang(request);
  const Period p = PeriodParams(request, -365 * kDay, kDay);
  const std::string set = TextParam(request, "set").value_or("baseline");
  store::DbSession session = ctx.db->Lease();
  const auto scores = store::ReportRepository(session).AuditScores(set, p.from, p.to);
  return BuiltResponse(request, format,
                       reports::BuildAuditReport(scores, set, p.from, p.to, lang, Timestamp::Now()),
                       "audit");
}

Response GetChangesReport(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"from", "to", "format", "lang", "bom"});
  const std::string format = ReportFormat(request, true);
  const reports::Lang lang = ReportLang(request);
  const Period p = PeriodParams(request, -7 * kDay, 30 * kDay);
  store::DbSession session = ctx.db->Lease();
  const auto changes = store::ReportRepository(session).ChangesBetween(p.from, p.to);
  if (changes.size() > 10000) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "more than 10000 changes are planned between from and to; ask for a shorter period");
  }
  return BuiltResponse(request, format,
                       reports::BuildChangesReport(changes, p.from, p.to, lang, Timestamp::Now()),
                       "changes");
}

}  // namespace cmdb::server::handlers
