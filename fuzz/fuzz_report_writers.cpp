// The report writers against hostile text (fields split at 0x1F):
// - a CSV row reads back through the importer's RFC 4180 reader as the fields written, but for
//   the apostrophe that neutralises a would-be formula;
// - an iCalendar document keeps every line within 75 octets and, for UTF-8 input, never starts
//   a continuation line inside a character;
// - the HTML page escapes every value: it holds as many '<', '>' and '"' whatever the text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "import/csv.hpp"
#include "model/error.hpp"
#include "reports/report_document.hpp"

namespace {

bool ValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0U) != 0x80U) return false;
    }
    i += n;
  }
  return true;
}

std::size_t Count(const std::string& s, char c) {
  std::size_t n = 0;
  for (char x : s) n += x == c ? 1 : 0;
  return n;
}

std::string Page(const std::string& text) {
  using namespace cmdb::reports;  // NOLINT(google-build-using-namespace)
  Document doc;
  doc.title = text;
  doc.facts = {{text, text}};
  Section s;
  s.title = text;
  s.notes = {text};
  Chart bars;
  bars.title = text;
  bars.points = {{text, 2, text}, {"x", 1, "1"}};
  Chart line = bars;
  line.kind = Chart::Kind::kLine;
  s.charts = {bars, line};
  Table t;
  t.title = text;
  t.headers = {text};
  t.rows = {{Text(text, true)}};
  s.tables = {t};
  doc.sections = {s};
  return RenderHtml(doc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find('\x1f', start);
    fields.push_back(
        text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos || fields.size() == 16) break;
    start = end + 1;
  }

  std::string row;
  cmdb::reports::AppendCsvRow(row, fields);
  if (row != "\r\n") {  // one empty field is a blank line, which readers skip
    // After a header line, as every report's CSV has one (a reader drops a byte order mark at
    // the very start of a file).
    const auto records = cmdb::import::ParseCsv("header\r\n" + row);
    CMDB_FUZZ_CHECK(records.size() == 2);
    CMDB_FUZZ_CHECK(records[1].fields.size() == fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::string& got = records[1].fields[i];
      CMDB_FUZZ_CHECK(got == fields[i] || got == "'" + fields[i]);
      if (got != fields[i]) {
        const char c = fields[i][0];
        CMDB_FUZZ_CHECK(c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r');
      }
    }
  }

  cmdb::reports::CalendarEvent event;
  event.uid = "change-1@cmdb";
  event.summary = text;
  event.description = text;
  event.categories = fields;
  const std::string ics = cmdb::reports::ICalendar(text, {event}, cmdb::model::Timestamp{0});
  const bool utf8 = ValidUtf8(text);
  for (std::size_t p = 0; p < ics.size();) {
    const std::size_t e = ics.find("\r\n", p);
    CMDB_FUZZ_CHECK(e != std::string::npos);
    CMDB_FUZZ_CHECK(e - p <= 75);
    if (utf8 && ics[p] == ' ' && e > p + 1) {
      CMDB_FUZZ_CHECK((static_cast<unsigned char>(ics[p + 1]) & 0xC0U) != 0x80U);
    }
    p = e + 2;
  }

  if (utf8) {  // the reports only ever render text that came in as JSON: UTF-8
    const std::string plain = Page("x");
    const std::string page = Page(text);
    for (char c : {'<', '>', '"'}) CMDB_FUZZ_CHECK(Count(page, c) == Count(plain, c));
  }
  return 0;
}
