#pragma once
// What every report renders from, whatever its format: a Document of sections, each with
// charts and tables of already-localised text. Builders fill it (reports/*_report.cpp); HTML
// comes from reports/report_html.cpp (the one template-library includer), CSV and iCalendar
// from the writers below. Value types and pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/timestamp.hpp"

namespace cmdb::reports {

enum class Lang { kEn, kZh };
// "zh" / "en"; the first of an Accept-Language header that names one (q-values honoured),
// English otherwise.
Lang LangFromAcceptLanguage(std::string_view header);
std::string_view LangCode(Lang lang);

struct Cell {
  std::string text;
  bool numeric = false;  // right-aligned in HTML
  bool alert = false;    // flagged (overdue, missed, unauthorised)
};
Cell Text(std::string text, bool alert = false);
Cell Number(std::int64_t value, bool alert = false);
// `value` with `decimals` digits; "–" when `present` is false (no data, not zero).
Cell Decimal(double value, int decimals, bool present = true, bool alert = false);
// A share as a percentage "87.5 %"; "–" when `total` is 0.
Cell Percent(std::int64_t part, std::int64_t total, bool alert = false);

struct Table {
  std::string title;
  std::vector<std::string> headers;
  std::vector<std::vector<Cell>> rows;
  std::string empty_text;  // shown when there are no rows
};

struct ChartPoint {
  std::string label;
  double value = 0;
  std::string value_text;
};
struct Chart {
  enum class Kind { kBars, kLine };
  Kind kind = Kind::kBars;
  std::string title;
  std::vector<ChartPoint> points;
  double max = 0;  // the value axis' top; 0: the largest point
};

struct Section {
  std::string title;
  std::vector<std::string> notes;
  std::vector<Chart> charts;
  std::vector<Table> tables;
};

struct Document {
  Lang lang = Lang::kEn;
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  // parameters, shown under the title
  std::vector<Section> sections;
  model::Timestamp generated_at;
};

// CSV (RFC 4180): CRLF line ends, fields quoted when they hold a comma, quote, CR or LF,
// quotes doubled. A field that a spreadsheet would read as a formula (starting with =, +, -,
// @, tab or CR) is neutralised with a leading apostrophe, unless it is a plain number such as
// "-3" or "-1.5".
std::string CsvField(std::string_view value);
void AppendCsvRow(std::string& out, const std::vector<std::string>& fields);
// The UTF-8 byte order mark spreadsheet programs need to read UTF-8 CSV.
inline constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// One table: its headers, then its rows.
std::string TableCsv(const Table& table, bool bom);
// Every table of a document in one long table: section, table, row (its first cell), column,
// value — one line per figure, which a spreadsheet pivots back.
std::string DocumentCsv(const Document& document, bool bom);

// iCalendar (RFC 5545): text values escaped (\\, \;, \, and \n), lines folded at 75 octets
// without splitting a UTF-8 sequence, CRLF line ends.
struct CalendarEvent {
  std::string uid;
  model::Timestamp start;
  model::Timestamp end;
  std::string summary;
  std::string description;
  std::string status;  // TENTATIVE, CONFIRMED, CANCELLED
  std::vector<std::string> categories;
};
std::string ICalendar(std::string_view name, const std::vector<CalendarEvent>& events,
                      model::Timestamp stamp);

// The page: one self-contained HTML document (inline CSS, charts as inline SVG), every value
// escaped by the template library.
std::string RenderHtml(const Document& document);
// One chart alone, as the inline SVG the page draws (for pages of the web UI).
std::string RenderChartSvg(const Chart& chart);

}  // namespace cmdb::reports
