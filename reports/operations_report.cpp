#include "reports/operations_report.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include <boost/json.hpp>

#include "model/json.hpp"
#include "reports/report_text.hpp"

namespace cmdb::reports {

namespace json = boost::json;
using model::Timestamp;

namespace {

constexpr std::int64_t kMinute = std::int64_t{60} * 1000000;

std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// One tier's clock on an incident: from creation or an escalation to the next escalation.
struct Stint {
  std::int64_t incident = 0;
  int tier = 1;
  Timestamp start;
  Timestamp due;
  std::optional<Timestamp> responded_at;  // first assign, resolve or escalate in the tier
  std::string responder;
  std::optional<Timestamp> analysed_at;  // tier 2: a plan linked or a resolution
};

std::vector<Stint> StintsOf(const store::ReportIncident& r, const model::WorkingCalendar& calendar,
                            const std::vector<const model::IncidentChange*>& plans) {
  std::vector<Stint> out;
  for (const model::IncidentEvent& e : r.events) {
    const bool opens = e.action == "create" || e.action == "escalate";
    if (!out.empty() && !out.back().responded_at &&
        (e.action == "assign" || e.action == "resolve" || e.action == "escalate")) {
      out.back().responded_at = e.at;
      out.back().responder = e.by;
    }
    if (!out.empty() && out.back().tier == 2 && !out.back().analysed_at && e.action == "resolve") {
      out.back().analysed_at = e.at;
    }
    if (opens) {
      Stint s;
      s.incident = r.incident.id;
      s.tier = e.to_tier;
      s.start = e.at;
      s.due = e.response_due.value_or(model::ResponseDue(calendar, e.to_tier, e.at));
      out.push_back(std::move(s));
    }
  }
  // A plan made while the incident was at tier 2 is second line's analysis.
  for (Stint& s : out) {
    if (s.tier != 2) continue;
    for (const model::IncidentChange* p : plans) {
      if (p->linked_at >= s.start && (!s.analysed_at || p->linked_at < *s.analysed_at) &&
          p->linked_tier.value_or(2) == 2) {
        s.analysed_at = p->linked_at;
      }
    }
  }
  return out;
}

bool In(Timestamp t, Timestamp start, Timestamp end) { return t >= start && t < end; }

struct Mean {
  std::int64_t sum = 0;
  std::int64_t count = 0;
  void Add(int v) {
    sum += v;
    ++count;
  }
  json::value Json() const {
    if (count == 0) return nullptr;
    return static_cast<double>(sum) / static_cast<double>(count);
  }
  double Value() const {
    return count == 0 ? 0 : static_cast<double>(sum) / static_cast<double>(count);
  }
};

struct TierFigures {
  std::int64_t opened = 0, resolved = 0, backlog = 0, met = 0, missed = 0, pending = 0,
               escalations = 0, reopened = 0;
};

struct HandlerFigures {
  std::int64_t resolved = 0, responses = 0, responses_met = 0, callbacks_made = 0, complaints = 0,
               knowledge_submitted = 0, knowledge_approved = 0;
  Mean satisfaction;
  std::optional<double> score;
};

struct ServiceFigures {
  std::int64_t incidents = 0;
  std::vector<std::pair<Timestamp, Timestamp>> severe;  // intervals, clipped to the month
  Mean satisfaction;
  std::int64_t key_users = 0;
  std::int64_t key_users_called = 0;
};

// Minutes covered by the union of `intervals`.
std::int64_t UnionMinutes(std::vector<std::pair<Timestamp, Timestamp>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::int64_t micros = 0;
  Timestamp end{INT64_MIN};
  for (const auto& [a, b] : intervals) {
    const Timestamp from = std::max(a, end);
    if (b > from) {
      micros += b.micros - from.micros;
      end = b;
    }
  }
  return micros / kMinute;
}

}  // namespace

std::optional<MonthWindow> MonthBounds(std::string_view month, int utc_offset_minutes) {
  if (month.size() != 7 || month[4] != '-') return std::nullopt;
  for (std::size_t i : {0, 1, 2, 3, 5, 6}) {
    if (month[i] < '0' || month[i] > '9') return std::nullopt;
  }
  const int y = std::stoi(std::string(month.substr(0, 4)));
  const int m = std::stoi(std::string(month.substr(5, 2)));
  if (m < 1 || m > 12 || y < 1970 || y > 9998) return std::nullopt;
  const std::int64_t offset = std::int64_t{utc_offset_minutes} * kMinute;
  const std::int64_t day = std::int64_t{86400} * 1000000;
  MonthWindow w;
  w.start.micros = DaysFromCivil(y, static_cast<unsigned>(m), 1) * day - offset;
  w.end.micros =
      DaysFromCivil(m == 12 ? y + 1 : y, static_cast<unsigned>(m == 12 ? 1 : m + 1), 1) * day -
      offset;
  return w;
}

OperationsReport BuildOperationsReport(const std::string& month, const store::OperationsData& d,
                                       const ServicesOf& services_of, Timestamp now, Lang lang) {
  const Timestamp start = d.start;
  const Timestamp end = d.end;
  const Timestamp horizon = std::min(now, end);  // "at the end of the month", or now if sooner

  std::unordered_map<std::int64_t, std::vector<const model::IncidentChange*>> plans_of;
  for (const model::IncidentChange& p : d.plans) plans_of[p.incident_id].push_back(&p);

  std::map<int, TierFigures> tiers{{1, {}}, {2, {}}, {3, {}}};
  std::map<std::string, HandlerFigures> handlers;
  std::map<std::int64_t, ServiceFigures> services;
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> reach;  // incident -> services
  std::int64_t analyses_in_time = 0, analyses_late = 0, analyses_pending = 0;

  for (const store::ReportIncident& r : d.incidents) {
    const model::Incident& inc = r.incident;
    const std::vector<Stint> stints = StintsOf(r, d.calendar, plans_of[inc.id]);
    for (const Stint& s : stints) {
      if (!In(s.start, start, end)) continue;
      TierFigures& t = tiers[s.tier];
      ++t.opened;
      if (s.responded_at) {
        const bool met = *s.responded_at <= s.due;
        ++(met ? t.met : t.missed);
        HandlerFigures& h = handlers[s.responder];
        ++h.responses;
        if (met) ++h.responses_met;
      } else if (s.due < now) {
        ++t.missed;
      } else {
        ++t.pending;
      }
      if (s.tier == 2) {
        // Second line analyses an escalated problem within one working day.
        const Timestamp deadline =
            model::AddWorkingMinutes(d.calendar, s.start, d.calendar.day_minutes());
        if (s.analysed_at) {
          ++(*s.analysed_at <= deadline ? analyses_in_time : analyses_late);
        } else if (deadline < now) {
          ++analyses_late;
        } else {
          ++analyses_pending;
        }
      }
    }
    // State at the end of the month: the last event before it.
    std::optional<model::IncidentState> state_at_end;
    int tier_at_end = inc.tier;
    for (const model::IncidentEvent& e : r.events) {
      if (e.at >= end) break;
      state_at_end = e.to;
      tier_at_end = e.to_tier;
      if (!In(e.at, start, end)) continue;
      if (e.action == "resolve") {
        ++tiers[e.to_tier].resolved;
        ++handlers[e.by].resolved;
      } else if (e.action == "escalate" && e.from_tier) {
        ++tiers[*e.from_tier].escalations;
      } else if (e.action == "reopen") {
        ++tiers[e.to_tier].reopened;
      }
    }
    if (state_at_end && (*state_at_end == model::IncidentState::kNew ||
                         *state_at_end == model::IncidentState::kInProgress)) {
      ++tiers[tier_at_end].backlog;
    }
    // Services: what the incident's CIs reach (on the graph as it is now).
    std::vector<std::int64_t> reached = services_of(inc.ci_ids);
    for (std::int64_t s : reached) {
      ServiceFigures& f = services[s];
      if (In(inc.started_at, start, end)) ++f.incidents;
      if (inc.severity <= 2) {
        // Open from its start until its resolution (reopening extends it to the last one).
        Timestamp to = inc.resolved_at.value_or(horizon);
        if (state_at_end && (*state_at_end == model::IncidentState::kNew ||
                             *state_at_end == model::IncidentState::kInProgress)) {
          to = horizon;
        }
        const Timestamp a = std::max(inc.started_at, start);
        const Timestamp b = std::min(to, horizon);
        if (b > a) f.severe.emplace_back(a, b);
      }
    }
    reach.emplace(inc.id, std::move(reached));
  }

  // Callbacks: satisfaction per handler (who resolved the incident) and per service; calls made.
  std::set<std::pair<std::int64_t, std::int64_t>> called;  // (key user, service) reached
  for (const model::Callback& c : d.callbacks) {
    ++handlers[c.caller].callbacks_made;
    if (c.kind == model::CallbackKind::kIncident) {
      if (!c.score) continue;
      if (auto resolver = d.resolvers.find(*c.incident_id); resolver != d.resolvers.end()) {
        handlers[resolver->second].satisfaction.Add(*c.score);
      }
      if (auto r = reach.find(*c.incident_id); r != reach.end()) {
        for (std::int64_t s : r->second) services[s].satisfaction.Add(*c.score);
      }
    } else {
      if (c.score) services[*c.service_id].satisfaction.Add(*c.score);
      if (c.reached) called.emplace(*c.key_user_id, *c.service_id);
    }
  }
  json::array uncovered;
  std::int64_t pairs = 0;
  for (const model::KeyUser& u : d.key_users) {
    for (std::int64_t s : u.service_ids) {
      ++pairs;
      ServiceFigures& f = services[s];
      ++f.key_users;
      if (called.contains({u.id, s})) {
        ++f.key_users_called;
      } else {
        auto name = d.service_names.find(s);
        uncovered.push_back(json::object{
            {"key_user_id", u.id},
            {"key_user", u.name},
            {"service_id", s},
            {"service", name != d.service_names.end() ? json::value(name->second) : nullptr}});
      }
    }
  }
  const std::int64_t covered = pairs - static_cast<std::int64_t>(uncovered.size());

  // Complaints.
  std::int64_t complaints_opened = 0, complaints_closed = 0, complaints_open_at_end = 0,
               complaints_overdue = 0;
  json::array open_complaints;
  for (const model::Complaint& c : d.complaints) {
    if (In(c.created_at, start, end)) {
      ++complaints_opened;
      if (c.handler) ++handlers[*c.handler].complaints;
    }
    if (c.closed_at && In(*c.closed_at, start, end)) ++complaints_closed;
    const bool open_at_end = c.created_at < end && (!c.closed_at || *c.closed_at >= end);
    if (open_at_end) ++complaints_open_at_end;
    const bool overdue = c.state != model::ComplaintState::kClosed && c.due_at < now;
    if (overdue) ++complaints_overdue;
    if (c.state != model::ComplaintState::kClosed) {
      open_complaints.push_back(
          json::object{{"id", c.id},
                       {"title", c.title},
                       {"state", model::NameIn(model::kComplaintStateNames, c.state)},
                       {"owner", c.owner},
                       {"due_at", model::FormatTimestamp(c.due_at)},
                       {"overdue", overdue}});
    }
  }

  // Knowledge.
  for (const store::ReportArticle& a : d.articles) {
    if (In(a.created_at, start, end)) ++handlers[a.created_by].knowledge_submitted;
    if (a.approved_at && In(*a.approved_at, start, end))
      ++handlers[a.created_by].knowledge_approved;
  }

  // Plans delivered by their promised date.
  std::int64_t plans_on_time = 0, plans_late = 0, plans_open = 0;
  for (const model::IncidentChange& p : d.plans) {
    if (!In(p.promised_by, start, end)) continue;
    if (p.completed_at && *p.completed_at <= p.promised_by) {
      ++plans_on_time;
    } else if (p.completed_at || p.promised_by < now) {
      ++plans_late;
    } else {
      ++plans_open;
    }
  }

  // The assessment: the mean of the shares available (responses in time; satisfaction scaled
  // from 1-5 to 0-1), times 100, less 5 points per complaint about the handler, within 0-100.
  handlers.erase("");
  for (auto& [name, h] : handlers) {
    std::vector<double> parts;
    if (h.responses > 0)
      parts.push_back(static_cast<double>(h.responses_met) / static_cast<double>(h.responses));
    if (h.satisfaction.count > 0) parts.push_back((h.satisfaction.Value() - 1) / 4);
    if (parts.empty()) continue;
    double mean = 0;
    for (double p : parts) mean += p;
    mean = mean * 100 / static_cast<double>(parts.size()) - 5.0 * static_cast<double>(h.complaints);
    h.score = std::clamp(mean, 0.0, 100.0);
  }
  std::vector<std::pair<std::string, const HandlerFigures*>> ranked;
  for (const auto& [name, h] : handlers) ranked.emplace_back(name, &h);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second->score.has_value() != b.second->score.has_value())
      return a.second->score.has_value();
    if (a.second->score && *a.second->score != *b.second->score)
      return *a.second->score > *b.second->score;
    if (a.second->resolved != b.second->resolved) return a.second->resolved > b.second->resolved;
    return a.first < b.first;
  });

  // --- JSON ---
  OperationsReport out;
  json::object& j = out.json;
  j["month"] = month;
  j["from"] = model::FormatTimestamp(start);
  j["to"] = model::FormatTimestamp(end);
  j["generated_at"] = model::FormatTimestamp(now);
  j["calendar"] = model::WorkingCalendarToJson(d.calendar);
  json::array tier_rows;
  for (const auto& [tier, t] : tiers) {
    tier_rows.push_back(
        json::object{{"tier", tier},
                     {"opened", t.opened},
                     {"resolved", t.resolved},
                     {"backlog", t.backlog},
                     {"response", json::object{{"met", t.met},
                                               {"missed", t.missed},
                                               {"pending", t.pending},
                                               {"met_rate", Ratio(t.met, t.met + t.missed)}}},
                     {"escalations", t.escalations},
                     {"reopened", t.reopened},
                     {"reopen_rate", Ratio(t.reopened, t.resolved)}});
  }
  j["tiers"] = std::move(tier_rows);
  j["second_line"] = json::object{
      {"analyses",
       json::object{{"within_one_working_day", analyses_in_time},
                    {"late", analyses_late},
                    {"pending", analyses_pending},
                    {"rate", Ratio(analyses_in_time, analyses_in_time + analyses_late)}}},
      {"plans", json::object{{"on_time", plans_on_time},
                             {"late", plans_late},
                             {"open", plans_open},
                             {"rate", Ratio(plans_on_time, plans_on_time + plans_late)}}}};
  json::array handler_rows;
  int rank = 0;
  for (const auto& [name, h] : ranked) {
    handler_rows.push_back(
        json::object{{"rank", ++rank},
                     {"name", name},
                     {"resolved", h->resolved},
                     {"responses", h->responses},
                     {"responses_met", h->responses_met},
                     {"satisfaction", h->satisfaction.Json()},
                     {"scored_callbacks", h->satisfaction.count},
                     {"callbacks_made", h->callbacks_made},
                     {"complaints", h->complaints},
                     {"knowledge_submitted", h->knowledge_submitted},
                     {"knowledge_approved", h->knowledge_approved},
                     {"score", h->score ? json::value(*h->score) : json::value(nullptr)}});
  }
  j["handlers"] = std::move(handler_rows);
  json::array service_rows;
  std::map<std::int64_t, std::int64_t> severe_minutes;
  for (const auto& [id, f] : services) {
    auto name = d.service_names.find(id);
    severe_minutes[id] = UnionMinutes(f.severe);
    service_rows.push_back(
        json::object{{"id", id},
                     {"name", name != d.service_names.end() ? json::value(name->second) : nullptr},
                     {"incidents", f.incidents},
                     {"severe_open_minutes", severe_minutes[id]},
                     {"satisfaction", f.satisfaction.Json()},
                     {"scored_callbacks", f.satisfaction.count},
                     {"key_users", f.key_users},
                     {"key_users_called", f.key_users_called}});
  }
  j["services"] = std::move(service_rows);
  std::map<std::string, std::int64_t> by_state{
      {"completed", 0}, {"failed", 0}, {"rejected", 0}, {"cancelled", 0}};
  // Changes followed within 72 hours of their completion by an incident on a CI of their
  // impact set (d.started is in start order).
  json::array followed;
  constexpr std::int64_t k72Hours = std::int64_t{72} * 60 * kMinute;
  for (const store::ReportChange& c : d.changes) {
    ++by_state[c.state];
    if (c.state != "completed") continue;
    std::vector<std::int64_t> impact = c.impact;
    std::sort(impact.begin(), impact.end());
    auto first = std::lower_bound(
        d.started.begin(), d.started.end(), c.ended_at,
        [](const store::StartedIncident& i, Timestamp t) { return i.started_at < t; });
    std::vector<std::int64_t> hit;
    for (auto it = first;
         it != d.started.end() && it->started_at.micros < c.ended_at.micros + k72Hours; ++it) {
      for (std::int64_t ci : it->ci_ids) {
        if (std::binary_search(impact.begin(), impact.end(), ci)) {
          hit.push_back(it->id);
          break;
        }
      }
    }
    if (!hit.empty()) {
      std::sort(hit.begin(), hit.end());
      followed.push_back(json::object{{"change_id", c.id},
                                      {"title", c.title},
                                      {"completed_at", model::FormatTimestamp(c.ended_at)},
                                      {"incident_ids", model::IdsToJson(hit)}});
    }
  }
  const std::int64_t followed_count = static_cast<std::int64_t>(followed.size());
  json::object changes;
  for (const auto& [state, n] : by_state) changes[state] = n;
  changes["followed_by_incident_within_72h"] = std::move(followed);
  j["changes"] = std::move(changes);
  j["drift"] = json::object{{"opened", d.drift.opened},
                            {"resolved", d.drift.resolved},
                            {"accepted", d.drift.accepted},
                            {"ignored", d.drift.ignored},
                            {"open_at_end", d.drift.open_at_end},
                            {"unauthorised_open_at_end", d.drift.unauthorised_open_at_end}};
  auto audit_json = [](const std::optional<store::ReportAuditScore>& s) -> json::value {
    if (!s) return nullptr;
    return json::object{{"at", model::FormatTimestamp(s->at)},
                        {"run_id", s->run_id},
                        {"pass", s->pass},
                        {"fail", s->fail},
                        {"score", Ratio(s->pass, s->pass + s->fail)}};
  };
  j["audit"] = json::object{{"start", audit_json(d.audit_start)}, {"end", audit_json(d.audit_end)}};
  j["callback_coverage"] = json::object{{"key_user_services", pairs},
                                        {"covered", covered},
                                        {"rate", Ratio(covered, pairs)},
                                        {"uncovered", uncovered}};
  j["complaints"] = json::object{{"opened", complaints_opened},
                                 {"closed", complaints_closed},
                                 {"open_at_end", complaints_open_at_end},
                                 {"overdue", complaints_overdue},
                                 {"open", open_complaints}};

  // --- Document ---
  Document& doc = out.document;
  doc.lang = lang;
  doc.generated_at = now;
  doc.title = T(lang, "Operations review ", "运维月度报告 ") + month;
  doc.facts = {{T(lang, "Month", "月份"), month},
               {T(lang, "From", "起"), model::FormatTimestamp(start)},
               {T(lang, "To", "止"), model::FormatTimestamp(end)}};
  {
    Section s;
    s.title = T(lang, "Incidents by tier", "各线事件");
    Chart chart;
    chart.title = T(lang, "Incidents opened per tier", "各线新增事件");
    Table table;
    table.headers = {T(lang, "Tier", "支持线"),          T(lang, "Opened", "新增"),
                     T(lang, "Resolved", "解决"),        T(lang, "Backlog at end", "月末积压"),
                     T(lang, "Targets met", "响应达标"), T(lang, "Missed", "超时"),
                     T(lang, "Pending", "待响应"),       T(lang, "Met rate", "达标率"),
                     T(lang, "Escalations", "升级"),     T(lang, "Reopened", "重开"),
                     T(lang, "Reopen rate", "重开率")};
    for (const auto& [tier, t] : tiers) {
      const std::string label = T(lang, "Tier ", "第") + std::to_string(tier) + T(lang, "", "线");
      chart.points.push_back({label, static_cast<double>(t.opened), std::to_string(t.opened)});
      table.rows.push_back({Text(label), Number(t.opened), Number(t.resolved), Number(t.backlog),
                            Number(t.met), Number(t.missed, t.missed > 0), Number(t.pending),
                            Percent(t.met, t.met + t.missed), Number(t.escalations),
                            Number(t.reopened), Percent(t.reopened, t.resolved)});
    }
    s.charts.push_back(std::move(chart));
    s.tables.push_back(std::move(table));
    Table second;
    second.title = T(lang, "Second line", "二线");
    second.headers = {T(lang, "Figure", "指标"), T(lang, "In time", "按时"),
                      T(lang, "Late", "超时"), T(lang, "Pending", "进行中"),
                      T(lang, "Rate", "比率")};
    second.rows.push_back({Text(T(lang, "Analyses within one working day", "一个工作日内完成分析")),
                           Number(analyses_in_time), Number(analyses_late, analyses_late > 0),
                           Number(analyses_pending),
                           Percent(analyses_in_time, analyses_in_time + analyses_late)});
    second.rows.push_back(
        {Text(T(lang, "Plans delivered by the promised date", "按承诺日期交付的方案")),
         Number(plans_on_time), Number(plans_late, plans_late > 0), Number(plans_open),
         Percent(plans_on_time, plans_on_time + plans_late)});
    s.tables.push_back(std::move(second));
    doc.sections.push_back(std::move(s));
  }
  {
    Section s;
    s.title = T(lang, "Monthly assessment of staff", "人员月度考核");
    s.notes.push_back(
        T(lang,
          "Score: the mean of the share of responses in time and of satisfaction "
          "(1-5 scaled to 0-1), times 100, less 5 points per complaint.",
          "得分：按时响应比例与满意度（1-5 折算为 0-1）的平均值乘以 100，每件投诉扣 5 分。"));
    Table table;
    table.headers = {T(lang, "Staff", "人员"),
                     T(lang, "Rank", "名次"),
                     T(lang, "Score", "得分"),
                     T(lang, "Resolved", "解决"),
                     T(lang, "Responses in time", "按时响应"),
                     T(lang, "Satisfaction", "满意度"),
                     T(lang, "Callbacks made", "回访次数"),
                     T(lang, "Complaints", "投诉"),
                     T(lang, "Knowledge submitted", "提交知识"),
                     T(lang, "Knowledge approved", "知识通过")};
    table.empty_text = T(lang, "No staff activity this month.", "本月无人员活动。");
    int r = 0;
    for (const auto& [name, h] : ranked) {
      table.rows.push_back(
          {Text(name), Number(++r), Decimal(h->score.value_or(0), 1, h->score.has_value()),
           Number(h->resolved),
           Text(std::to_string(h->responses_met) + " / " + std::to_string(h->responses)),
           Decimal(h->satisfaction.Value(), 2, h->satisfaction.count > 0),
           Number(h->callbacks_made), Number(h->complaints, h->complaints > 0),
           Number(h->knowledge_submitted), Number(h->knowledge_approved)});
    }
    s.tables.push_back(std::move(table));
    doc.sections.push_back(std::move(s));
  }
  {
    Section s;
    s.title = T(lang, "Business services", "业务服务");
    Chart chart;
    chart.title = T(lang, "Satisfaction per service (1-5)", "各服务满意度（1-5）");
    chart.max = 5;
    Table table;
    table.headers = {
        T(lang, "Service", "服务"),
        T(lang, "Incidents", "事件"),
        T(lang, "Hours with an open severity 1-2 incident", "一二级事件未解决时长（小时）"),
        T(lang, "Satisfaction", "满意度"),
        T(lang, "Key users", "关键用户"),
        T(lang, "Called", "已回访")};
    table.empty_text = T(lang, "No service had incidents, callbacks or key users.", "无服务数据。");
    for (const auto& [id, f] : services) {
      auto name = d.service_names.find(id);
      const std::string label =
          name != d.service_names.end() ? name->second : "#" + std::to_string(id);
      if (f.satisfaction.count > 0) {
        chart.points.push_back(
            {label, f.satisfaction.Value(), Decimal(f.satisfaction.Value(), 2).text});
      }
      table.rows.push_back({Text(label), Number(f.incidents),
                            Decimal(static_cast<double>(severe_minutes[id]) / 60.0, 1),
                            Decimal(f.satisfaction.Value(), 2, f.satisfaction.count > 0),
                            Number(f.key_users),
                            Number(f.key_users_called, f.key_users_called < f.key_users)});
    }
    if (!chart.points.empty()) s.charts.push_back(std::move(chart));
    s.tables.push_back(std::move(table));
    doc.sections.push_back(std::move(s));
  }
  {
    Section s;
    s.title = T(lang, "Changes, drift and audit", "变更、偏差与审计");
    Table changes_table;
    changes_table.title = T(lang, "Changes that ended this month", "本月结束的变更");
    changes_table.headers = {T(lang, "Outcome", "结果"), T(lang, "Changes", "数量")};
    const std::map<std::string, std::string> outcome_zh{{"completed", "已完成"},
                                                        {"failed", "失败"},
                                                        {"rejected", "已拒绝"},
                                                        {"cancelled", "已取消"}};
    for (const auto& [state, n] : by_state) {
      changes_table.rows.push_back({Text(lang == Lang::kZh ? outcome_zh.at(state) : state),
                                    Number(n, state == "failed" && n > 0)});
    }
    changes_table.rows.push_back({Text(T(lang, "completed and followed by an incident within 72 h",
                                         "完成后 72 小时内发生事件")),
                                  Number(followed_count, followed_count > 0)});
    s.tables.push_back(std::move(changes_table));
    Table drift;
    drift.title = T(lang, "Drift", "配置偏差");
    drift.headers = {T(lang, "Figure", "指标"), T(lang, "Findings", "数量")};
    drift.rows = {{Text(T(lang, "opened", "新发现")), Number(d.drift.opened)},
                  {Text(T(lang, "resolved", "已解决")), Number(d.drift.resolved)},
                  {Text(T(lang, "accepted", "已接受")), Number(d.drift.accepted)},
                  {Text(T(lang, "ignored", "已忽略")), Number(d.drift.ignored)},
                  {Text(T(lang, "open at the end", "月末未关闭")), Number(d.drift.open_at_end)},
                  {Text(T(lang, "unauthorised, open at the end", "未授权且未关闭")),
                   Number(d.drift.unauthorised_open_at_end, d.drift.unauthorised_open_at_end > 0)}};
    s.tables.push_back(std::move(drift));
    Table audit;
    audit.title = T(lang, "Audit score (baseline)", "审计得分（基线）");
    audit.headers = {T(lang, "When", "时点"), T(lang, "Score", "得分"), T(lang, "Run", "运行")};
    auto audit_row = [&](const char* en, const char* zh,
                         const std::optional<store::ReportAuditScore>& sc) {
      if (!sc) {
        audit.rows.push_back({Text(T(lang, en, zh)), Text("–"), Text("–")});
        return;
      }
      audit.rows.push_back(
          {Text(T(lang, en, zh)), Percent(sc->pass, sc->pass + sc->fail),
           Text("#" + std::to_string(sc->run_id) + " " + model::FormatTimestamp(sc->at))});
    };
    audit_row("start of the month", "月初", d.audit_start);
    audit_row("end of the month", "月末", d.audit_end);
    s.tables.push_back(std::move(audit));
    doc.sections.push_back(std::move(s));
  }
  {
    Section s;
    s.title = T(lang, "Quality review", "质量回访");
    Table coverage;
    coverage.title = T(lang, "Callback coverage of key users", "关键用户回访覆盖");
    coverage.headers = {T(lang, "Figure", "指标"), T(lang, "Value", "值")};
    coverage.rows = {
        {Text(T(lang, "key user and service pairs", "关键用户-服务对")), Number(pairs)},
        {Text(T(lang, "called this month", "本月已回访")), Number(covered)},
        {Text(T(lang, "coverage", "覆盖率")), Percent(covered, pairs, covered < pairs)}};
    s.tables.push_back(std::move(coverage));
    Table missing;
    missing.title = T(lang, "Key users not reached this month", "本月未回访的关键用户");
    missing.headers = {T(lang, "Key user", "关键用户"), T(lang, "Service", "服务")};
    missing.empty_text = T(lang, "Every key user was reached.", "所有关键用户均已回访。");
    for (const json::value& u : uncovered) {
      const json::object& o = u.as_object();
      missing.rows.push_back({Text(std::string(o.at("key_user").as_string()), true),
                              Text(o.at("service").is_string()
                                       ? std::string(o.at("service").as_string())
                                       : "#" + std::to_string(o.at("service_id").as_int64()))});
    }
    s.tables.push_back(std::move(missing));
    Table complaints;
    complaints.title = T(lang, "Complaints", "投诉");
    complaints.headers = {T(lang, "Figure", "指标"), T(lang, "Complaints", "数量")};
    complaints.rows = {
        {Text(T(lang, "opened", "新增")), Number(complaints_opened)},
        {Text(T(lang, "closed", "关闭")), Number(complaints_closed)},
        {Text(T(lang, "open at the end", "月末未关闭")), Number(complaints_open_at_end)},
        {Text(T(lang, "overdue now", "当前逾期")),
         Number(complaints_overdue, complaints_overdue > 0)}};
    s.tables.push_back(std::move(complaints));
    Table open;
    open.title = T(lang, "Open complaints", "未关闭的投诉");
    open.headers = {"#", T(lang, "Title", "标题"), T(lang, "State", "状态"),
                    T(lang, "Owner", "负责人"), T(lang, "Due", "期限")};
    open.empty_text = T(lang, "No open complaints.", "无未关闭的投诉。");
    for (const json::value& v : open_complaints) {
      const json::object& o = v.as_object();
      const bool late = o.at("overdue").as_bool();
      open.rows.push_back({Number(o.at("id").as_int64()),
                           Text(std::string(o.at("title").as_string())),
                           Text(std::string(o.at("state").as_string())),
                           Text(std::string(o.at("owner").as_string())),
                           Text(std::string(o.at("due_at").as_string()) +
                                    (late ? T(lang, " (overdue)", "（逾期）") : ""),
                                late)});
    }
    s.tables.push_back(std::move(open));
    doc.sections.push_back(std::move(s));
  }
  return out;
}

}  // namespace cmdb::reports
