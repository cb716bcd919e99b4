#include "store/change_repository.hpp"

#include <algorithm>

#include "model/ci_type.hpp"
#include "model/json.hpp"
#include "store/ci_repository.hpp"
#include "store/ci_type_repository.hpp"
#include "store/drift_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::Change;
using model::ChangeState;
using model::CiId;
using model::CiType;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
using model::Timestamp;
using model::WriteContext;
namespace json = boost::json;

namespace {

const char* const kChangeColumns =
    "id, title, description, risk, state, cmdb_us(planned_start), cmdb_us(planned_end), "
    "ci_ids::text, planned_attributes::text, assessment::text, outcome::text, "
    "version, cmdb_us(created_at), cmdb_us(updated_at), created_by, (SELECT "
    "coalesce(array_agg(ic.incident_id ORDER BY ic.incident_id), '{}')::text FROM "
    "incident_changes ic WHERE ic.change_id = changes.id)";

ChangeState StateFrom(const std::string& name) {
  std::optional<ChangeState> state = model::ChangeStateFromName(name);
  if (!state) throw Error(ErrorCode::kInternal, "unknown change state '" + name + "' stored");
  return *state;
}

Change ChangeFromRow(const soci::row& r) {
  Change c;
  c.id = sql::Int(r, 0);
  c.title = sql::Text(r, 1);
  c.description = sql::Text(r, 2);
  c.risk = sql::Text(r, 3);
  c.state = StateFrom(sql::Text(r, 4));
  c.planned_start = sql::Time(r, 5);
  c.planned_end = sql::Time(r, 6);
  c.ci_ids = sql::Ids(r, 7);
  c.planned_attributes = sql::Json(r, 8).as_object();
  c.assessment = sql::Json(r, 9);
  c.outcome = sql::Json(r, 10);
  c.version = sql::Int(r, 11);
  c.created_at = sql::Time(r, 12);
  c.updated_at = sql::Time(r, 13);
  c.requested_by = sql::Text(r, 14);
  c.incident_ids = sql::Ids(r, 15);
  return c;
}

std::string What(std::int64_t id) { return "change " + std::to_string(id); }

// On completion: planned values that discovery observed close their findings as authorised
// and become the record (history source change:<id>); the rest is reported.
json::object ApplyPlan(DbSession& db, const Change& change, const WriteContext& ctx) {
  json::array applied;
  json::array mismatches;
  json::array not_observed;
  json::array already_recorded;
  const std::string by = "change:" + std::to_string(change.id);
  CiRepository cis(db);
  DriftRepository drift(db);
  for (const auto& [key, attrs] : change.planned_attributes) {
    const CiId ci = std::stoll(std::string(key));
    std::optional<model::ConfigurationItem> record = cis.FindById(ci);
    json::object patch;
    for (const auto& [attribute, planned] : attrs.as_object()) {
      json::object entry{{"ci", ci}, {"attribute", attribute}, {"planned", planned}};
      if (!record) {
        entry["note"] = "the CI was deleted";
        not_observed.push_back(std::move(entry));
        continue;
      }
      std::optional<model::DriftFinding> finding = drift.LockOpen(ci, attribute);
      const json::value* recorded = record->attributes.if_contains(attribute);
      entry["recorded"] = recorded != nullptr ? *recorded : json::value(nullptr);
      if (finding) {
        entry["observed"] = finding->actual;
        entry["finding"] = finding->id;
        if (model::SameAttributeValue(finding->actual, planned)) {
          drift.AcceptAuthorized(finding->id, change.id, by);
          patch[attribute] = planned;
          applied.push_back(std::move(entry));
        } else {
          mismatches.push_back(std::move(entry));
        }
      } else if (recorded != nullptr && model::SameAttributeValue(*recorded, planned)) {
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
  return {{"checked_at", model::FormatTimestamp(Timestamp::Now())},
          {"applied", std::move(applied)},
          {"mismatches", std::move(mismatches)},
          {"not_observed", std::move(not_observed)},
          {"already_recorded", std::move(already_recorded)}};
}

}  // namespace

void ChangeRepository::Validate(const Change& draft, FieldErrors& errors) {
  if (!draft.incident_ids.empty()) {
    std::vector<CiId> found;
    sql::ForEachRow(
        db_, "SELECT id FROM incidents WHERE id = ANY($1::bigint[])",
        [&](const soci::row& r) { found.push_back(sql::Int(r, 0)); },
        soci::use(sql::IdArray(draft.incident_ids)));
    for (std::size_t i = 0; i < draft.incident_ids.size(); ++i) {
      if (std::find(found.begin(), found.end(), draft.incident_ids[i]) == found.end()) {
        errors.Add("incident_ids[" + std::to_string(i) + "]",
                   "incident " + std::to_string(draft.incident_ids[i]) + " does not exist");
      }
    }
  }
  const std::map<CiId, std::string> types =
      CiRepository(db_).CheckExist(draft.ci_ids, "ci_ids", errors);
  CiTypeRepository repo(db_);
  std::map<std::string, std::optional<CiType>> loaded;
  for (const auto& [key, attrs] : draft.planned_attributes) {
    auto type_name = types.find(std::stoll(std::string(key)));
    if (type_name == types.end()) continue;  // reported under ci_ids
    auto& type = loaded[type_name->second];
    if (!type) type = repo.Find(type_name->second);
    if (!type) continue;
    CiType optional = *type;  // a plan names some attributes, never all required ones
    for (auto& [name, spec] : optional.attributes) spec.required = false;
    ValidateAttributes(optional, attrs.as_object(), errors,
                       "planned_attributes." + std::string(key) + ".");
  }
}

Change ChangeRepository::Create(const Change& draft, const WriteContext& ctx) {
  Transaction tr(db_);
  std::optional<Change> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO changes (title, description, risk, planned_start, planned_end, "
                  "ci_ids, planned_attributes, created_by) VALUES ($1, $2, $3, cmdb_ts($4), "
                  "cmdb_ts($5), $6::bigint[], $7::jsonb, $8) RETURNING ") +
          kChangeColumns,
      [&](const soci::row& r) { created = ChangeFromRow(r); }, soci::use(draft.title),
      soci::use(draft.description), soci::use(draft.risk),
      soci::use(static_cast<long long>(draft.planned_start.micros)),
      soci::use(static_cast<long long>(draft.planned_end.micros)),
      soci::use(sql::IdArray(draft.ci_ids)), soci::use(model::ToJsonText(draft.planned_attributes)),
      soci::use(ctx.changed_by));
  sql::Execute(db_,
               "INSERT INTO change_events (change_id, action, from_state, to_state, by) VALUES "
               "($1, 'create', NULL, 'draft', $2)",
               soci::use(static_cast<long long>(created->id)), soci::use(ctx.changed_by));
  if (!draft.incident_ids.empty()) {
    // Second line's plan: the change answers these incidents by the promised date.
    sql::Execute(
        db_,
        "INSERT INTO incident_changes (incident_id, change_id, promised_by, linked_by, "
        "linked_tier) SELECT i.id, $2, cmdb_ts($3), $4, i.tier FROM incidents i WHERE "
        "i.id = ANY($1::bigint[])",
        soci::use(sql::IdArray(draft.incident_ids)), soci::use(static_cast<long long>(created->id)),
        soci::use(static_cast<long long>(draft.promised_by->micros)), soci::use(ctx.changed_by));
    created->incident_ids = draft.incident_ids;
    std::sort(created->incident_ids.begin(), created->incident_ids.end());
  }
  tr.Commit();
  return *created;
}

std::optional<Change> ChangeRepository::Find(std::int64_t id) {
  std::optional<Change> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kChangeColumns + " FROM changes WHERE id = $1",
      [&](const soci::row& r) { found = ChangeFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<Change> ChangeRepository::List(const ChangeFilter& filter) {
  const std::optional<std::string> state =
      filter.state ? std::optional(std::string(model::ChangeStateName(*filter.state)))
                   : std::nullopt;
  const std::optional<long long> ci = filter.ci;
  std::vector<Change> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kChangeColumns +
          " FROM changes WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS "
          "NULL OR ci_ids @> ARRAY[$3::bigint]) ORDER BY id LIMIT $4",
      [&](const soci::row& r) { out.push_back(ChangeFromRow(r)); },
      soci::use(static_cast<long long>(filter.after)), soci::use(state), soci::use(ci),
      soci::use(filter.limit + 1));
  return out;
}

Change ChangeRepository::Transition(std::int64_t id, std::string_view action_name,
                                    const std::string& reason, std::optional<std::int64_t> if_match,
                                    const AssessChange& assess, const WriteContext& ctx) {
  const model::ChangeAction& action = model::FindChangeAction(action_name);
  Transaction tr(db_);
  // The row lock serialises transitions of one change: of two concurrent ones, the second
  // sees the state the first left and is refused.
  static const std::string lock =
      std::string("SELECT ") + kChangeColumns + " FROM changes WHERE id = $1 FOR UPDATE";
  const Change change =
      LockVersioned(db_, lock, std::to_string(id), if_match, What(id), ChangeFromRow);
  if (std::find(action.from.begin(), action.from.end(), change.state) == action.from.end()) {
    throw Error(ErrorCode::kConflict,
                What(id) + " is " + std::string(model::ChangeStateName(change.state)) + "; " +
                    std::string(action.name) +
                    " is not allowed now. Allowed: " + AllowedActions(change.state));
  }
  if ((action.to == ChangeState::kApproved || action.to == ChangeState::kRejected) &&
      change.requested_by == ctx.changed_by) {
    throw Error(ErrorCode::kPermissionDenied,
                "no one reviews a change they requested: " + What(id) + " was requested by '" +
                    ctx.changed_by + "'; another change_reviewer must " + std::string(action.name) +
                    " it");
  }
  std::optional<std::string> assessment;
  std::optional<std::string> impact_set;
  std::optional<std::string> outcome;
  if (action.to == ChangeState::kSubmitted) {
    if (!assess) throw Error(ErrorCode::kInternal, "submit needs the change's assessment");
    FrozenAssessment frozen = assess(change);
    assessment = model::ToJsonText(frozen.assessment);
    impact_set = sql::IdArray(frozen.impact_set);
  } else if (action.to == ChangeState::kCompleted) {
    outcome = model::ToJsonText(ApplyPlan(db_, change, ctx));
  }
  const std::string to(model::ChangeStateName(action.to));
  const std::string from(model::ChangeStateName(change.state));
  std::optional<Change> updated;
  sql::ForEachRow(
      db_,
      std::string("UPDATE changes SET state = $2, assessment = coalesce($3::jsonb, assessment), "
                  "impact_ci_ids = coalesce($4::bigint[], impact_ci_ids), outcome = "
                  "coalesce($5::jsonb, outcome), version = version + 1, updated_at = "
                  "clock_timestamp() WHERE id = $1 RETURNING ") +
          kChangeColumns,
      [&](const soci::row& r) { updated = ChangeFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(to), soci::use(assessment),
      soci::use(impact_set), soci::use(outcome));
  sql::Execute(db_,
               "INSERT INTO change_events (change_id, action, from_state, to_state, by, reason) "
               "VALUES ($1, $2, $3, $4, $5, $6)",
               soci::use(static_cast<long long>(id)), soci::use(std::string(action.name)),
               soci::use(from), soci::use(to), soci::use(ctx.changed_by), soci::use(reason));
  tr.Commit();
  return *updated;
}

std::vector<CiId> ChangeRepository::FrozenImpactSet(std::int64_t id) {
  std::vector<CiId> ids;
  sql::ForEachRow(
      db_, "SELECT impact_ci_ids::text FROM changes WHERE id = $1 AND impact_ci_ids IS NOT NULL",
      [&](const soci::row& r) { ids = sql::Ids(r, 0); }, soci::use(static_cast<long long>(id)));
  return ids;
}

std::vector<model::ChangeEvent> ChangeRepository::Events(std::int64_t id) {
  std::vector<model::ChangeEvent> out;
  sql::ForEachRow(
      db_,
      "SELECT cmdb_us(at), action, from_state, to_state, by, reason FROM change_events WHERE "
      "change_id = $1 ORDER BY at, action",
      [&](const soci::row& r) {
        model::ChangeEvent e;
        e.at = sql::Time(r, 0);
        e.action = sql::Text(r, 1);
        if (!sql::IsNull(r, 2)) e.from = StateFrom(sql::Text(r, 2));
        e.to = StateFrom(sql::Text(r, 3));
        e.by = sql::Text(r, 4);
        e.reason = sql::Text(r, 5);
        out.push_back(std::move(e));
      },
      soci::use(static_cast<long long>(id)));
  return out;
}

std::vector<ActiveChange> ChangeRepository::ActiveInWindow(Timestamp start, Timestamp end,
                                                           std::int64_t except) {
  std::vector<ActiveChange> out;
  sql::ForEachRow(
      db_,
      "SELECT id, title, state, cmdb_us(planned_start), cmdb_us(planned_end), "
      "coalesce(impact_ci_ids, '{}')::text FROM changes WHERE id <> $3 AND state IN "
      "('submitted', 'approved', 'in_progress') AND planned_start < cmdb_ts($2) AND "
      "planned_end > cmdb_ts($1) ORDER BY id",
      [&](const soci::row& r) {
        out.push_back({sql::Int(r, 0), sql::Text(r, 1), StateFrom(sql::Text(r, 2)), sql::Time(r, 3),
                       sql::Time(r, 4), sql::Ids(r, 5)});
      },
      soci::use(static_cast<long long>(start.micros)),
      soci::use(static_cast<long long>(end.micros)), soci::use(static_cast<long long>(except)));
  return out;
}

std::vector<SuspectChange> ChangeRepository::Suspects(Timestamp at, Timestamp window_start,
                                                      const std::optional<std::vector<CiId>>& cis) {
  // Three index-driven parts, disjoint by construction: changes completed within the window (a
  // range of completion events: completed is final, so one each); changes in progress now that
  // started by then; changes that started by then and completed or failed after it (they were
  // in progress then; a range of finishing events). Narrow rows: thousands of changes can fall
  // in the window, and the titles of the suspects are read afterwards.
  const char* const started_by =
      "CROSS JOIN LATERAL (SELECT max(at) AS at FROM change_events WHERE change_id = c.id AND "
      "to_state = 'in_progress') s WHERE s.at <= cmdb_ts($1) AND ($3::bigint[] IS NULL OR "
      "c.ci_ids && $3::bigint[])";
  const std::string query =
      std::string(
          "SELECT c.id, c.state, c.ci_ids::text, cmdb_us(e.at), true FROM change_events "
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
      started_by;
  const std::optional<std::string> ids =
      cis ? std::optional(sql::IdArray(*cis)) : std::optional<std::string>();
  std::vector<SuspectChange> out;
  sql::ForEachRow(
      db_, query,
      [&](const soci::row& r) {
        out.push_back({sql::Int(r, 0), StateFrom(sql::Text(r, 1)), sql::Ids(r, 2), sql::Time(r, 3),
                       sql::Bool(r, 4)});
      },
      soci::use(static_cast<long long>(at.micros)),
      soci::use(static_cast<long long>(window_start.micros)), soci::use(ids));
  return out;
}

std::map<std::int64_t, std::string> ChangeRepository::Titles(const std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, std::string> titles;
  if (ids.empty()) return titles;
  sql::ForEachRow(
      db_, "SELECT id, title FROM changes WHERE id = ANY($1::bigint[])",
      [&](const soci::row& r) { titles.emplace(sql::Int(r, 0), sql::Text(r, 1)); },
      soci::use(sql::IdArray(ids)));
  return titles;
}

std::map<CiId, std::int64_t> ChangeRepository::Authorizing(const std::vector<CiId>& cis,
                                                           Timestamp at) {
  std::map<CiId, std::int64_t> out;
  if (cis.empty()) return out;
  sql::ForEachRow(
      db_,
      "SELECT x.ci, min(c.id) FROM changes c CROSS JOIN LATERAL unnest(c.ci_ids) AS x(ci) "
      "WHERE c.state IN ('approved', 'in_progress') AND c.planned_start <= cmdb_ts($2) AND "
      "c.planned_end >= cmdb_ts($2) AND c.ci_ids && $1::bigint[] AND x.ci = ANY($1::bigint[]) "
      "GROUP BY x.ci",
      [&](const soci::row& r) { out[sql::Int(r, 0)] = sql::Int(r, 1); },
      soci::use(sql::IdArray(cis)), soci::use(static_cast<long long>(at.micros)));
  return out;
}

}  // namespace cmdb::store
