#include "model/change_repository.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <set>

#include <boost/json/parse.hpp>

#include "model/ci_type.hpp"
#include "model/ci_type_repository.hpp"
#include "model/db_query.hpp"
#include "model/dependency_graph.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace {

constexpr std::size_t kMaxChangeCis = 10000;
constexpr std::size_t kListedCis = 1000;  // affected CIs listed in an assessment

const char* const kChangeColumns =
    "id, title, description, risk, state, cmdb_us(planned_start), cmdb_us(planned_end), "
    "ci_ids, planned_attributes::text, assessment::text, outcome::text, "
    "version, cmdb_us(created_at), cmdb_us(updated_at)";

Change ChangeFromRow(const PgResult& r, int row) {
  Change c;
  c.id = r.Int(row, 0);
  c.title = std::string(r.Text(row, 1));
  c.description = std::string(r.Text(row, 2));
  c.risk = std::string(r.Text(row, 3));
  c.state = std::string(r.Text(row, 4));
  c.planned_start = Timestamp{r.Int(row, 5)};
  c.planned_end = Timestamp{r.Int(row, 6)};
  c.ci_ids = IdsFromArrayText(r.Text(row, 7));
  c.planned_attributes = r.Json(row, 8).as_object();
  c.assessment = r.Json(row, 9);
  c.outcome = r.Json(row, 10);
  c.version = r.Int(row, 11);
  c.created_at = Timestamp{r.Int(row, 12)};
  c.updated_at = Timestamp{r.Int(row, 13)};
  return c;
}

// Validates a change document; the CIs must exist and planned attributes fit their types.
Change ParseChange(soci::session& sql, const json::value& body) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a change is a JSON object");
  FieldErrors errors;
  Change c;
  CheckFields(*o,
              {"title", "description", "risk", "planned_start", "planned_end", "ci_ids",
               "planned_attributes"},
              errors);
  c.title = RequiredTitle(*o, errors);
  if (const json::value* d = o->if_contains("description")) {
    if (!d->is_string() || d->get_string().size() > 100000) {
      errors.Add("description", "must be a string of at most 100000 characters");
    } else {
      c.description = std::string(d->get_string());
    }
  }
  if (const json::value* risk = o->if_contains("risk")) {
    if (*risk != "low" && *risk != "medium" && *risk != "high" && *risk != "critical") {
      errors.Add("risk", "must be one of low, medium, high, critical");
    } else {
      c.risk = std::string(risk->get_string());
    }
  }
  bool window_ok = true;
  for (const char* field : {"planned_start", "planned_end"}) {
    const json::value* v = o->if_contains(field);
    std::optional<Timestamp> ts;
    if (v != nullptr && v->is_string()) ts = ParseTimestamp(v->get_string());
    if (!ts) {
      errors.Add(field, "required: an RFC 3339 timestamp");
      window_ok = false;
      continue;
    }
    (std::string_view(field) == "planned_start" ? c.planned_start : c.planned_end) = *ts;
  }
  if (window_ok && c.planned_end.micros <= c.planned_start.micros) {
    errors.Add("planned_end", "must be after planned_start");
  }
  const json::value* ids = o->if_contains("ci_ids");
  if (ids == nullptr || !ids->is_array() || ids->get_array().empty() ||
      ids->get_array().size() > kMaxChangeCis) {
    errors.Add("ci_ids", "required: a list of 1 to 10000 CI ids");
  } else {
    c.ci_ids = ParseCiIdList(ids->get_array(), "ci_ids", errors);
  }
  // The CIs and their types.
  std::map<CiId, std::string> types;
  if (!c.ci_ids.empty()) {
    PgResult r = Query(sql, "SELECT id, type FROM configuration_items WHERE id = ANY($1::bigint[])",
                       {IdArrayLiteral(c.ci_ids)});
    for (int i = 0; i < r.rows(); ++i) types[r.Int(i, 0)] = std::string(r.Text(i, 1));
    for (std::size_t i = 0; i < c.ci_ids.size(); ++i) {
      if (!types.contains(c.ci_ids[i])) {
        errors.Add("ci_ids[" + std::to_string(i) + "]",
                   "CI " + std::to_string(c.ci_ids[i]) + " does not exist");
      }
    }
  }
  if (const json::value* planned = o->if_contains("planned_attributes")) {
    if (!planned->is_object()) {
      errors.Add("planned_attributes", "must be an object: {\"<ci id>\": {attribute: value}}");
    } else {
      CiTypeRepository repo(sql);
      std::map<std::string, std::optional<CiType>> loaded;
      for (const auto& [key, attrs] : planned->get_object()) {
        const std::string field = "planned_attributes." + std::string(key);
        CiId ci = 0;
        try {
          std::size_t used = 0;
          ci = std::stoll(std::string(key), &used);
          if (used != key.size()) ci = 0;
        } catch (const std::exception&) {
          ci = 0;
        }
        if (ci <= 0 || std::find(c.ci_ids.begin(), c.ci_ids.end(), ci) == c.ci_ids.end()) {
          errors.Add(field, "must name a CI of ci_ids");
          continue;
        }
        if (!attrs.is_object() || attrs.get_object().empty()) {
          errors.Add(field, "must be an object of attribute values");
          continue;
        }
        auto type_name = types.find(ci);
        if (type_name == types.end()) continue;  // reported under ci_ids
        auto& type = loaded[type_name->second];
        if (!type) type = repo.Find(type_name->second);
        if (!type) continue;
        CiType optional = *type;  // a plan names some attributes, never all required ones
        for (auto& [name, spec] : optional.attributes) spec.required = false;
        ValidateAttributes(optional, attrs.get_object(), errors, field + ".");
        c.planned_attributes[key] = attrs;
      }
    }
  }
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  errors.ThrowIfAny("the change is invalid");
  return c;
}

}  // namespace

json::object ChangeToJson(const Change& c) {
  return {{"id", c.id},
          {"title", c.title},
          {"description", c.description},
          {"risk", c.risk},
          {"state", c.state},
          {"planned_start", FormatTimestamp(c.planned_start)},
          {"planned_end", FormatTimestamp(c.planned_end)},
          {"ci_ids", IdsToJson(c.ci_ids)},
          {"planned_attributes", c.planned_attributes},
          {"allowed_actions", AllowedActions(c.state)},
          {"assessment", c.assessment},
          {"outcome", c.outcome},
          {"version", c.version},
          {"created_at", FormatTimestamp(c.created_at)},
          {"updated_at", FormatTimestamp(c.updated_at)}};
}

const std::vector<ChangeAction>& ChangeActions() {
  static const std::vector<ChangeAction> actions = {
      {"submit", {"draft"}, "submitted"},
      {"approve", {"submitted"}, "approved"},
      {"reject", {"submitted"}, "rejected"},
      {"start", {"approved"}, "in_progress"},
      {"complete", {"in_progress"}, "completed"},
      {"fail", {"in_progress"}, "failed"},
      {"cancel", {"draft", "submitted", "approved"}, "cancelled"},
  };
  return actions;
}

std::string AllowedActions(std::string_view state) {
  std::string out;
  for (const auto& a : ChangeActions()) {
    if (std::find(a.from.begin(), a.from.end(), state) == a.from.end()) continue;
    out += (out.empty() ? "" : ", ") + std::string(a.name);
  }
  return out.empty() ? "none" : out;
}

Change ChangeRepository::Create(const json::value& body, const WriteContext& ctx) {
  Change c = ParseChange(sql_, body);
  Transaction tr(sql_);
  PgResult r = Query(
      sql_,
      std::string("INSERT INTO changes (title, description, risk, planned_start, planned_end, "
                  "ci_ids, planned_attributes, created_by) VALUES ($1, $2, $3, cmdb_ts($4), "
                  "cmdb_ts($5), $6::bigint[], $7::jsonb, $8) RETURNING ") +
          kChangeColumns,
      {P(c.title), P(c.description), P(c.risk), P(c.planned_start.micros), P(c.planned_end.micros),
       IdArrayLiteral(c.ci_ids), ToJsonText(c.planned_attributes), P(ctx.changed_by)});
  Change created = ChangeFromRow(r, 0);
  Query(sql_,
        "INSERT INTO change_events (change_id, action, from_state, to_state, by) VALUES ($1, "
        "'create', NULL, 'draft', $2)",
        {P(created.id), P(ctx.changed_by)});
  tr.Commit();
  return created;
}

std::optional<Change> ChangeRepository::Find(std::int64_t id) {
  PgResult r =
      Query(sql_, std::string("SELECT ") + kChangeColumns + " FROM changes WHERE id = $1", {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return ChangeFromRow(r, 0);
}

std::vector<Change> ChangeRepository::List(const ChangeFilter& filter) {
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kChangeColumns +
                         " FROM changes WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND "
                         "($3::bigint IS NULL OR ci_ids @> ARRAY[$3::bigint]) ORDER BY id LIMIT $4",
                     {P(filter.after), filter.state ? P(*filter.state) : PgParam(std::nullopt),
                      filter.ci ? P(*filter.ci) : PgParam(std::nullopt), P(filter.limit + 1)});
  std::vector<Change> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(ChangeFromRow(r, i));
  return out;
}

ChangeImpact ChangeRepository::ComputeImpact(const Change& change, const DependencyGraph& graph) {
  ImpactQuery q;
  q.root = change.ci_ids.at(0);
  q.also_failing.assign(change.ci_ids.begin() + 1, change.ci_ids.end());
  q.direction = ImpactDirection::kDown;
  q.max_nodes = graph.node_count() + 1;
  q.include_edges = false;
  ImpactResult result;
  try {
    result = graph.Impact(q);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kConflict, std::string(e.what()) + " any more; edit the change's CIs");
  }
  ChangeImpact impact;
  json::array affected;
  json::array services;
  impact.impact_set.reserve(result.nodes.size());
  for (const auto& n : result.nodes) impact.impact_set.push_back(n.id);
  for (std::size_t at : result.services) {
    const NodeView v = result.nodes.View(at);
    services.push_back(
        json::object{{"ci", v.id}, {"name", v.name}, {"distance", result.nodes.Distance(at)}});
  }
  for (std::size_t at = 0; at < result.nodes.size() && at < kListedCis; ++at) {
    const NodeView v = result.nodes.View(at);
    const std::int32_t distance = result.nodes.Distance(at);
    affected.push_back(json::object{{"ci", v.id},
                                    {"name", v.name},
                                    {"type", v.type},
                                    {"status", v.status},
                                    {"distance", distance},
                                    {"in_change", distance == 0}});
  }
  json::array absorbed;
  for (const auto& a : result.absorbed) {
    absorbed.push_back(json::object{{"ci", a.id},
                                    {"providers", a.providers},
                                    {"failed", a.failed},
                                    {"healthy", a.healthy},
                                    {"min_healthy", a.min_healthy}});
  }
  std::sort(impact.impact_set.begin(), impact.impact_set.end());
  const std::string impact_ids = IdArrayLiteral(impact.impact_set);
  json::array open_drift;
  for (const OpenFinding& f : OpenDriftOn(sql_, impact_ids)) {
    open_drift.push_back(json::object{{"finding", f.id},
                                      {"ci", f.ci},
                                      {"attribute", f.attribute},
                                      {"expected", f.expected},
                                      {"actual", f.actual},
                                      {"authorized", f.authorized}});
  }
  PgResult incidents = Query(sql_,
                             "SELECT id, title, severity, tier, state, ci_ids "
                             "FROM incidents WHERE state IN ('new', 'in_progress') AND ci_ids && "
                             "$1::bigint[] ORDER BY severity, id LIMIT 1000",
                             {impact_ids});
  json::array open_incidents;
  for (int i = 0; i < incidents.rows(); ++i) {
    open_incidents.push_back(
        json::object{{"incident", incidents.Int(i, 0)},
                     {"title", incidents.Text(i, 1)},
                     {"severity", incidents.Int(i, 2)},
                     {"tier", incidents.Int(i, 3)},
                     {"state", incidents.Text(i, 4)},
                     {"ci_ids", IdsToJson(IdsFromArrayText(incidents.Text(i, 5)))}});
  }
  impact.assessment = {{"computed_at", FormatTimestamp(Timestamp::Now())},
                       {"affected_count", static_cast<std::int64_t>(impact.impact_set.size())},
                       {"affected", std::move(affected)},
                       {"affected_truncated", impact.impact_set.size() > kListedCis},
                       {"services", std::move(services)},
                       {"absorbed", std::move(absorbed)},
                       {"open_drift", std::move(open_drift)},
                       {"open_incidents", std::move(open_incidents)}};
  return impact;
}

json::array ChangeRepository::Collisions(const Change& change,
                                         const std::vector<CiId>& impact_set) {
  // The changes active in an overlapping window are few (an index range scan); their impact
  // sets are intersected here by merging sorted lists. Asking PostgreSQL for `impact_ci_ids &&
  // $set` instead costs one index probe per CI of a large impact set, and the array overlap
  // operator compares every pair of elements.
  PgResult r = Query(sql_,
                     "SELECT id, title, state, cmdb_us(planned_start), cmdb_us(planned_end), "
                     "impact_ci_ids::text FROM changes WHERE id <> $3 AND state IN ('submitted', "
                     "'approved', 'in_progress') AND planned_start < cmdb_ts($2) AND planned_end > "
                     "cmdb_ts($1) ORDER BY id",
                     {P(change.planned_start.micros), P(change.planned_end.micros), P(change.id)});
  std::vector<CiId> mine = impact_set;
  std::sort(mine.begin(), mine.end());
  json::array out;
  std::vector<CiId> theirs;
  std::vector<CiId> shared;
  for (int i = 0; i < r.rows() && out.size() < 1000; ++i) {
    theirs = IdsFromArrayText(r.Text(i, 5));
    std::sort(theirs.begin(), theirs.end());
    shared.clear();
    std::set_intersection(mine.begin(), mine.end(), theirs.begin(), theirs.end(),
                          std::back_inserter(shared));
    if (shared.empty()) continue;
    const auto count = static_cast<std::int64_t>(shared.size());
    if (shared.size() > 100) shared.resize(100);
    out.push_back(json::object{{"change", r.Int(i, 0)},
                               {"title", r.Text(i, 1)},
                               {"state", r.Text(i, 2)},
                               {"planned_start", FormatTimestamp(Timestamp{r.Int(i, 3)})},
                               {"planned_end", FormatTimestamp(Timestamp{r.Int(i, 4)})},
                               {"shared_count", count},
                               {"shared_cis", IdsToJson(shared)}});
  }
  return out;
}

json::array ChangeRepository::Events(std::int64_t id) {
  PgResult r = Query(sql_,
                     "SELECT cmdb_us(at), action, from_state, to_state, by, reason FROM "
                     "change_events WHERE change_id = $1 ORDER BY at, action",
                     {P(id)});
  json::array out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(
        json::object{{"at", FormatTimestamp(Timestamp{r.Int(i, 0)})},
                     {"action", r.Text(i, 1)},
                     {"from", r.IsNull(i, 2) ? json::value(nullptr) : json::value(r.Text(i, 2))},
                     {"to", r.Text(i, 3)},
                     {"by", r.Text(i, 4)},
                     {"reason", r.Text(i, 5)}});
  }
  return out;
}

namespace {

// On completion: planned values that discovery observed close their findings as authorised
// and become the record (history source change:<id>); the rest is reported.
json::object ApplyPlan(soci::session& sql, const Change& change, const WriteContext& ctx) {
  json::array applied;
  json::array mismatches;
  json::array not_observed;
  json::array already_recorded;
  const std::string by = "change:" + std::to_string(change.id);
  CiRepository cis(sql);
  for (const auto& [key, attrs] : change.planned_attributes) {
    const CiId ci = std::stoll(std::string(key));
    std::optional<ConfigurationItem> record = cis.FindById(ci);
    json::object patch;
    for (const auto& [attribute, planned] : attrs.as_object()) {
      json::object entry{{"ci", ci}, {"attribute", attribute}, {"planned", planned}};
      if (!record) {
        entry["note"] = "the CI was deleted";
        not_observed.push_back(std::move(entry));
        continue;
      }
      PgResult f = Query(sql,
                         "SELECT id, actual::text FROM drift_findings WHERE ci_id = $1 AND "
                         "attribute = $2 AND state = 'open' FOR UPDATE",
                         {P(ci), P(std::string(attribute))});
      const json::value* recorded = record->attributes.if_contains(attribute);
      entry["recorded"] = recorded != nullptr ? *recorded : json::value(nullptr);
      if (f.rows() > 0) {
        json::value observed = f.Json(0, 1);
        entry["observed"] = observed;
        entry["finding"] = f.Int(0, 0);
        if (SameAttributeValue(observed, planned)) {
          Query(sql,
                "UPDATE drift_findings SET state = 'accepted', authorized = true, change_id = $2, "
                "closed_at = clock_timestamp(), closed_by = $3, updated_at = clock_timestamp(), "
                "version = version + 1 WHERE id = $1",
                {P(f.Int(0, 0)), P(change.id), P(by)});
          patch[attribute] = planned;
          applied.push_back(std::move(entry));
        } else {
          mismatches.push_back(std::move(entry));
        }
      } else if (recorded != nullptr && SameAttributeValue(*recorded, planned)) {
        already_recorded.push_back(std::move(entry));
      } else {
        not_observed.push_back(std::move(entry));
      }
    }
    if (!patch.empty()) {
      cis.Patch(ci, json::object{{"attributes", std::move(patch)}}, std::nullopt,
                WriteContext{ctx.changed_by, by});
    }
  }
  return {{"checked_at", FormatTimestamp(Timestamp::Now())},
          {"applied", std::move(applied)},
          {"mismatches", std::move(mismatches)},
          {"not_observed", std::move(not_observed)},
          {"already_recorded", std::move(already_recorded)}};
}

}  // namespace

Change ChangeRepository::Transition(std::int64_t id, std::string_view action,
                                    const std::string& reason, std::optional<std::int64_t> if_match,
                                    const DependencyGraph* graph, const WriteContext& ctx) {
  const auto& actions = ChangeActions();
  auto it = std::find_if(actions.begin(), actions.end(),
                         [&](const ChangeAction& a) { return a.name == action; });
  if (it == actions.end()) {
    throw Error(ErrorCode::kNotFound, "no such action '" + std::string(action) + "'");
  }
  Transaction tr(sql_);
  // The row lock serialises transitions of one change: of two concurrent ones, the second
  // sees the state the first left and is refused.
  PgResult r = Query(
      sql_, std::string("SELECT ") + kChangeColumns + " FROM changes WHERE id = $1 FOR UPDATE",
      {P(id)});
  if (r.rows() == 0)
    throw Error(ErrorCode::kNotFound, "change " + std::to_string(id) + " not found");
  Change change = ChangeFromRow(r, 0);
  if (if_match && *if_match != change.version) {
    throw Error(ErrorCode::kVersionMismatch, "change " + std::to_string(id) + " is at version " +
                                                 std::to_string(change.version) + ", not " +
                                                 std::to_string(*if_match));
  }
  if (std::find(it->from.begin(), it->from.end(), change.state) == it->from.end()) {
    throw Error(ErrorCode::kConflict,
                "change " + std::to_string(id) + " is " + change.state + "; " +
                    std::string(action) +
                    " is not allowed now. Allowed: " + AllowedActions(change.state));
  }
  PgParam assessment = std::nullopt;
  PgParam impact_set = std::nullopt;
  PgParam outcome = std::nullopt;
  if (action == "submit") {
    if (graph == nullptr) throw Error(ErrorCode::kInternal, "submit needs the dependency graph");
    ChangeImpact impact = ComputeImpact(change, *graph);
    impact.assessment["collisions"] = Collisions(change, impact.impact_set);
    assessment = ToJsonText(impact.assessment);
    impact_set = IdArrayLiteral(impact.impact_set);
  } else if (action == "complete") {
    outcome = ToJsonText(ApplyPlan(sql_, change, ctx));
  }
  PgResult u = Query(sql_,
                     std::string("UPDATE changes SET state = $2, assessment = coalesce($3::jsonb, "
                                 "assessment), impact_ci_ids = coalesce($4::bigint[], "
                                 "impact_ci_ids), outcome = coalesce($5::jsonb, outcome), version "
                                 "= version + 1, updated_at = clock_timestamp() WHERE id = $1 "
                                 "RETURNING ") +
                         kChangeColumns,
                     {P(id), P(it->to), assessment, impact_set, outcome});
  Query(sql_,
        "INSERT INTO change_events (change_id, action, from_state, to_state, by, reason) VALUES "
        "($1, $2, $3, $4, $5, $6)",
        {P(id), P(action), P(change.state), P(it->to), P(ctx.changed_by), P(reason)});
  tr.Commit();
  return ChangeFromRow(u, 0);
}

std::map<CiId, std::int64_t> AuthorizingChanges(soci::session& sql, const std::vector<CiId>& cis,
                                                Timestamp at) {
  std::map<CiId, std::int64_t> out;
  if (cis.empty()) return out;
  PgResult r = Query(sql,
                     "SELECT x.ci, min(c.id) FROM changes c CROSS JOIN LATERAL unnest(c.ci_ids) "
                     "AS x(ci) WHERE c.state IN ('approved', 'in_progress') AND c.planned_start <= "
                     "cmdb_ts($2) AND c.planned_end >= cmdb_ts($2) AND c.ci_ids && $1::bigint[] "
                     "AND x.ci = ANY($1::bigint[]) GROUP BY x.ci",
                     {IdArrayLiteral(cis), P(at.micros)});
  for (int i = 0; i < r.rows(); ++i) out[r.Int(i, 0)] = r.Int(i, 1);
  return out;
}

std::vector<OpenFinding> OpenDriftOn(soci::session& sql, const std::string& ci_ids_literal) {
  PgResult r = Query(sql,
                     "SELECT id, ci_id, attribute, expected::text, actual::text, authorized, "
                     "change_id FROM drift_findings WHERE state = 'open' AND ci_id IN (SELECT "
                     "unnest($1::bigint[])) ORDER BY id LIMIT 1000",
                     {ci_ids_literal});
  std::vector<OpenFinding> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    OpenFinding f;
    f.id = r.Int(i, 0);
    f.ci = r.Int(i, 1);
    f.attribute = std::string(r.Text(i, 2));
    f.expected = r.Json(i, 3);
    f.actual = r.Json(i, 4);
    f.authorized = r.Bool(i, 5);
    if (!r.IsNull(i, 6)) f.change = r.Int(i, 6);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace cmdb::model
