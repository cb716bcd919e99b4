#include "model/incident_repository.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include <boost/json/parse.hpp>

#include "model/change_repository.hpp"
#include "model/db_query.hpp"
#include "model/dependency_graph.hpp"
#include "model/error.hpp"
#include "model/graph_cache.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace {

const char* const kIncidentColumns =
    "id, title, description, severity, tier, state, assignee, ci_ids, "
    "cmdb_us(started_at), cmdb_us(tier_since), cmdb_us(response_due), cmdb_us(responded_at), "
    "resolution, version, cmdb_us(created_at), cmdb_us(updated_at), cmdb_us(resolved_at), "
    "cmdb_us(closed_at)";

Incident IncidentFromRow(const PgResult& r, int row) {
  Incident i;
  i.id = r.Int(row, 0);
  i.title = std::string(r.Text(row, 1));
  i.description = std::string(r.Text(row, 2));
  i.severity = static_cast<int>(r.Int(row, 3));
  i.tier = static_cast<int>(r.Int(row, 4));
  i.state = std::string(r.Text(row, 5));
  i.assignee = r.OptionalText(row, 6);
  i.ci_ids = IdsFromArrayText(r.Text(row, 7));
  i.started_at = Timestamp{r.Int(row, 8)};
  i.tier_since = Timestamp{r.Int(row, 9)};
  i.response_due = Timestamp{r.Int(row, 10)};
  i.responded_at = r.OptionalTimestamp(row, 11);
  i.resolution = r.OptionalText(row, 12);
  i.version = r.Int(row, 13);
  i.created_at = Timestamp{r.Int(row, 14)};
  i.updated_at = Timestamp{r.Int(row, 15)};
  i.resolved_at = r.OptionalTimestamp(row, 16);
  i.closed_at = r.OptionalTimestamp(row, 17);
  return i;
}

// Validates ci_ids: a non-empty list of existing CIs, each once. Adds problems to `errors`.
std::vector<CiId> ParseCiIds(soci::session& sql, const json::value* ids, bool required,
                             FieldErrors& errors) {
  std::vector<CiId> out;
  if (ids == nullptr) {
    if (required) errors.Add("ci_ids", "required: a list of CI ids");
    return out;
  }
  if (!ids->is_array() || (required && ids->get_array().empty()) ||
      ids->get_array().size() > 10000) {
    errors.Add("ci_ids",
               required ? "required: a list of 1 to 10000 CI ids" : "must be a list of CI ids");
    return out;
  }
  out = ParseCiIdList(ids->get_array(), "ci_ids", errors);
  if (out.empty()) return out;
  PgResult r = Query(sql, "SELECT id FROM configuration_items WHERE id = ANY($1::bigint[])",
                     {IdArrayLiteral(out)});
  std::set<CiId> found;
  for (int i = 0; i < r.rows(); ++i) found.insert(r.Int(i, 0));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!found.contains(out[i])) {
      errors.Add("ci_ids[" + std::to_string(i) + "]",
                 "CI " + std::to_string(out[i]) + " does not exist");
    }
  }
  return out;
}

std::string Duration(std::int64_t micros) {
  const std::int64_t minutes = micros / 60000000;
  if (minutes < 60) return std::to_string(minutes) + " min";
  if (minutes < std::int64_t{48} * 60) {
    return std::to_string(minutes / 60) + " h" +
           (minutes % 60 != 0 ? " " + std::to_string(minutes % 60) + " min" : "");
  }
  return std::to_string(minutes / (std::int64_t{24} * 60)) + " days";
}

}  // namespace

bool IncidentActionAllowed(std::string_view state, int tier, std::string_view action) {
  if (state == "new" || state == "in_progress") {
    return action == "assign" || action == "resolve" || (action == "escalate" && tier < 3);
  }
  return state == "resolved" && action == "close";
}

std::string AllowedIncidentActions(std::string_view state, int tier) {
  std::string out;
  for (std::string_view action : {"assign", "escalate", "resolve", "close"}) {
    if (IncidentActionAllowed(state, tier, action))
      out += (out.empty() ? "" : ", ") + std::string(action);
  }
  return out.empty() ? "none" : out;
}

json::object IncidentToJson(const Incident& i, Timestamp now) {
  json::object o{{"id", i.id},
                 {"title", i.title},
                 {"description", i.description},
                 {"severity", i.severity},
                 {"tier", i.tier},
                 {"state", i.state},
                 {"assignee", i.assignee ? json::value(*i.assignee) : json::value(nullptr)},
                 {"ci_ids", IdsToJson(i.ci_ids)},
                 {"started_at", FormatTimestamp(i.started_at)},
                 {"tier_since", FormatTimestamp(i.tier_since)},
                 {"response_due", FormatTimestamp(i.response_due)},
                 {"responded_at", TimestampJson(i.responded_at)},
                 {"resolution", i.resolution ? json::value(*i.resolution) : json::value(nullptr)},
                 {"allowed_actions", AllowedIncidentActions(i.state, i.tier)},
                 {"version", i.version},
                 {"created_at", FormatTimestamp(i.created_at)},
                 {"updated_at", FormatTimestamp(i.updated_at)},
                 {"resolved_at", TimestampJson(i.resolved_at)},
                 {"closed_at", TimestampJson(i.closed_at)}};
  // Met: answered by the due time. Overdue: not answered and past it.
  o["response_met"] = i.responded_at ? json::value(i.responded_at->micros <= i.response_due.micros)
                                     : json::value(nullptr);
  o["overdue"] = !i.responded_at && now.micros > i.response_due.micros;
  return o;
}

WorkingCalendar IncidentRepository::Calendar() {
  PgResult r = Query(sql_, "SELECT config::text FROM service_calendar WHERE id = 1");
  return ParseWorkingCalendar(r.rows() > 0 ? r.Json(0, 0) : json::value(json::object{}));
}

WorkingCalendar IncidentRepository::PutCalendar(const json::value& config) {
  WorkingCalendar calendar = ParseWorkingCalendar(config);
  Query(sql_,
        "UPDATE service_calendar SET config = $1::jsonb, version = version + 1, updated_at = "
        "clock_timestamp() WHERE id = 1",
        {ToJsonText(config)});
  return calendar;
}

Incident IncidentRepository::Create(const json::value& body, const WriteContext& ctx) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an incident is a JSON object");
  FieldErrors errors;
  CheckFields(*o, {"title", "description", "severity", "tier", "ci_ids", "started_at", "assignee"},
              errors);
  Incident i;
  i.title = RequiredTitle(*o, errors);
  if (const json::value* d = o->if_contains("description")) {
    if (!d->is_string() || d->get_string().size() > 100000) {
      errors.Add("description", "must be a string of at most 100000 characters");
    } else {
      i.description = std::string(d->get_string());
    }
  }
  const json::value* severity = o->if_contains("severity");
  if (severity == nullptr || !severity->is_int64() || severity->get_int64() < 1 ||
      severity->get_int64() > 4) {
    errors.Add("severity", "required: 1 (critical) to 4 (low)");
  } else {
    i.severity = static_cast<int>(severity->get_int64());
  }
  if (const json::value* tier = o->if_contains("tier")) {
    if (!tier->is_int64() || tier->get_int64() < 1 || tier->get_int64() > 3) {
      errors.Add("tier", "must be 1 (first line), 2 (second line) or 3 (vendor)");
    } else {
      i.tier = static_cast<int>(tier->get_int64());
    }
  }
  const Timestamp now = Timestamp::Now();
  i.started_at = now;
  if (const json::value* s = o->if_contains("started_at")) {
    std::optional<Timestamp> t = s->is_string() ? ParseTimestamp(s->get_string()) : std::nullopt;
    if (!t || t->micros > now.micros + 60LL * 1000000) {
      errors.Add("started_at", "must be an RFC 3339 timestamp, not in the future");
    } else {
      i.started_at = *t;
    }
  }
  if (const json::value* a = o->if_contains("assignee"); a != nullptr && !a->is_null()) {
    if (!a->is_string() || a->get_string().empty() || a->get_string().size() > 200) {
      errors.Add("assignee", "must be a name of 1 to 200 characters, or null");
    } else {
      i.assignee = std::string(a->get_string());
    }
  }
  i.ci_ids = ParseCiIds(sql_, o->if_contains("ci_ids"), true, errors);
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  errors.ThrowIfAny("the incident is invalid");
  Transaction tr(sql_);
  const WorkingCalendar calendar = Calendar();
  // The response clock starts when the incident is raised in this tier.
  const Timestamp due = ResponseDue(calendar, i.tier, now);
  PgResult r = Query(
      sql_,
      std::string("INSERT INTO incidents (title, description, severity, tier, state, assignee, "
                  "ci_ids, started_at, tier_since, response_due, created_by) VALUES ($1, $2, $3, "
                  "$4, CASE WHEN $5::text IS NULL THEN 'new' ELSE 'in_progress' END, $5, "
                  "$6::bigint[], cmdb_ts($7), cmdb_ts($8), cmdb_ts($9), $10) RETURNING ") +
          kIncidentColumns,
      {P(i.title), P(i.description), P(i.severity), P(i.tier), P(i.assignee),
       IdArrayLiteral(i.ci_ids), P(i.started_at.micros), P(now.micros), P(due.micros),
       P(ctx.changed_by)});
  Incident created = IncidentFromRow(r, 0);
  Query(sql_,
        "INSERT INTO incident_events (incident_id, action, from_state, to_state, from_tier, "
        "to_tier, by) VALUES ($1, 'create', NULL, $2, NULL, $3, $4)",
        {P(created.id), P(created.state), P(created.tier), P(ctx.changed_by)});
  tr.Commit();
  return created;
}

std::optional<Incident> IncidentRepository::Find(std::int64_t id) {
  PgResult r = Query(
      sql_, std::string("SELECT ") + kIncidentColumns + " FROM incidents WHERE id = $1", {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return IncidentFromRow(r, 0);
}

std::vector<Incident> IncidentRepository::List(const IncidentFilter& f) {
  PgResult r = Query(
      sql_,
      std::string("SELECT ") + kIncidentColumns +
          " FROM incidents WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS "
          "NULL OR ci_ids @> ARRAY[$3::bigint]) AND ($4::integer IS NULL OR severity = $4) AND "
          "($5::integer IS NULL OR tier = $5) ORDER BY id LIMIT $6",
      {P(f.after), f.state ? P(*f.state) : PgParam(std::nullopt),
       f.ci ? P(*f.ci) : PgParam(std::nullopt), f.severity ? P(*f.severity) : PgParam(std::nullopt),
       f.tier ? P(*f.tier) : PgParam(std::nullopt), P(f.limit + 1)});
  std::vector<Incident> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(IncidentFromRow(r, i));
  return out;
}

Incident IncidentRepository::Act(std::int64_t id, std::string_view action, const json::object& body,
                                 std::optional<std::int64_t> if_match, const WriteContext& ctx) {
  FieldErrors errors;
  auto text = [&](const char* field, bool required) -> std::optional<std::string> {
    const json::value* v = body.if_contains(field);
    if (v == nullptr || v->is_null()) {
      if (required) errors.Add(field, "required");
      return std::nullopt;
    }
    if (!v->is_string() || v->get_string().size() > 10000 ||
        (required && v->get_string().find_first_not_of(" \t\r\n") == json::string::npos)) {
      errors.Add(field, required ? "required: a non-blank string" : "must be a string");
      return std::nullopt;
    }
    return std::string(v->get_string());
  };
  std::optional<std::string> assignee;
  std::optional<std::string> reason;
  if (action == "assign") {
    CheckFields(body, {"assignee", "reason"}, errors);
    assignee = text("assignee", true);
    reason = text("reason", false);
  } else if (action == "escalate") {
    CheckFields(body, {"reason"}, errors);
    reason = text("reason", true);
  } else if (action == "resolve") {
    CheckFields(body, {"resolution"}, errors);
    reason = text("resolution", false);
  } else if (action == "close") {
    CheckFields(body, {"reason"}, errors);
    reason = text("reason", false);
  } else {
    throw Error(ErrorCode::kNotFound, "no such action '" + std::string(action) + "'");
  }
  errors.ThrowIfAny("the " + std::string(action) + " request is invalid");
  Transaction tr(sql_);
  PgResult r = Query(
      sql_, std::string("SELECT ") + kIncidentColumns + " FROM incidents WHERE id = $1 FOR UPDATE",
      {P(id)});
  if (r.rows() == 0)
    throw Error(ErrorCode::kNotFound, "incident " + std::to_string(id) + " not found");
  Incident i = IncidentFromRow(r, 0);
  if (if_match && *if_match != i.version) {
    throw Error(ErrorCode::kVersionMismatch, "incident " + std::to_string(id) + " is at version " +
                                                 std::to_string(i.version) + ", not " +
                                                 std::to_string(*if_match));
  }
  if (!IncidentActionAllowed(i.state, i.tier, action)) {
    throw Error(
        ErrorCode::kConflict,
        "incident " + std::to_string(id) + " is " + i.state + " at tier " + std::to_string(i.tier) +
            "; " + std::string(action) + " is not allowed now" +
            (action == "escalate" && i.tier == 3 ? " (tier 3, the vendor, is the last)" : "") +
            ". Allowed: " + AllowedIncidentActions(i.state, i.tier));
  }
  const Timestamp now = Timestamp::Now();
  std::string state = i.state;
  int tier = i.tier;
  Timestamp due = i.response_due;
  Timestamp tier_since = i.tier_since;
  // Microseconds of the first response in this tier; -1: none yet.
  std::int64_t responded = i.responded_at ? i.responded_at->micros : -1;
  if (action == "assign") {
    state = "in_progress";
    if (responded < 0) responded = now.micros;
  } else if (action == "escalate") {
    tier += 1;
    tier_since = now;
    due = ResponseDue(Calendar(), tier, now);  // the next tier's clock starts now
    responded = -1;
    assignee.reset();
    state = "new";
  } else if (action == "resolve") {
    state = "resolved";
    if (responded < 0) responded = now.micros;
  } else if (action == "close") {
    state = "closed";
  }
  const bool clear_assignee = action == "escalate";
  PgResult u = Query(
      sql_,
      std::string(
          "UPDATE incidents SET state = $2, tier = $3, tier_since = cmdb_ts($4), response_due "
          "= cmdb_ts($5), responded_at = cmdb_ts($6), assignee = CASE WHEN $7 THEN NULL "
          "ELSE coalesce($8, assignee) END, resolution = CASE WHEN $2 = 'resolved' THEN $9 "
          "ELSE resolution END, resolved_at = CASE WHEN $2 = 'resolved' THEN "
          "clock_timestamp() ELSE resolved_at END, closed_at = CASE WHEN $2 = 'closed' "
          "THEN clock_timestamp() ELSE closed_at END, version = version + 1, updated_at = "
          "clock_timestamp() WHERE id = $1 RETURNING ") +
          kIncidentColumns,
      {P(id), P(state), P(tier), P(tier_since.micros), P(due.micros),
       responded >= 0 ? P(responded) : PgParam(std::nullopt), P(clear_assignee ? "true" : "false"),
       P(assignee), P(reason)});
  Query(sql_,
        "INSERT INTO incident_events (incident_id, action, from_state, to_state, from_tier, "
        "to_tier, by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        {P(id), P(action), P(i.state), P(state), P(i.tier), P(tier), P(ctx.changed_by),
         P(reason.value_or(assignee ? "assigned to " + *assignee : ""))});
  tr.Commit();
  return IncidentFromRow(u, 0);
}

json::array IncidentRepository::Events(std::int64_t id) {
  PgResult r = Query(sql_,
                     "SELECT cmdb_us(at), action, from_state, to_state, from_tier, to_tier, by, "
                     "reason FROM incident_events WHERE incident_id = $1 ORDER BY at",
                     {P(id)});
  json::array out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(json::object{
        {"at", FormatTimestamp(Timestamp{r.Int(i, 0)})},
        {"action", r.Text(i, 1)},
        {"from", r.IsNull(i, 2) ? json::value(nullptr) : json::value(r.Text(i, 2))},
        {"to", r.Text(i, 3)},
        {"from_tier", r.IsNull(i, 4) ? json::value(nullptr) : json::value(r.Int(i, 4))},
        {"to_tier", r.Int(i, 5)},
        {"by", r.Text(i, 6)},
        {"reason", r.Text(i, 7)}});
  }
  return out;
}

json::object IncidentRepository::Trace(const Incident& incident, const TraceOptions& options) {
  // The graph as it was when the incident started: the in-memory one when nothing changed
  // since, else rebuilt from history.
  std::shared_ptr<const DependencyGraph> rebuilt;
  const DependencyGraph* graph = options.current;
  bool from_history = false;
  if (graph == nullptr || options.current_since.micros > incident.started_at.micros) {
    rebuilt =
        std::make_shared<const DependencyGraph>(LoadDependencyGraph(sql_, incident.started_at));
    graph = rebuilt.get();
    from_history = true;
  }
  std::vector<CiId> roots;
  json::array missing;
  for (CiId id : incident.ci_ids) {
    if (graph->Find(id)) {
      roots.push_back(id);
    } else {
      missing.emplace_back(id);
    }
  }
  json::object out{{"incident", incident.id},
                   {"as_of", FormatTimestamp(incident.started_at)},
                   {"graph", from_history ? "history" : "current"},
                   {"cis_missing_then", std::move(missing)}};
  json::array services;
  std::int64_t reached = 0;
  std::unordered_map<CiId, int> upstream;  // CIs the incident's CIs depend on, with distance
  if (!roots.empty()) {
    ImpactQuery q;
    q.root = roots[0];
    q.also_failing.assign(roots.begin() + 1, roots.end());
    q.max_nodes = graph->node_count() + 1;
    q.include_edges = false;
    ImpactResult down = graph->Impact(q);
    reached = static_cast<std::int64_t>(down.nodes.size());
    for (std::size_t at : down.services) {
      const NodeView v = down.nodes.View(at);
      services.push_back(
          json::object{{"ci", v.id}, {"name", v.name}, {"distance", down.nodes.Distance(at)}});
    }
    q.direction = ImpactDirection::kUp;
    ImpactResult up = graph->Impact(q);
    upstream.reserve(up.nodes.size() + incident.ci_ids.size());
    for (const auto& n : up.nodes) upstream.emplace(n.id, n.distance);
  }
  out["services"] = std::move(services);
  out["reached_count"] = reached;
  std::vector<CiId> involved;
  involved.reserve(upstream.size() + incident.ci_ids.size());
  for (const auto& [id, distance] : upstream) involved.push_back(id);
  for (CiId id : incident.ci_ids) {
    if (!upstream.contains(id)) {
      involved.push_back(id);
      upstream.emplace(id, 0);
    }
  }
  const std::string involved_ids = IdArrayLiteral(involved);

  // Suspects: changes on those CIs completed within the look-back window before the start,
  // or in progress when it started.
  const std::int64_t window = std::int64_t{options.lookback_hours} * 3600 * 1000000;
  // Suspects come from three index-driven parts, disjoint by construction: changes completed
  // within the window (a range of completion events: completed is final, so one each);
  // changes in progress now that started by then; changes that started by then and completed
  // or failed after the start (they were in progress when it started; a range of finishing
  // events). Which of them touch the CIs involved is decided here, against the closure in
  // memory, because the closure of a CI that depends on much can hold 100k CIs (one index
  // probe each in PostgreSQL); a small closure is looked up through the index on the changes'
  // CIs instead. Narrow rows (no titles; the CIs as PostgreSQL's array text): thousands of
  // changes can fall in the window, and the titles of the suspects are read afterwards.
  // Columns: id, state now, CIs, when (completion or start), completed (in the window).
  const bool small = involved.size() <= 2000;
  const char* const started_by =
      "CROSS JOIN LATERAL (SELECT max(at) AS at FROM change_events WHERE change_id = c.id AND "
      "to_state = 'in_progress') s WHERE s.at <= cmdb_ts($1) AND ($3::bigint[] IS NULL OR "
      "c.ci_ids && $3::bigint[])";
  PgResult c = Query(
      sql_,
      std::string("SELECT c.id, c.state, c.ci_ids::text, cmdb_us(e.at), true FROM change_events "
                  "e JOIN changes c ON c.id = e.change_id WHERE e.to_state = 'completed' AND "
                  "e.at BETWEEN cmdb_ts($2) AND cmdb_ts($1) AND ($3::bigint[] IS NULL OR "
                  "c.ci_ids && $3::bigint[]) "
                  "UNION ALL SELECT c.id, c.state, c.ci_ids::text, cmdb_us(s.at), false FROM "
                  "changes c ") +
          started_by +
          " AND c.state = 'in_progress' "
          "UNION ALL SELECT c.id, c.state, c.ci_ids::text, cmdb_us(s.at), false FROM (SELECT "
          "DISTINCT change_id FROM change_events WHERE to_state IN ('completed', 'failed') AND "
          "at > cmdb_ts($1)) f JOIN changes c ON c.id = f.change_id " +
          started_by,
      {P(incident.started_at.micros), P(incident.started_at.micros - window),
       small ? PgParam(involved_ids) : PgParam(std::nullopt)});
  struct Suspect {
    json::object json;
    int distance;
    std::int64_t before;
  };
  std::vector<Suspect> suspects;
  std::vector<std::int64_t> suspect_ids;
  for (int i = 0; i < c.rows(); ++i) {
    const std::int64_t when = c.Int(i, 3);
    int best = 1 << 30;
    CiId via = 0;
    for (CiId ci : IdsFromArrayText(c.Text(i, 2))) {
      auto u = upstream.find(ci);
      if (u != upstream.end() && u->second < best) {
        best = u->second;
        via = ci;
      }
    }
    if (via == 0) continue;  // on nothing the incident's CIs depend on
    std::optional<NodeView> v = graph->Find(via);
    const std::string name = v ? std::string(v->name) : "CI " + std::to_string(via);
    const std::string state(c.Text(i, 1));
    const bool completed_before = c.Bool(i, 4);
    const std::int64_t before = incident.started_at.micros - when;
    std::string reason = completed_before ? "completed " : "in progress since ";
    reason += Duration(before);
    reason += " before the incident started";
    if (!completed_before && state != "in_progress") reason += " (" + state + " since)";
    reason += ", on ";
    reason += name;
    if (best == 0) {
      reason += ", one of the incident's CIs";
    } else {
      reason += ", which the incident's CIs depend on (distance " + std::to_string(best) + ")";
    }
    suspect_ids.push_back(c.Int(i, 0));
    suspects.push_back({json::object{{"change", c.Int(i, 0)},
                                     {"title", ""},
                                     {"state", state},
                                     {"at", FormatTimestamp(Timestamp{when})},
                                     {"ci", via},
                                     {"distance", best},
                                     {"reason", reason}},
                        best, before});
  }
  if (!suspects.empty()) {
    PgResult t = Query(sql_, "SELECT id, title FROM changes WHERE id = ANY($1::bigint[])",
                       {IdArrayLiteral(suspect_ids)});
    std::unordered_map<std::int64_t, std::string> titles;
    for (int i = 0; i < t.rows(); ++i) titles.emplace(t.Int(i, 0), std::string(t.Text(i, 1)));
    for (Suspect& s : suspects) s.json["title"] = titles[s.json.at("change").as_int64()];
  }
  std::sort(suspects.begin(), suspects.end(), [](const Suspect& a, const Suspect& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.before < b.before;
  });
  json::array ranked;
  for (auto& s : suspects) {
    s.json["rank"] = static_cast<std::int64_t>(ranked.size()) + 1;
    ranked.push_back(std::move(s.json));
  }
  out["suspect_changes"] = std::move(ranked);
  out["lookback_hours"] = options.lookback_hours;

  json::array drift;
  for (const OpenFinding& f : OpenDriftOn(sql_, involved_ids)) {
    drift.push_back(
        json::object{{"finding", f.id},
                     {"ci", f.ci},
                     {"attribute", f.attribute},
                     {"expected", f.expected},
                     {"actual", f.actual},
                     {"authorized", f.authorized},
                     {"change", f.change ? json::value(*f.change) : json::value(nullptr)}});
  }
  out["drift"] = std::move(drift);
  // Approved articles are few next to a closure; they are filtered here for the same reason.
  PgResult k = Query(sql_,
                     "SELECT id, title, ci_ids FROM knowledge_articles WHERE "
                     "state = 'approved' AND cardinality(ci_ids) > 0 ORDER BY id");
  json::array knowledge;
  for (int i = 0; i < k.rows() && knowledge.size() < 100; ++i) {
    std::vector<CiId> ids = IdsFromArrayText(k.Text(i, 2));
    if (std::none_of(ids.begin(), ids.end(), [&](CiId id) { return upstream.contains(id); })) {
      continue;
    }
    knowledge.push_back(json::object{
        {"article", k.Int(i, 0)}, {"title", k.Text(i, 1)}, {"ci_ids", IdsToJson(ids)}});
  }
  out["knowledge"] = std::move(knowledge);
  return out;
}

// --- knowledge ---

namespace {

const char* const kArticleColumns =
    "id, title, body, ci_ids, state, approved_by, cmdb_us(approved_at), "
    "version, cmdb_us(created_at), cmdb_us(updated_at)";

Article ArticleFromRow(const PgResult& r, int row) {
  Article a;
  a.id = r.Int(row, 0);
  a.title = std::string(r.Text(row, 1));
  a.body = std::string(r.Text(row, 2));
  a.ci_ids = IdsFromArrayText(r.Text(row, 3));
  a.state = std::string(r.Text(row, 4));
  a.approved_by = r.OptionalText(row, 5);
  a.approved_at = r.OptionalTimestamp(row, 6);
  a.version = r.Int(row, 7);
  a.created_at = Timestamp{r.Int(row, 8)};
  a.updated_at = Timestamp{r.Int(row, 9)};
  return a;
}

}  // namespace

json::object ArticleToJson(const Article& a) {
  return {{"id", a.id},
          {"title", a.title},
          {"body", a.body},
          {"ci_ids", IdsToJson(a.ci_ids)},
          {"state", a.state},
          {"approved_by", a.approved_by ? json::value(*a.approved_by) : json::value(nullptr)},
          {"approved_at", TimestampJson(a.approved_at)},
          {"version", a.version},
          {"created_at", FormatTimestamp(a.created_at)},
          {"updated_at", FormatTimestamp(a.updated_at)}};
}

Article KnowledgeRepository::Create(const json::value& body, const WriteContext& ctx) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an article is a JSON object");
  FieldErrors errors;
  CheckFields(*o, {"title", "body", "ci_ids"}, errors);
  Article a;
  a.title = RequiredTitle(*o, errors);
  const json::value* text = o->if_contains("body");
  if (text == nullptr || !text->is_string() || text->get_string().empty() ||
      text->get_string().size() > 1000000) {
    errors.Add("body", "required: a string of 1 to 1000000 characters");
  } else {
    a.body = std::string(text->get_string());
  }
  a.ci_ids = ParseCiIds(sql_, o->if_contains("ci_ids"), false, errors);
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  errors.ThrowIfAny("the article is invalid");
  PgResult r = Query(sql_,
                     std::string("INSERT INTO knowledge_articles (title, body, ci_ids, created_by) "
                                 "VALUES ($1, $2, $3::bigint[], $4) RETURNING ") +
                         kArticleColumns,
                     {P(a.title), P(a.body), IdArrayLiteral(a.ci_ids), P(ctx.changed_by)});
  return ArticleFromRow(r, 0);
}

std::optional<Article> KnowledgeRepository::Find(std::int64_t id) {
  PgResult r = Query(
      sql_, std::string("SELECT ") + kArticleColumns + " FROM knowledge_articles WHERE id = $1",
      {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return ArticleFromRow(r, 0);
}

std::vector<Article> KnowledgeRepository::List(const ArticleFilter& f) {
  PgResult r = Query(
      sql_,
      std::string("SELECT ") + kArticleColumns +
          " FROM knowledge_articles WHERE id > $1 AND ($2::text IS NULL OR search @@ "
          "plainto_tsquery('simple', $2)) AND ($3::text IS NULL OR state = $3) AND ($4::bigint "
          "IS NULL OR ci_ids @> ARRAY[$4::bigint]) ORDER BY id LIMIT $5",
      {P(f.after), f.q ? P(*f.q) : PgParam(std::nullopt),
       f.state ? P(*f.state) : PgParam(std::nullopt), f.ci ? P(*f.ci) : PgParam(std::nullopt),
       P(f.limit + 1)});
  std::vector<Article> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(ArticleFromRow(r, i));
  return out;
}

Article KnowledgeRepository::Approve(std::int64_t id, std::optional<std::int64_t> if_match,
                                     const WriteContext& ctx) {
  Transaction tr(sql_);
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kArticleColumns +
                         " FROM knowledge_articles WHERE id = $1 FOR UPDATE",
                     {P(id)});
  if (r.rows() == 0)
    throw Error(ErrorCode::kNotFound, "article " + std::to_string(id) + " not found");
  Article a = ArticleFromRow(r, 0);
  if (if_match && *if_match != a.version) {
    throw Error(ErrorCode::kVersionMismatch, "article " + std::to_string(id) + " is at version " +
                                                 std::to_string(a.version) + ", not " +
                                                 std::to_string(*if_match));
  }
  if (a.state != "draft") {
    throw Error(ErrorCode::kConflict, "article " + std::to_string(id) + " is already approved");
  }
  PgResult u =
      Query(sql_,
            std::string("UPDATE knowledge_articles SET state = 'approved', approved_by = $2, "
                        "approved_at = clock_timestamp(), version = version + 1, "
                        "updated_at = clock_timestamp() WHERE id = $1 RETURNING ") +
                kArticleColumns,
            {P(id), P(ctx.changed_by)});
  tr.Commit();
  return ArticleFromRow(u, 0);
}

}  // namespace cmdb::model
