#include "reports/report_document.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cmdb::reports {

namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

bool PlainNumber(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool digits = false;
  bool dot = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) != 0) {
      digits = true;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digits;
}

std::string IcsText(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case ';':
        out += "\\;";
        break;
      case ',':
        out += "\\,";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Folds one content line at 75 octets, never inside a UTF-8 sequence.
void AppendFolded(std::string& out, const std::string& line) {
  std::size_t start = 0;
  std::size_t limit = 75;
  while (line.size() - start > limit) {
    std::size_t cut = start + limit;
    while (cut > start && (static_cast<unsigned char>(line[cut]) & 0xC0U) == 0x80U) --cut;
    if (cut == start) cut = start + limit;  // not UTF-8 at all: split where the octets say
    out.append(line, start, cut - start);
    out += "\r\n ";
    start = cut;
    limit = 74;  // the leading space counts
  }
  out.append(line, start, std::string::npos);
  out += "\r\n";
}

std::string IcsTime(model::Timestamp t) {
  // 2026-12-06T10:00:00Z -> 20261206T100000Z
  std::string text = model::FormatTimestamp(model::Timestamp{t.micros - t.micros % 1000000});
  std::string out;
  for (char c : text) {
    if (c != '-' && c != ':') out += c;
  }
  return out;
}

}  // namespace

Lang LangFromAcceptLanguage(std::string_view header) {
  // The language with the highest q among those we have; ties go to the first named.
  double best_q = 0;
  Lang best = Lang::kEn;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(pos, end - pos);
    pos = end + 1;
    std::string_view tag = item.substr(0, item.find(';'));
    std::string lang = Trim(tag.substr(0, tag.find('-')));
    std::transform(lang.begin(), lang.end(), lang.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    double q = 1;
    if (std::size_t qp = item.find("q="); qp != std::string_view::npos) {
      q = std::strtod(std::string(item.substr(qp + 2)).c_str(), nullptr);
    }
    if ((lang == "zh" || lang == "en") && q > best_q) {
      best_q = q;
      best = lang == "zh" ? Lang::kZh : Lang::kEn;
    }
    if (end == header.size()) break;
  }
  return best;
}

std::string_view LangCode(Lang lang) { return lang == Lang::kZh ? "zh" : "en"; }

Cell Text(std::string text, bool alert) { return Cell{std::move(text), false, alert}; }
Cell Number(std::int64_t value, bool alert) { return Cell{std::to_string(value), true, alert}; }
Cell Decimal(double value, int decimals, bool present, bool alert) {
  if (!present || !std::isfinite(value)) return Cell{"–", true, alert};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return Cell{buffer, true, alert};
}
Cell Percent(std::int64_t part, std::int64_t total, bool alert) {
  if (total == 0) return Cell{"–", true, alert};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f %%",
                100.0 * static_cast<double>(part) / static_cast<double>(total));
  return Cell{buffer, true, alert};
}

std::string CsvField(std::string_view value) {
  std::string text(value);
  if (!text.empty() &&
      (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' || text[0] == '\t' ||
       text[0] == '\r') &&
      !PlainNumber(text)) {
    text.insert(0, 1, '\'');
  }
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

void AppendCsvRow(std::string& out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(fields[i]);
  }
  out += "\r\n";
}

std::string TableCsv(const Table& table, bool bom) {
  std::string out = bom ? std::string(kUtf8Bom) : std::string();
  AppendCsvRow(out, table.headers);
  std::vector<std::string> fields;
  for (const auto& row : table.rows) {
    fields.clear();
    for (const Cell& c : row) fields.push_back(c.text);
    AppendCsvRow(out, fields);
  }
  return out;
}

std::string DocumentCsv(const Document& document, bool bom) {
  std::string out = bom ? std::string(kUtf8Bom) : std::string();
  AppendCsvRow(out, {"section", "table", "row", "column", "value"});
  for (const Section& section : document.sections) {
    for (const Table& table : section.tables) {
      for (const auto& row : table.rows) {
        const std::string label = row.empty() ? std::string() : row[0].text;
        for (std::size_t c = 1; c < row.size() && c < table.headers.size(); ++c) {
          AppendCsvRow(out, {section.title, table.title, label, table.headers[c], row[c].text});
        }
      }
    }
  }
  return out;
}

std::string ICalendar(std::string_view name, const std::vector<CalendarEvent>& events,
                      model::Timestamp stamp) {
  std::string out;
  AppendFolded(out, "BEGIN:VCALENDAR");
  AppendFolded(out, "VERSION:2.0");
  AppendFolded(out, "PRODID:-//cmdb//change calendar//EN");
  AppendFolded(out, "CALSCALE:GREGORIAN");
  AppendFolded(out, "X-WR-CALNAME:" + IcsText(name));
  for (const CalendarEvent& e : events) {
    AppendFolded(out, "BEGIN:VEVENT");
    AppendFolded(out, "UID:" + IcsText(e.uid));
    AppendFolded(out, "DTSTAMP:" + IcsTime(stamp));
    AppendFolded(out, "DTSTART:" + IcsTime(e.start));
    AppendFolded(out, "DTEND:" + IcsTime(e.end));
    AppendFolded(out, "SUMMARY:" + IcsText(e.summary));
    if (!e.description.empty()) AppendFolded(out, "DESCRIPTION:" + IcsText(e.description));
    if (!e.status.empty()) AppendFolded(out, "STATUS:" + e.status);
    if (!e.categories.empty()) {
      std::string line = "CATEGORIES:";
      for (std::size_t i = 0; i < e.categories.size(); ++i) {
        line += (i > 0 ? "," : "") + IcsText(e.categories[i]);
      }
      AppendFolded(out, line);
    }
    AppendFolded(out, "END:VEVENT");
  }
  AppendFolded(out, "END:VCALENDAR");
  return out;
}

}  // namespace cmdb::reports
