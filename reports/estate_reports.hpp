#pragma once
// The estate's reports (product.md "Reports"): the inventory as of an instant, the compare of
// two instants with attribute-level diffs, drift, the audit score trend with the worst rules
// and owners, and the change calendar with its collisions (also as iCalendar). Each builder
// turns what store::ReportRepository read into the report's JSON, its Document (HTML) and its
// CSV table. Pure; thread-safe.

#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "reports/report_document.hpp"
#include "store/report_repository.hpp"

namespace cmdb::reports {

struct BuiltReport {
  boost::json::object json;
  Document document;
  Table csv;        // the report's rows, one table (CSV)
  std::string ics;  // the change calendar only
};

BuiltReport BuildInventoryReport(const std::vector<store::InventoryGroup>& groups,
                                 const std::string& group_by, std::optional<model::Timestamp> as_of,
                                 const std::optional<std::string>& type, Lang lang,
                                 model::Timestamp now);
// The inventory's CSV: its header row, then rows appended batch by batch (streamed).
std::string InventoryCsvHeader(bool bom);
void AppendInventoryCsv(std::string& out, const std::vector<store::InventoryRow>& rows);

BuiltReport BuildCompareReport(const std::vector<store::ComparedCi>& cis,
                               const std::vector<store::ComparedRelation>& relations,
                               model::Timestamp from, model::Timestamp to,
                               const std::optional<std::string>& type, Lang lang,
                               model::Timestamp now);

BuiltReport BuildDriftReport(const std::vector<store::DriftRow>& findings, model::Timestamp from,
                             model::Timestamp to, Lang lang, model::Timestamp now);

BuiltReport BuildAuditReport(const std::vector<store::AuditScoreRow>& scores,
                             const std::string& set, model::Timestamp from, model::Timestamp to,
                             Lang lang, model::Timestamp now);

BuiltReport BuildChangesReport(const std::vector<store::CalendarChange>& changes,
                               model::Timestamp from, model::Timestamp to, Lang lang,
                               model::Timestamp now);

}  // namespace cmdb::reports
