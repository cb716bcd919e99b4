#include "reports/estate_reports.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include <boost/json.hpp>

#include "model/json.hpp"
#include "reports/report_text.hpp"

namespace cmdb::reports {

namespace json = boost::json;
using model::Timestamp;

namespace {

std::string Stamp(Timestamp t) { return model::FormatTimestamp(t); }

std::string JsonText(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

// Field-level differences between two states of a CI: name, type, status, owner, tags and
// each attribute, as {"field": {"from": x, "to": y}}.
json::object CiDiff(const model::ConfigurationItem& a, const model::ConfigurationItem& b) {
  json::object diff;
  auto field = [&](const char* name, const json::value& x, const json::value& y) {
    if (x != y) diff[name] = json::object{{"from", x}, {"to", y}};
  };
  auto text = [](const std::optional<std::string>& s) {
    return s ? json::value(*s) : json::value(nullptr);
  };
  field("type", json::value(a.type), json::value(b.type));
  field("name", json::value(a.name), json::value(b.name));
  field("status", json::value(a.status), json::value(b.status));
  field("owner", text(a.owner), text(b.owner));
  json::array ta, tb;
  for (const auto& t : a.tags) ta.emplace_back(t);
  for (const auto& t : b.tags) tb.emplace_back(t);
  field("tags", ta, tb);
  std::map<std::string, std::pair<json::value, json::value>> attrs;
  for (const auto& [k, v] : a.attributes) attrs[std::string(k)].first = v;
  for (const auto& [k, v] : b.attributes) attrs[std::string(k)].second = v;
  for (const auto& [k, v] : attrs) {
    if (v.first != v.second) {
      diff["attributes." + k] = json::object{{"from", v.first}, {"to", v.second}};
    }
  }
  return diff;
}

json::object RelationDiff(const store::RelationState& a, const store::RelationState& b) {
  json::object diff;
  std::map<std::string, std::pair<json::value, json::value>> attrs;
  for (const auto& [k, v] : a.attributes) attrs[std::string(k)].first = v;
  for (const auto& [k, v] : b.attributes) attrs[std::string(k)].second = v;
  for (const auto& [k, v] : attrs) {
    if (v.first != v.second)
      diff["attributes." + k] = json::object{{"from", v.first}, {"to", v.second}};
  }
  return diff;
}

bool Active(const std::string& state) { return state != "rejected" && state != "cancelled"; }

}  // namespace

// --- inventory ---

BuiltReport BuildInventoryReport(const std::vector<store::InventoryGroup>& groups,
                                 const std::string& group_by, std::optional<Timestamp> as_of,
                                 const std::optional<std::string>& type, Lang lang, Timestamp now) {
  BuiltReport out;
  json::array rows;
  std::int64_t total = 0;
  Table table;
  table.headers = {T(lang, "Group", "分组"),
                   T(lang, "CIs", "配置项"),
                   "planned",
                   "active",
                   "maintenance",
                   "retired"};
  table.empty_text = T(lang, "No CIs.", "无配置项。");
  Chart chart;
  chart.title = T(lang, "CIs per ", "配置项数量：按") + group_by;
  for (const store::InventoryGroup& g : groups) {
    json::object by_status;
    for (const auto& [s, n] : g.by_status) by_status[s] = n;
    rows.push_back(json::object{{"key", g.key}, {"count", g.count}, {"by_status", by_status}});
    total += g.count;
    auto n = [&](const char* s) {
      auto it = g.by_status.find(s);
      return Number(it == g.by_status.end() ? 0 : it->second);
    };
    const std::string label = g.key.empty() ? T(lang, "(none)", "（无）") : g.key;
    table.rows.push_back(
        {Text(label), Number(g.count), n("planned"), n("active"), n("maintenance"), n("retired")});
    chart.points.push_back({label, static_cast<double>(g.count), std::to_string(g.count)});
  }
  std::sort(chart.points.begin(), chart.points.end(),
            [](const ChartPoint& a, const ChartPoint& b) { return a.value > b.value; });
  if (chart.points.size() > 24) chart.points.resize(24);
  out.json = json::object{{"as_of", as_of ? json::value(Stamp(*as_of)) : json::value(nullptr)},
                          {"group_by", group_by},
                          {"type", type ? json::value(*type) : json::value(nullptr)},
                          {"total", total},
                          {"groups", std::move(rows)}};
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Inventory", "配置项清单");
  doc.facts = {{T(lang, "As of", "时点"), as_of ? Stamp(*as_of) : T(lang, "now", "当前")},
               {T(lang, "Grouped by", "分组"), group_by},
               {T(lang, "CIs", "配置项"), std::to_string(total)}};
  if (type) doc.facts.emplace_back(T(lang, "Type", "类型"), *type);
  Section s;
  s.title = T(lang, "CIs by ", "配置项：按") + group_by;
  s.notes.push_back(T(lang, "Every CI, one row each, is in format=csv.",
                      "每个配置项一行的完整清单见 format=csv。"));
  if (!chart.points.empty()) s.charts.push_back(std::move(chart));
  s.tables.push_back(table);
  doc.sections.push_back(std::move(s));
  out.csv = std::move(table);
  return out;
}

std::string InventoryCsvHeader(bool bom) {
  std::string out = bom ? std::string(kUtf8Bom) : std::string();
  AppendCsvRow(out,
               {"id", "type", "name", "status", "owner", "tags", "attributes", "version", "since"});
  return out;
}

void AppendInventoryCsv(std::string& out, const std::vector<store::InventoryRow>& rows) {
  for (const store::InventoryRow& r : rows) {
    AppendCsvRow(out, {std::to_string(r.id), r.type, r.name, r.status, r.owner.value_or(""),
                       r.tags_json, r.attributes_json, std::to_string(r.version), Stamp(r.since)});
  }
}

// --- compare ---

BuiltReport BuildCompareReport(const std::vector<store::ComparedCi>& cis,
                               const std::vector<store::ComparedRelation>& relations,
                               Timestamp from, Timestamp to, const std::optional<std::string>& type,
                               Lang lang, Timestamp now) {
  BuiltReport out;
  std::map<std::string, std::int64_t> ci_counts{{"added", 0}, {"removed", 0}, {"changed", 0}};
  std::map<std::string, std::int64_t> rel_counts{{"added", 0}, {"removed", 0}, {"changed", 0}};
  json::array ci_items;
  Table& csv = out.csv;
  csv.headers = {"kind", "id", "name", "type", "change", "field", "from", "to"};
  Table ci_table;
  ci_table.title = T(lang, "CIs", "配置项");
  ci_table.headers = {"#",
                      T(lang, "Name", "名称"),
                      T(lang, "Type", "类型"),
                      T(lang, "Change", "变化"),
                      T(lang, "Field", "字段"),
                      T(lang, "Before", "之前"),
                      T(lang, "After", "之后")};
  ci_table.empty_text = T(lang, "No CI changed.", "没有配置项变化。");
  constexpr std::size_t kHtmlRows = 2000;
  for (const store::ComparedCi& c : cis) {
    if (!c.before && !c.after) continue;  // born and gone between the two instants
    std::string change = !c.before ? "added" : !c.after ? "removed" : "changed";
    const model::ConfigurationItem& now_or_then = c.after ? *c.after : *c.before;
    json::object diff;
    if (c.before && c.after) {
      diff = CiDiff(*c.before, *c.after);
      if (diff.empty()) continue;  // changed and changed back
    }
    ++ci_counts[change];
    ci_items.push_back(
        json::object{{"id", c.id},
                     {"name", now_or_then.name},
                     {"type", now_or_then.type},
                     {"change", change},
                     {"version_from", c.before ? json::value(c.before->version) : nullptr},
                     {"version_to", c.after ? json::value(c.after->version) : nullptr},
                     {"diff", diff}});
    if (diff.empty()) {
      csv.rows.push_back({Text("ci"), Number(c.id), Text(now_or_then.name), Text(now_or_then.type),
                          Text(change), Text(""), Text(""), Text("")});
      if (ci_table.rows.size() < kHtmlRows) {
        ci_table.rows.push_back({Number(c.id), Text(now_or_then.name), Text(now_or_then.type),
                                 Text(change, change == "removed"), Text(""), Text(""), Text("")});
      }
    }
    for (const auto& [field, fromto] : diff) {
      const std::string a = JsonText(fromto.at("from"));
      const std::string b = JsonText(fromto.at("to"));
      csv.rows.push_back({Text("ci"), Number(c.id), Text(now_or_then.name), Text(now_or_then.type),
                          Text(change), Text(std::string(field)), Text(a), Text(b)});
      if (ci_table.rows.size() < kHtmlRows) {
        ci_table.rows.push_back({Number(c.id), Text(now_or_then.name), Text(now_or_then.type),
                                 Text(change), Text(std::string(field)), Text(a), Text(b)});
      }
    }
  }
  json::array rel_items;
  Table rel_table;
  rel_table.title = T(lang, "Relations", "关系");
  rel_table.headers = {"#",
                       T(lang, "Type", "类型"),
                       T(lang, "From CI", "源"),
                       T(lang, "To CI", "目标"),
                       T(lang, "Change", "变化"),
                       T(lang, "Difference", "差异")};
  rel_table.empty_text = T(lang, "No relation changed.", "没有关系变化。");
  for (const store::ComparedRelation& r : relations) {
    if (!r.before && !r.after) continue;
    std::string change = !r.before ? "added" : !r.after ? "removed" : "changed";
    const store::RelationState& s = r.after ? *r.after : *r.before;
    json::object diff;
    if (r.before && r.after) {
      diff = RelationDiff(*r.before, *r.after);
      if (diff.empty()) continue;
    }
    ++rel_counts[change];
    rel_items.push_back(json::object{{"id", r.id},
                                     {"type", s.type},
                                     {"from_ci", s.from_ci},
                                     {"to_ci", s.to_ci},
                                     {"change", change},
                                     {"diff", diff}});
    const std::string diff_text = diff.empty() ? "" : json::serialize(diff);
    csv.rows.push_back({Text("relation"), Number(r.id),
                        Text(std::to_string(s.from_ci) + " -> " + std::to_string(s.to_ci)),
                        Text(s.type), Text(change), Text(diff.empty() ? "" : "attributes"),
                        Text(""), Text(diff_text)});
    if (rel_table.rows.size() < kHtmlRows) {
      rel_table.rows.push_back({Number(r.id), Text(s.type), Number(s.from_ci), Number(s.to_ci),
                                Text(change, change == "removed"), Text(diff_text)});
    }
  }
  auto counts_json = [](const std::map<std::string, std::int64_t>& m) {
    json::object o;
    for (const auto& [k, v] : m) o[k] = v;
    return o;
  };
  out.json = json::object{{"from", Stamp(from)},
                          {"to", Stamp(to)},
                          {"type", type ? json::value(*type) : json::value(nullptr)},
                          {"summary", json::object{{"cis", counts_json(ci_counts)},
                                                   {"relations", counts_json(rel_counts)}}},
                          {"cis", std::move(ci_items)},
                          {"relations", std::move(rel_items)}};
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Inventory compare", "配置基线比对");
  doc.facts = {{T(lang, "From", "起"), Stamp(from)}, {T(lang, "To", "止"), Stamp(to)}};
  if (type) doc.facts.emplace_back(T(lang, "Type", "类型"), *type);
  Section summary;
  summary.title = T(lang, "Summary", "概要");
  Table st;
  st.headers = {"", T(lang, "Added", "新增"), T(lang, "Removed", "删除"),
                T(lang, "Changed", "变更")};
  st.rows.push_back({Text(T(lang, "CIs", "配置项")), Number(ci_counts["added"]),
                     Number(ci_counts["removed"]), Number(ci_counts["changed"])});
  st.rows.push_back({Text(T(lang, "Relations", "关系")), Number(rel_counts["added"]),
                     Number(rel_counts["removed"]), Number(rel_counts["changed"])});
  summary.tables.push_back(std::move(st));
  doc.sections.push_back(std::move(summary));
  Section details;
  details.title = T(lang, "Differences", "差异明细");
  if (ci_table.rows.size() >= kHtmlRows || rel_table.rows.size() >= kHtmlRows) {
    details.notes.push_back(
        T(lang, "The page shows the first 2000 rows of each table; format=csv has them all.",
          "页面每表仅显示前 2000 行；完整内容见 format=csv。"));
  }
  details.tables.push_back(std::move(ci_table));
  details.tables.push_back(std::move(rel_table));
  doc.sections.push_back(std::move(details));
  return out;
}

// --- drift ---

BuiltReport BuildDriftReport(const std::vector<store::DriftRow>& findings, Timestamp from,
                             Timestamp to, Lang lang, Timestamp now) {
  BuiltReport out;
  struct Counts {
    std::int64_t opened = 0, open = 0, unauthorised_open = 0;
  };
  std::map<std::string, std::int64_t> by_state{
      {"open", 0}, {"resolved", 0}, {"accepted", 0}, {"ignored", 0}};
  std::map<std::string, Counts> by_source, by_type, by_owner;
  std::map<std::string, std::int64_t> ages{{"0-7", 0}, {"8-30", 0}, {"31-90", 0}, {"over_90", 0}};
  std::int64_t opened = 0, unauthorised_open = 0;
  const Timestamp judged = std::min(to, now);
  Table& csv = out.csv;
  csv.headers = {"id",        "ci_id",    "ci",         "type",   "owner",
                 "attribute", "state",    "authorized", "source", "detected_at",
                 "closed_at", "age_days", "expected",   "actual"};
  for (const store::DriftRow& f : findings) {
    // Its state at `to`: open unless it closed before then.
    const bool open_at_to = !f.closed_at || *f.closed_at >= to;
    const std::string state = open_at_to ? "open" : f.state;
    const bool opened_in = f.detected_at >= from;
    if (opened_in) ++opened;
    ++by_state[state];  // every finding alive in the period, by its state at `to`
    const std::int64_t age_days =
        ((open_at_to ? judged : *f.closed_at).micros - f.detected_at.micros) /
        (std::int64_t{86400} * 1000000);
    auto count = [&](std::map<std::string, Counts>& m, const std::string& key) {
      Counts& c = m[key];
      if (opened_in) ++c.opened;
      if (open_at_to) ++c.open;
      if (open_at_to && !f.authorized) ++c.unauthorised_open;
    };
    count(by_source, f.source.value_or(""));
    count(by_type, f.ci_type);
    count(by_owner, f.owner.value_or(""));
    if (open_at_to) {
      if (!f.authorized) ++unauthorised_open;
      ++ages[age_days <= 7    ? "0-7"
             : age_days <= 30 ? "8-30"
             : age_days <= 90 ? "31-90"
                              : "over_90"];
    }
    csv.rows.push_back({Number(f.id), Number(f.ci_id), Text(f.ci_name), Text(f.ci_type),
                        Text(f.owner.value_or("")), Text(f.attribute), Text(state),
                        Text(f.authorized ? "true" : "false"), Text(f.source.value_or("")),
                        Text(Stamp(f.detected_at)),
                        Text(open_at_to || !f.closed_at ? "" : Stamp(*f.closed_at)),
                        Number(age_days), Text(f.expected_json), Text(f.actual_json)});
  }
  auto group_json = [](const std::map<std::string, Counts>& m) {
    json::array a;
    for (const auto& [k, c] : m) {
      a.push_back(json::object{{"key", k},
                               {"opened", c.opened},
                               {"open", c.open},
                               {"unauthorised_open", c.unauthorised_open}});
    }
    return a;
  };
  json::object states;
  for (const auto& [k, v] : by_state) states[k] = v;
  json::object age_json;
  for (const auto& [k, v] : ages) age_json[k] = v;
  out.json = json::object{{"from", Stamp(from)},
                          {"to", Stamp(to)},
                          {"opened", opened},
                          {"by_state", states},
                          {"unauthorised_open", unauthorised_open},
                          {"age_of_open_days", age_json},
                          {"by_source", group_json(by_source)},
                          {"by_type", group_json(by_type)},
                          {"by_owner", group_json(by_owner)}};
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Drift", "配置偏差报告");
  doc.facts = {{T(lang, "From", "起"), Stamp(from)}, {T(lang, "To", "止"), Stamp(to)}};
  Section s;
  s.title = T(lang, "Findings", "偏差");
  Table st;
  st.headers = {T(lang, "Figure", "指标"), T(lang, "Findings", "数量")};
  st.rows = {{Text(T(lang, "opened in the period", "期间新发现")), Number(opened)},
             {Text(T(lang, "open at the end", "期末未关闭")), Number(by_state["open"])},
             {Text(T(lang, "resolved", "已解决")), Number(by_state["resolved"])},
             {Text(T(lang, "accepted", "已接受")), Number(by_state["accepted"])},
             {Text(T(lang, "ignored", "已忽略")), Number(by_state["ignored"])},
             {Text(T(lang, "unauthorised and open", "未授权且未关闭")),
              Number(unauthorised_open, unauthorised_open > 0)}};
  s.tables.push_back(std::move(st));
  Chart age_chart;
  age_chart.title = T(lang, "Age of open findings (days)", "未关闭偏差的时长（天）");
  for (const char* k : {"0-7", "8-30", "31-90", "over_90"}) {
    age_chart.points.push_back({k, static_cast<double>(ages[k]), std::to_string(ages[k])});
  }
  s.charts.push_back(std::move(age_chart));
  doc.sections.push_back(std::move(s));
  auto group_table = [&](const char* en, const char* zh, const std::map<std::string, Counts>& m) {
    Table t;
    t.title = T(lang, en, zh);
    t.headers = {"", T(lang, "Opened", "新发现"), T(lang, "Open", "未关闭"),
                 T(lang, "Unauthorised open", "未授权未关闭")};
    t.empty_text = T(lang, "No findings.", "无偏差。");
    for (const auto& [k, c] : m) {
      t.rows.push_back({Text(k.empty() ? T(lang, "(none)", "（无）") : k), Number(c.opened),
                        Number(c.open), Number(c.unauthorised_open, c.unauthorised_open > 0)});
    }
    return t;
  };
  Section g;
  g.title = T(lang, "By source, type and owner", "按来源、类型与负责人");
  g.tables.push_back(group_table("By source", "按来源", by_source));
  g.tables.push_back(group_table("By type", "按类型", by_type));
  g.tables.push_back(group_table("By owner", "按负责人", by_owner));
  doc.sections.push_back(std::move(g));
  return out;
}

// --- audit ---

BuiltReport BuildAuditReport(const std::vector<store::AuditScoreRow>& scores,
                             const std::string& set, Timestamp from, Timestamp to, Lang lang,
                             Timestamp now) {
  BuiltReport out;
  json::array trend;
  Chart chart;
  chart.kind = Chart::Kind::kLine;
  chart.title = T(lang, "Score trend (%)", "得分趋势（%）");
  chart.max = 100;
  std::int64_t latest_run = 0;
  for (const store::AuditScoreRow& r : scores) {
    if (r.group_kind != "overall") continue;
    json::value score = Ratio(r.pass, r.pass + r.fail);
    trend.push_back(json::object{{"at", Stamp(r.at)},
                                 {"run_id", r.run_id},
                                 {"pass", r.pass},
                                 {"fail", r.fail},
                                 {"score", score}});
    const double pct = score.is_null() ? 0 : score.as_double() * 100;
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %%", pct);
    chart.points.push_back({Stamp(r.at).substr(0, 10), pct, text});
    latest_run = r.run_id;
  }
  Table& csv = out.csv;
  csv.headers = {"at", "run_id", "group_kind", "group_key", "pass", "fail", "score"};
  for (const store::AuditScoreRow& r : scores) {
    const json::value score = Ratio(r.pass, r.pass + r.fail);
    csv.rows.push_back({Text(Stamp(r.at)), Number(r.run_id), Text(r.group_kind), Text(r.group_key),
                        Number(r.pass), Number(r.fail),
                        Text(score.is_null() ? "" : json::serialize(score))});
  }
  auto worst = [&](const char* kind) {
    std::vector<const store::AuditScoreRow*> rows;
    for (const store::AuditScoreRow& r : scores) {
      if (r.run_id == latest_run && r.group_kind == kind && r.fail > 0) rows.push_back(&r);
    }
    std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
      const double sa = static_cast<double>(a->pass) / static_cast<double>(a->pass + a->fail);
      const double sb = static_cast<double>(b->pass) / static_cast<double>(b->pass + b->fail);
      if (sa != sb) return sa < sb;
      if (a->fail != b->fail) return a->fail > b->fail;
      return a->group_key < b->group_key;
    });
    if (rows.size() > 10) rows.resize(10);
    return rows;
  };
  auto worst_json = [&](const std::vector<const store::AuditScoreRow*>& rows) {
    json::array a;
    for (const auto* r : rows) {
      a.push_back(json::object{{"key", r->group_key},
                               {"pass", r->pass},
                               {"fail", r->fail},
                               {"score", Ratio(r->pass, r->pass + r->fail)}});
    }
    return a;
  };
  const auto worst_rules = worst("rule");
  const auto worst_owners = worst("owner");
  out.json =
      json::object{{"set", set},
                   {"from", Stamp(from)},
                   {"to", Stamp(to)},
                   {"trend", trend},
                   {"latest_run", latest_run == 0 ? json::value(nullptr) : json::value(latest_run)},
                   {"worst_rules", worst_json(worst_rules)},
                   {"worst_owners", worst_json(worst_owners)}};
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Configuration audit", "配置审计报告");
  doc.facts = {{T(lang, "Rule set", "规则集"), set},
               {T(lang, "From", "起"), Stamp(from)},
               {T(lang, "To", "止"), Stamp(to)}};
  Section s;
  s.title = T(lang, "Score", "得分");
  if (chart.points.empty()) {
    s.notes.push_back(T(lang, "No audit run in this period.", "此期间没有审计运行。"));
  } else {
    s.charts.push_back(std::move(chart));
  }
  auto worst_table = [&](const char* en, const char* zh,
                         const std::vector<const store::AuditScoreRow*>& rows) {
    Table t;
    t.title = T(lang, en, zh);
    t.headers = {"", T(lang, "Passed", "通过"), T(lang, "Failed", "未通过"),
                 T(lang, "Score", "得分")};
    t.empty_text = T(lang, "Nothing failed in the latest run.", "最近一次运行全部通过。");
    for (const auto* r : rows) {
      t.rows.push_back({Text(r->group_key.empty() ? T(lang, "(none)", "（无）") : r->group_key),
                        Number(r->pass), Number(r->fail, true),
                        Percent(r->pass, r->pass + r->fail)});
    }
    return t;
  };
  s.tables.push_back(
      worst_table("Worst rules (latest run)", "最差规则（最近一次运行）", worst_rules));
  s.tables.push_back(
      worst_table("Worst owners (latest run)", "最差负责人（最近一次运行）", worst_owners));
  doc.sections.push_back(std::move(s));
  return out;
}

// --- change calendar ---

BuiltReport BuildChangesReport(const std::vector<store::CalendarChange>& changes, Timestamp from,
                               Timestamp to, Lang lang, Timestamp now) {
  BuiltReport out;
  // Collisions: active changes whose windows overlap and whose impact sets share a CI.
  std::vector<std::vector<std::int64_t>> sorted(changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    sorted[i] = changes[i].impact;
    std::sort(sorted[i].begin(), sorted[i].end());
  }
  std::map<std::int64_t, std::vector<std::int64_t>> collides;
  json::array collisions;
  for (std::size_t i = 0; i < changes.size(); ++i) {  // sorted by planned_start
    if (!Active(changes[i].state)) continue;
    for (std::size_t j = i + 1;
         j < changes.size() && changes[j].planned_start < changes[i].planned_end; ++j) {
      if (!Active(changes[j].state)) continue;
      std::vector<std::int64_t> shared;
      std::set_intersection(sorted[i].begin(), sorted[i].end(), sorted[j].begin(), sorted[j].end(),
                            std::back_inserter(shared));
      if (shared.empty()) continue;
      collides[changes[i].id].push_back(changes[j].id);
      collides[changes[j].id].push_back(changes[i].id);
      collisions.push_back(json::object{
          {"changes", json::array{changes[i].id, changes[j].id}},
          {"overlap_from", Stamp(std::max(changes[i].planned_start, changes[j].planned_start))},
          {"overlap_to", Stamp(std::min(changes[i].planned_end, changes[j].planned_end))},
          {"shared_cis", static_cast<std::int64_t>(shared.size())}});
    }
  }
  json::array items;
  Table& csv = out.csv;
  csv.headers = {"id",          "title",        "risk", "state",        "planned_start",
                 "planned_end", "requested_by", "cis",  "collides_with"};
  Table table;
  table.headers = {"#",
                   T(lang, "Title", "标题"),
                   T(lang, "Risk", "风险"),
                   T(lang, "State", "状态"),
                   T(lang, "Start", "开始"),
                   T(lang, "End", "结束"),
                   T(lang, "Collides with", "冲突")};
  table.empty_text = T(lang, "No change is planned in this period.", "此期间没有计划的变更。");
  std::vector<CalendarEvent> events;
  for (const store::CalendarChange& c : changes) {
    std::string with;
    json::array ids;
    for (std::int64_t other : collides[c.id]) {
      with += (with.empty() ? "#" : ", #") + std::to_string(other);
      ids.push_back(other);
    }
    items.push_back(json::object{{"id", c.id},
                                 {"title", c.title},
                                 {"risk", c.risk},
                                 {"state", c.state},
                                 {"planned_start", Stamp(c.planned_start)},
                                 {"planned_end", Stamp(c.planned_end)},
                                 {"requested_by", c.requested_by},
                                 {"ci_ids", model::IdsToJson(c.ci_ids)},
                                 {"collides_with", ids}});
    csv.rows.push_back({Number(c.id), Text(c.title), Text(c.risk), Text(c.state),
                        Text(Stamp(c.planned_start)), Text(Stamp(c.planned_end)),
                        Text(c.requested_by), Number(static_cast<std::int64_t>(c.ci_ids.size())),
                        Text(with)});
    table.rows.push_back({Number(c.id), Text(c.title), Text(c.risk, c.risk == "critical"),
                          Text(c.state), Text(Stamp(c.planned_start)), Text(Stamp(c.planned_end)),
                          Text(with, !with.empty())});
    CalendarEvent e;
    e.uid = "change-" + std::to_string(c.id) + "@cmdb";
    e.start = c.planned_start;
    e.end = c.planned_end;
    e.summary = "#" + std::to_string(c.id) + " " + c.title + " [" + c.state + "]";
    e.description = T(lang, "Risk: ", "风险：") + c.risk + "\n" +
                    T(lang, "Requested by: ", "申请人：") + c.requested_by + "\n" +
                    T(lang, "CIs: ", "配置项：") + std::to_string(c.ci_ids.size()) +
                    (with.empty() ? "" : "\n" + T(lang, "Collides with ", "冲突：") + with);
    e.status = (c.state == "rejected" || c.state == "cancelled") ? "CANCELLED"
               : (c.state == "draft" || c.state == "submitted")  ? "TENTATIVE"
                                                                 : "CONFIRMED";
    e.categories = {c.risk};
    if (!with.empty()) e.categories.emplace_back("collision");
    events.push_back(std::move(e));
  }
  const std::int64_t collision_count = static_cast<std::int64_t>(collisions.size());
  out.json = json::object{{"from", Stamp(from)},
                          {"to", Stamp(to)},
                          {"changes", std::move(items)},
                          {"collisions", std::move(collisions)}};
  out.ics = ICalendar(T(lang, "cmdb changes", "cmdb 变更日历"), events, now);
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Change calendar", "变更日历");
  doc.facts = {{T(lang, "From", "起"), Stamp(from)},
               {T(lang, "To", "止"), Stamp(to)},
               {T(lang, "Changes", "变更"), std::to_string(changes.size())},
               {T(lang, "Collisions", "冲突"), std::to_string(collision_count)}};
  Section s;
  s.title = T(lang, "Changes", "变更");
  s.notes.push_back(T(lang,
                      "A collision: two changes, neither rejected nor cancelled, whose windows "
                      "overlap and whose impact sets share a CI.",
                      "冲突：两个未被拒绝或取消的变更，时间窗口重叠且影响范围有共同的配置项。"));
  s.tables.push_back(std::move(table));
  doc.sections.push_back(std::move(s));
  return out;
}

}  // namespace cmdb::reports
