#include "store/incident_repository.hpp"

#include "model/json.hpp"
#include "store/ci_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::CiId;
using model::Error;
using model::ErrorCode;
using model::Incident;
using model::IncidentState;
using model::Timestamp;
using model::WriteContext;
namespace json = boost::json;

namespace {

const char* const kIncidentColumns =
    "id, title, description, severity, tier, state, assignee, ci_ids::text, "
    "cmdb_us(started_at), cmdb_us(tier_since), cmdb_us(response_due), cmdb_us(responded_at), "
    "resolution, version, cmdb_us(created_at), cmdb_us(updated_at), cmdb_us(resolved_at), "
    "cmdb_us(closed_at)";

IncidentState StateFrom(const std::string& name) {
  std::optional<IncidentState> state = model::IncidentStateFromName(name);
  if (!state) throw Error(ErrorCode::kInternal, "unknown incident state '" + name + "' stored");
  return *state;
}

Incident IncidentFromRow(const soci::row& r) {
  Incident i;
  i.id = sql::Int(r, 0);
  i.title = sql::Text(r, 1);
  i.description = sql::Text(r, 2);
  i.severity = static_cast<int>(sql::Int(r, 3));
  i.tier = static_cast<int>(sql::Int(r, 4));
  i.state = StateFrom(sql::Text(r, 5));
  i.assignee = sql::OptionalText(r, 6);
  i.ci_ids = sql::Ids(r, 7);
  i.started_at = sql::Time(r, 8);
  i.tier_since = sql::Time(r, 9);
  i.response_due = sql::Time(r, 10);
  i.responded_at = sql::OptionalTime(r, 11);
  i.resolution = sql::OptionalText(r, 12);
  i.version = sql::Int(r, 13);
  i.created_at = sql::Time(r, 14);
  i.updated_at = sql::Time(r, 15);
  i.resolved_at = sql::OptionalTime(r, 16);
  i.closed_at = sql::OptionalTime(r, 17);
  return i;
}

std::string What(std::int64_t id) { return "incident " + std::to_string(id); }

std::optional<long long> Micros(const std::optional<Timestamp>& t) {
  return t ? std::optional<long long>(t->micros) : std::nullopt;
}

}  // namespace

model::WorkingCalendar IncidentRepository::Calendar() {
  json::value config = json::object{};
  sql::ForEachRow(db_, "SELECT config::text FROM service_calendar WHERE id = 1",
                  [&](const soci::row& r) { config = sql::Json(r, 0); });
  return model::ParseWorkingCalendar(config);
}

model::WorkingCalendar IncidentRepository::PutCalendar(const json::value& config) {
  model::WorkingCalendar calendar = model::ParseWorkingCalendar(config);
  sql::Execute(db_,
               "UPDATE service_calendar SET config = $1::jsonb, version = version + 1, "
               "updated_at = clock_timestamp() WHERE id = 1",
               soci::use(model::ToJsonText(config)));
  return calendar;
}

void IncidentRepository::Validate(const Incident& draft, model::FieldErrors& errors) {
  CiRepository(db_).CheckExist(draft.ci_ids, "ci_ids", errors);
}

Incident IncidentRepository::Create(const Incident& draft, const WriteContext& ctx) {
  Transaction tr(db_);
  // The response clock starts when the incident is raised in this tier.
  const Timestamp due = model::ResponseDue(Calendar(), draft.tier, draft.tier_since);
  std::optional<Incident> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO incidents (title, description, severity, tier, state, assignee, "
                  "ci_ids, started_at, tier_since, response_due, created_by) VALUES ($1, $2, $3, "
                  "$4, $5, $6, $7::bigint[], cmdb_ts($8), cmdb_ts($9), cmdb_ts($10), $11) "
                  "RETURNING ") +
          kIncidentColumns,
      [&](const soci::row& r) { created = IncidentFromRow(r); }, soci::use(draft.title),
      soci::use(draft.description), soci::use(draft.severity), soci::use(draft.tier),
      soci::use(std::string(model::IncidentStateName(draft.state))), soci::use(draft.assignee),
      soci::use(sql::IdArray(draft.ci_ids)),
      soci::use(static_cast<long long>(draft.started_at.micros)),
      soci::use(static_cast<long long>(draft.tier_since.micros)),
      soci::use(static_cast<long long>(due.micros)), soci::use(ctx.changed_by));
  sql::Execute(db_,
               "INSERT INTO incident_events (incident_id, action, from_state, to_state, "
               "from_tier, to_tier, by, response_due) VALUES ($1, 'create', NULL, $2, NULL, $3, "
               "$4, cmdb_ts($5))",
               soci::use(static_cast<long long>(created->id)),
               soci::use(std::string(model::IncidentStateName(created->state))),
               soci::use(created->tier), soci::use(ctx.changed_by),
               soci::use(static_cast<long long>(due.micros)));
  tr.Commit();
  return *created;
}

std::optional<Incident> IncidentRepository::Find(std::int64_t id) {
  std::optional<Incident> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kIncidentColumns + " FROM incidents WHERE id = $1",
      [&](const soci::row& r) { found = IncidentFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<Incident> IncidentRepository::List(const IncidentFilter& f) {
  const std::optional<std::string> state =
      f.state ? std::optional(std::string(model::IncidentStateName(*f.state))) : std::nullopt;
  const std::optional<long long> ci = f.ci;
  std::vector<Incident> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kIncidentColumns +
          " FROM incidents WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS "
          "NULL OR ci_ids @> ARRAY[$3::bigint]) AND ($4::integer IS NULL OR severity = $4) AND "
          "($5::integer IS NULL OR tier = $5) ORDER BY id LIMIT $6",
      [&](const soci::row& r) { out.push_back(IncidentFromRow(r)); },
      soci::use(static_cast<long long>(f.after)), soci::use(state), soci::use(ci),
      soci::use(f.severity), soci::use(f.tier), soci::use(f.limit + 1));
  return out;
}

Incident IncidentRepository::Act(std::int64_t id, std::string_view action,
                                 const model::IncidentActionRequest& request,
                                 std::optional<std::int64_t> if_match, const WriteContext& ctx) {
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kIncidentColumns + " FROM incidents WHERE id = $1 FOR UPDATE";
  const Incident current =
      LockVersioned(db_, lock, std::to_string(id), if_match, What(id), IncidentFromRow);
  if (action == "escalate" && request.actor_tier && *request.actor_tier != current.tier) {
    throw Error(ErrorCode::kPermissionDenied,
                What(id) + " is at tier " + std::to_string(current.tier) +
                    "; a handler escalates only incidents of their own tier (" +
                    std::to_string(*request.actor_tier) + ")");
  }
  // The calendar only matters to an escalation, whose next tier's clock starts now.
  const model::WorkingCalendar calendar =
      action == "escalate" ? Calendar() : model::WorkingCalendar{};
  const model::IncidentTransition t =
      model::ApplyIncidentAction(current, action, request, Timestamp::Now(), calendar);
  const std::string state(model::IncidentStateName(t.state));
  std::optional<Incident> updated;
  sql::ForEachRow(
      db_,
      std::string(
          "UPDATE incidents SET state = $2, tier = $3, tier_since = cmdb_ts($4), response_due "
          "= cmdb_ts($5), responded_at = cmdb_ts($6), assignee = CASE WHEN $7 THEN NULL "
          "ELSE coalesce($8, assignee) END, resolution = CASE WHEN $2 = 'resolved' THEN $9 "
          "ELSE resolution END, resolved_at = CASE WHEN $2 = 'resolved' THEN "
          "clock_timestamp() WHEN state = 'resolved' AND $2 <> 'closed' THEN NULL "
          "ELSE resolved_at END, closed_at = CASE WHEN $2 = 'closed' "
          "THEN clock_timestamp() ELSE closed_at END, version = version + 1, updated_at = "
          "clock_timestamp() WHERE id = $1 RETURNING ") +
          kIncidentColumns,
      [&](const soci::row& r) { updated = IncidentFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(state), soci::use(t.tier),
      soci::use(static_cast<long long>(t.tier_since.micros)),
      soci::use(static_cast<long long>(t.response_due.micros)), soci::use(Micros(t.responded_at)),
      soci::use(t.clear_assignee), soci::use(t.assignee), soci::use(t.resolution));
  sql::Execute(db_,
               "INSERT INTO incident_events (incident_id, action, from_state, to_state, "
               "from_tier, to_tier, by, reason, response_due) VALUES ($1, $2, $3, $4, $5, $6, "
               "$7, $8, CASE WHEN $2 = 'escalate' THEN cmdb_ts($9) END)",
               soci::use(static_cast<long long>(id)), soci::use(std::string(action)),
               soci::use(std::string(model::IncidentStateName(current.state))), soci::use(state),
               soci::use(current.tier), soci::use(t.tier), soci::use(ctx.changed_by),
               soci::use(t.reason), soci::use(static_cast<long long>(t.response_due.micros)));
  tr.Commit();
  return *updated;
}

namespace {

const char* const kEventColumns =
    "cmdb_us(at), action, from_state, to_state, from_tier, to_tier, by, reason, "
    "cmdb_us(response_due), incident_id";

model::IncidentEvent EventFromRow(const soci::row& r) {
  model::IncidentEvent e;
  e.at = sql::Time(r, 0);
  e.action = sql::Text(r, 1);
  if (!sql::IsNull(r, 2)) e.from = StateFrom(sql::Text(r, 2));
  e.to = StateFrom(sql::Text(r, 3));
  if (!sql::IsNull(r, 4)) e.from_tier = static_cast<int>(sql::Int(r, 4));
  e.to_tier = static_cast<int>(sql::Int(r, 5));
  e.by = sql::Text(r, 6);
  e.reason = sql::Text(r, 7);
  e.response_due = sql::OptionalTime(r, 8);
  return e;
}

}  // namespace

std::vector<model::IncidentEvent> IncidentRepository::Events(std::int64_t id) {
  std::vector<model::IncidentEvent> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kEventColumns +
          " FROM incident_events WHERE incident_id = $1 ORDER BY at",
      [&](const soci::row& r) { out.push_back(EventFromRow(r)); },
      soci::use(static_cast<long long>(id)));
  return out;
}

std::vector<Incident> IncidentRepository::ListByIds(const std::vector<std::int64_t>& ids) {
  std::vector<Incident> out;
  if (ids.empty()) return out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kIncidentColumns +
          " FROM incidents WHERE id = ANY($1::bigint[]) ORDER BY id",
      [&](const soci::row& r) { out.push_back(IncidentFromRow(r)); }, soci::use(sql::IdArray(ids)));
  return out;
}

std::vector<std::pair<std::int64_t, model::IncidentEvent>> IncidentRepository::EventsOf(
    const std::vector<std::int64_t>& ids) {
  std::vector<std::pair<std::int64_t, model::IncidentEvent>> out;
  if (ids.empty()) return out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kEventColumns +
          " FROM incident_events WHERE incident_id = ANY($1::bigint[]) ORDER BY incident_id, at",
      [&](const soci::row& r) { out.emplace_back(sql::Int(r, 9), EventFromRow(r)); },
      soci::use(sql::IdArray(ids)));
  return out;
}

std::vector<Incident> IncidentRepository::OpenOn(const std::vector<CiId>& cis) {
  std::vector<Incident> out;
  if (cis.empty()) return out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kIncidentColumns +
          " FROM incidents WHERE state IN ('new', 'in_progress') AND ci_ids && $1::bigint[] "
          "ORDER BY severity, id LIMIT 1000",
      [&](const soci::row& r) { out.push_back(IncidentFromRow(r)); }, soci::use(sql::IdArray(cis)));
  return out;
}

std::set<CiId> IncidentRepository::CisWithOpenIncidents(const std::vector<CiId>& cis) {
  std::set<CiId> out;
  if (cis.empty()) return out;
  sql::ForEachRow(
      db_,
      "SELECT DISTINCT x.ci FROM incidents i CROSS JOIN LATERAL unnest(i.ci_ids) AS x(ci) "
      "WHERE i.state IN ('new', 'in_progress') AND i.ci_ids && $1::bigint[] AND x.ci = "
      "ANY($1::bigint[])",
      [&](const soci::row& r) { out.insert(sql::Int(r, 0)); }, soci::use(sql::IdArray(cis)));
  return out;
}

}  // namespace cmdb::store
