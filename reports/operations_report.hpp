#pragma once
// The monthly operations review (product.md "Reports"): per tier, per handler (the monthly
// assessment, ranked), per business service, changes, drift, audit, callback coverage of key
// users and complaints, computed from one month of data read in one snapshot. Every rule a
// figure follows is written next to it here and in docs/reports.md. Pure; thread-safe.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "reports/report_document.hpp"
#include "store/report_repository.hpp"

namespace cmdb::reports {

// The month "YYYY-MM" as [start, end) in the calendar's local time (its fixed UTC offset).
// nullopt when `month` is not such a month.
struct MonthWindow {
  model::Timestamp start;
  model::Timestamp end;
};
std::optional<MonthWindow> MonthBounds(std::string_view month, int utc_offset_minutes);

// The business services an incident's CIs reach (their ids), e.g. from the dependency graph.
using ServicesOf = std::function<std::vector<std::int64_t>(const std::vector<std::int64_t>& cis)>;

struct OperationsReport {
  boost::json::object json;
  Document document;
};

// Builds the review of `month` from `data` at `now` (what is pending or overdue is judged at
// `now`, never later than the month's end for figures "at the end of the month").
OperationsReport BuildOperationsReport(const std::string& month, const store::OperationsData& data,
                                       const ServicesOf& services_of, model::Timestamp now,
                                       Lang lang);

}  // namespace cmdb::reports
