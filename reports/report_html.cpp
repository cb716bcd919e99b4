// The HTML rendering of a report Document: the one includer of the template library
// (kainjow mustache, which escapes every {{value}} for HTML). Charts are laid out here as
// numbers and drawn as SVG by the template.

#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

#include <kainjow/mustache.hpp>

#include "model/error.hpp"
#include "reports/report_document.hpp"

namespace cmdb::reports_templates {
std::vector<std::pair<std::string_view, std::string_view>> Templates();
}  // namespace cmdb::reports_templates

namespace cmdb::reports {

namespace {

namespace mst = kainjow::mustache;

std::string_view Template(std::string_view name) {
  for (const auto& [file, text] : reports_templates::Templates()) {
    if (file == name) return text;
  }
  throw model::Error(model::ErrorCode::kInternal, "no report template " + std::string(name));
}

std::string Num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", v);
  return buffer;
}

mst::data ChartData(const Chart& chart) {
  constexpr double kLeft = 48;
  constexpr double kTop = 24;
  constexpr double kPlot = 160;
  const double step = chart.points.size() > 24 ? 28 : 56;
  const double width =
      kLeft + 16 + step * static_cast<double>(std::max<std::size_t>(chart.points.size(), 1));
  const double base = kTop + kPlot;
  double max = chart.max;
  for (const ChartPoint& p : chart.points) max = std::max(max, p.value);
  if (max <= 0) max = 1;
  mst::data d{mst::data::type::object};
  d.set("title", chart.title);
  d.set("width", Num(width));
  d.set("height", Num(base + 40));
  d.set("left", Num(kLeft));
  d.set("right", Num(width - 8));
  d.set("base", Num(base));
  d.set("top", Num(kTop));
  d.set("top_label_y", Num(kTop + 4));
  char max_text[32];
  std::snprintf(max_text, sizeof max_text, max == std::floor(max) ? "%.0f" : "%.2f", max);
  d.set("max_text", std::string(max_text));
  mst::data bars{mst::data::type::list};
  mst::data dots{mst::data::type::list};
  std::string points;
  const bool every_label = chart.points.size() <= 16;
  for (std::size_t i = 0; i < chart.points.size(); ++i) {
    const ChartPoint& p = chart.points[i];
    const double h = std::max(0.0, p.value) / max * kPlot;
    const double x = kLeft + 8 + step * static_cast<double>(i);
    const double centre = x + step * 0.35;
    if (chart.kind == Chart::Kind::kBars) {
      mst::data bar{mst::data::type::object};
      bar.set("x", Num(x));
      bar.set("y", Num(base - h));
      bar.set("w", Num(step * 0.7));
      bar.set("h", Num(h));
      bar.set("label", p.label);
      bar.set("value_text", p.value_text);
      bar.set("label_x", Num(centre));
      bar.set("value_y", Num(base - h - 4));
      bar.set("label_y", Num(base + 16 + (i % 2 == 1 && step < 40 ? 12 : 0)));
      bars.push_back(bar);
    } else {
      points += (points.empty() ? "" : " ") + Num(centre) + "," + Num(base - h);
      mst::data dot{mst::data::type::object};
      dot.set("x", Num(centre));
      dot.set("y", Num(base - h));
      dot.set("label", p.label);
      dot.set("value_text", p.value_text);
      dot.set("show_label", every_label || i % 4 == 0 || i + 1 == chart.points.size());
      dot.set("label_y", Num(base + 16));
      dots.push_back(dot);
    }
  }
  d.set("bars", bars);
  d.set("dots", dots);
  if (!points.empty()) {
    mst::data line{mst::data::type::object};
    line.set("points", points);
    d.set("line", line);
  }
  return d;
}

mst::data TableData(const Table& table) {
  mst::data d{mst::data::type::object};
  d.set("title", table.title);
  d.set("has_rows", !table.rows.empty());
  d.set("empty_text", table.empty_text);
  mst::data headers{mst::data::type::list};
  for (const std::string& h : table.headers) headers.push_back(mst::object{{"text", h}});
  d.set("headers", headers);
  mst::data rows{mst::data::type::list};
  for (const auto& row : table.rows) {
    mst::data cells{mst::data::type::list};
    for (const Cell& c : row) {
      mst::data cell{mst::data::type::object};
      cell.set("text", c.text);
      cell.set("numeric", c.numeric);
      cell.set("alert", c.alert);
      cells.push_back(cell);
    }
    rows.push_back(mst::object{{"cells", cells}});
  }
  d.set("rows", rows);
  return d;
}

}  // namespace

std::string RenderChartSvg(const Chart& chart) {
  mst::mustache svg{std::string(Template("chart.svg.mustache"))};
  mst::data d = ChartData(chart);
  return svg.render(d);
}

std::string RenderHtml(const Document& doc) {
  mst::mustache page{std::string(Template("report.html.mustache"))};
  if (!page.is_valid()) {
    throw model::Error(model::ErrorCode::kInternal, "report template: " + page.error_message());
  }
  mst::data d{mst::data::type::object};
  d.set("lang", std::string(LangCode(doc.lang)));
  d.set("title", doc.title);
  mst::data facts{mst::data::type::list};
  for (const auto& [name, value] : doc.facts)
    facts.push_back(mst::object{{"name", name}, {"value", value}});
  d.set("facts", facts);
  mst::data sections{mst::data::type::list};
  for (const Section& s : doc.sections) {
    mst::data section{mst::data::type::object};
    section.set("title", s.title);
    mst::data notes{mst::data::type::list};
    for (const std::string& n : s.notes) notes.push_back(mst::object{{"text", n}});
    section.set("notes", notes);
    mst::data charts{mst::data::type::list};
    for (const Chart& c : s.charts) charts.push_back(ChartData(c));
    section.set("charts", charts);
    mst::data tables{mst::data::type::list};
    for (const Table& t : s.tables) tables.push_back(TableData(t));
    section.set("tables", tables);
    sections.push_back(section);
  }
  d.set("sections", sections);
  d.set("generated_label", std::string(doc.lang == Lang::kZh ? "生成于" : "Generated"));
  d.set("generated_at", model::FormatTimestamp(doc.generated_at));
  const std::string chart_svg(Template("chart.svg.mustache"));
  d.set("chart_svg", mst::partial([&chart_svg] { return chart_svg; }));
  return page.render(d);
}

}  // namespace cmdb::reports
