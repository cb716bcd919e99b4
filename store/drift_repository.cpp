#include "store/drift_repository.hpp"

#include "model/json.hpp"
#include "store/ci_repository.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::DriftFinding;
using model::Error;
using model::ErrorCode;
using model::FindingState;
using model::WriteContext;
namespace json = boost::json;

namespace {

const char* const kFindingColumns =
    "id, ci_id, attribute, expected::text, actual::text, state, authorized, change_id, run_id, "
    "last_run_id, cmdb_us(detected_at), cmdb_us(observed_at), cmdb_us(updated_at), "
    "cmdb_us(closed_at), closed_by, version";

DriftFinding FindingFromRow(const soci::row& r) {
  DriftFinding f;
  f.id = sql::Int(r, 0);
  f.ci = sql::Int(r, 1);
  f.attribute = sql::Text(r, 2);
  f.expected = sql::Json(r, 3);
  f.actual = sql::Json(r, 4);
  const std::string state = sql::Text(r, 5);
  f.state = model::FindingStateFromName(state).value_or(FindingState::kOpen);
  f.authorized = sql::Bool(r, 6);
  f.change = sql::OptionalInt(r, 7);
  f.run = sql::Int(r, 8);
  f.last_run = sql::Int(r, 9);
  f.detected_at = sql::Time(r, 10);
  f.observed_at = sql::Time(r, 11);
  f.updated_at = sql::Time(r, 12);
  f.closed_at = sql::OptionalTime(r, 13);
  f.closed_by = sql::OptionalText(r, 14);
  f.version = sql::Int(r, 15);
  return f;
}

std::string What(std::int64_t id) { return "finding " + std::to_string(id); }

DriftFinding LockOpenFinding(DbSession& db, std::int64_t id, std::optional<std::int64_t> if_match,
                             std::string_view action) {
  static const std::string lock =
      std::string("SELECT ") + kFindingColumns + " FROM drift_findings WHERE id = $1 FOR UPDATE";
  DriftFinding f = LockVersioned(db, lock, std::to_string(id), if_match, What(id), FindingFromRow);
  if (f.state != FindingState::kOpen) {
    throw Error(ErrorCode::kConflict, What(id) + " is " +
                                          std::string(model::FindingStateName(f.state)) +
                                          "; only open findings can be " + std::string(action));
  }
  return f;
}

DriftFinding Close(DbSession& db, std::int64_t id, FindingState state, const std::string& by) {
  std::optional<DriftFinding> closed;
  sql::ForEachRow(
      db,
      std::string("UPDATE drift_findings SET state = $2, closed_at = clock_timestamp(), "
                  "closed_by = $3, updated_at = clock_timestamp(), version = version + 1 WHERE "
                  "id = $1 RETURNING ") +
          kFindingColumns,
      [&](const soci::row& r) { closed = FindingFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(std::string(model::FindingStateName(state))),
      soci::use(by));
  return *closed;
}

json::value ChangeJson(std::int64_t change) {
  return change > 0 ? json::value(change) : json::value(nullptr);
}

}  // namespace

std::vector<DriftFinding> DriftRepository::List(const FindingFilter& filter) {
  const std::optional<std::string> state =
      filter.state ? std::optional(std::string(model::FindingStateName(*filter.state)))
                   : std::nullopt;
  const std::optional<long long> ci = filter.ci;
  const std::optional<long long> run = filter.run;
  // As 1 or 0: SOCI cannot nest one type conversion (bool) in another (std::optional).
  const std::optional<int> authorized =
      filter.authorized ? std::optional<int>(*filter.authorized ? 1 : 0) : std::nullopt;
  std::vector<DriftFinding> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kFindingColumns +
          " FROM drift_findings WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND "
          "($3::bigint IS NULL OR ci_id = $3) AND ($4::boolean IS NULL OR authorized = $4) AND "
          "($5::text IS NULL OR attribute = $5) AND ($6::bigint IS NULL OR run_id = $6 OR "
          "last_run_id = $6) ORDER BY id LIMIT $7",
      [&](const soci::row& r) { out.push_back(FindingFromRow(r)); },
      soci::use(static_cast<long long>(filter.after)), soci::use(state), soci::use(ci),
      soci::use(authorized), soci::use(filter.attribute), soci::use(run),
      soci::use(filter.limit + 1));
  return out;
}

std::optional<DriftFinding> DriftRepository::Find(std::int64_t id) {
  std::optional<DriftFinding> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kFindingColumns + " FROM drift_findings WHERE id = $1",
      [&](const soci::row& r) { found = FindingFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

DriftFinding DriftRepository::Accept(std::int64_t id, std::optional<std::int64_t> if_match,
                                     const WriteContext& ctx) {
  Transaction tr(db_);
  const DriftFinding f = LockOpenFinding(db_, id, if_match, "accepted");
  CiRepository cis(db_);
  if (!cis.FindById(f.ci)) {
    throw Error(ErrorCode::kConflict,
                "CI " + std::to_string(f.ci) + " no longer exists; ignore the finding instead");
  }
  json::object attributes;
  attributes[f.attribute] = f.actual;
  const WriteContext write{ctx.changed_by, "drift:" + std::to_string(id)};
  cis.Patch(f.ci, json::object{{"attributes", std::move(attributes)}}, std::nullopt, write);
  DriftFinding closed = Close(db_, id, FindingState::kAccepted, ctx.changed_by);
  tr.Commit();
  return closed;
}

DriftFinding DriftRepository::Ignore(std::int64_t id, std::optional<std::int64_t> if_match,
                                     const WriteContext& ctx) {
  Transaction tr(db_);
  LockOpenFinding(db_, id, if_match, "ignored");
  DriftFinding closed = Close(db_, id, FindingState::kIgnored, ctx.changed_by);
  tr.Commit();
  return closed;
}

std::optional<DriftFinding> DriftRepository::LockOpen(std::int64_t ci,
                                                      const std::string& attribute) {
  std::optional<DriftFinding> found;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kFindingColumns +
          " FROM drift_findings WHERE ci_id = $1 AND attribute = $2 AND state = 'open' FOR "
          "UPDATE",
      [&](const soci::row& r) { found = FindingFromRow(r); }, soci::use(static_cast<long long>(ci)),
      soci::use(attribute));
  return found;
}

void DriftRepository::AcceptAuthorized(std::int64_t id, std::int64_t change,
                                       const std::string& by) {
  sql::Execute(db_,
               "UPDATE drift_findings SET state = 'accepted', authorized = true, change_id = $2, "
               "closed_at = clock_timestamp(), closed_by = $3, updated_at = clock_timestamp(), "
               "version = version + 1 WHERE id = $1",
               soci::use(static_cast<long long>(id)), soci::use(static_cast<long long>(change)),
               soci::use(by));
}

std::vector<DriftFinding> DriftRepository::OpenOn(const std::vector<std::int64_t>& cis) {
  std::vector<DriftFinding> out;
  if (cis.empty()) return out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kFindingColumns +
          " FROM drift_findings WHERE state = 'open' AND ci_id IN (SELECT "
          "unnest($1::bigint[])) ORDER BY id LIMIT 1000",
      [&](const soci::row& r) { out.push_back(FindingFromRow(r)); }, soci::use(sql::IdArray(cis)));
  return out;
}

std::set<std::int64_t> DriftRepository::CisWithOpenDrift(const std::vector<std::int64_t>& cis) {
  std::set<std::int64_t> out;
  if (cis.empty()) return out;
  sql::ForEachRow(
      db_,
      "SELECT DISTINCT ci_id FROM drift_findings WHERE state = 'open' AND ci_id = "
      "ANY($1::bigint[])",
      [&](const soci::row& r) { out.insert(sql::Int(r, 0)); }, soci::use(sql::IdArray(cis)));
  return out;
}

void DriftRepository::LoadKnown(const std::vector<std::string>& types,
                                std::vector<KnownFinding>& open,
                                std::vector<KnownFinding>& ignored) {
  if (types.empty()) return;
  auto read_into = [](std::vector<KnownFinding>& into) {
    return [&into](const soci::row& r) {
      into.push_back(
          {sql::Int(r, 0), sql::Int(r, 1), sql::Text(r, 2), sql::Json(r, 3), sql::Json(r, 4)});
    };
  };
  const std::string types_array = sql::TextArray(types);
  sql::ForEachRow(db_,
                  "SELECT f.id, f.ci_id, f.attribute, f.expected::text, f.actual::text FROM "
                  "drift_findings f JOIN configuration_items c ON c.id = f.ci_id WHERE f.state = "
                  "'open' AND c.type = ANY($1::text[])",
                  read_into(open), soci::use(types_array));
  sql::ForEachRow(db_,
                  "SELECT id, ci_id, attribute, expected, actual FROM (SELECT DISTINCT ON "
                  "(f.ci_id, f.attribute) f.id, f.ci_id, f.attribute, f.expected::text AS "
                  "expected, f.actual::text AS actual, f.state FROM drift_findings f JOIN "
                  "configuration_items c ON c.id = f.ci_id WHERE f.state <> 'open' AND c.type = "
                  "ANY($1::text[]) ORDER BY f.ci_id, f.attribute, f.id DESC) latest WHERE state "
                  "= 'ignored'",
                  read_into(ignored), soci::use(types_array));
}

std::vector<std::int64_t> DriftRepository::NextIds(std::size_t count) {
  return sql::NextIds(db_, "drift_findings", count);
}

void DriftRepository::WriteRun(std::int64_t run_id, model::Timestamp observed_at,
                               const RunFindings& findings, const std::string& resolved_by) {
  const long long run = run_id;
  const long long at = observed_at.micros;
  if (!findings.opened.empty()) {
    const std::string at_text = model::FormatTimestamp(observed_at);
    pg::CopyBuffer rows;
    for (const RunFindings::Opened& f : findings.opened) {
      rows.Int(f.id);
      rows.Int(f.ci);
      rows.Field(f.attribute);
      if (f.expected.is_null()) {
        rows.Null();
      } else {
        rows.Field(model::ToJsonText(f.expected));
      }
      rows.Field(model::ToJsonText(f.actual));
      rows.Int(run_id);
      rows.Int(run_id);
      rows.Field(at_text);
      rows.Field(at_text);
      rows.Field(f.change > 0 ? "t" : "f");
      if (f.change > 0) {
        rows.Int(f.change);
      } else {
        rows.Null();
      }
      rows.EndRow();
    }
    pg::CopyIn(db_,
               "COPY drift_findings (id, ci_id, attribute, expected, actual, run_id, last_run_id, "
               "detected_at, observed_at, authorized, change_id) FROM STDIN",
               rows);
  }
  if (!findings.updated.empty()) {
    json::array updated;
    for (const RunFindings::Updated& f : findings.updated) {
      updated.push_back(json::object{{"id", f.id},
                                     {"expected", f.expected},
                                     {"actual", f.actual},
                                     {"change", ChangeJson(f.change)}});
    }
    sql::Execute(
        db_,
        "UPDATE drift_findings f SET expected = x.expected, actual = x.actual, last_run_id = $2, "
        "observed_at = cmdb_ts($3), authorized = x.change IS NOT NULL, change_id = x.change, "
        "updated_at = clock_timestamp(), version = f.version + 1 FROM "
        "jsonb_to_recordset($1::jsonb) AS x(id bigint, expected jsonb, actual jsonb, change "
        "bigint) WHERE f.id = x.id AND f.state = 'open'",
        soci::use(model::ToJsonText(updated)), soci::use(run), soci::use(at));
  }
  if (!findings.unchanged.empty()) {
    json::array unchanged;
    for (const RunFindings::Unchanged& f : findings.unchanged) {
      unchanged.push_back(json::object{{"id", f.id}, {"change", ChangeJson(f.change)}});
    }
    sql::Execute(db_,
                 "UPDATE drift_findings f SET last_run_id = $2, observed_at = cmdb_ts($3), "
                 "authorized = x.change IS NOT NULL, change_id = x.change FROM "
                 "jsonb_to_recordset($1::jsonb) AS x(id bigint, change bigint) WHERE f.id = x.id "
                 "AND f.state = 'open'",
                 soci::use(model::ToJsonText(unchanged)), soci::use(run), soci::use(at));
  }
  if (!findings.resolved.empty()) {
    sql::Execute(db_,
                 "UPDATE drift_findings SET state = 'resolved', closed_at = clock_timestamp(), "
                 "closed_by = $4, last_run_id = $2, observed_at = cmdb_ts($3), updated_at = "
                 "clock_timestamp(), version = version + 1 WHERE id = ANY($1::bigint[]) AND "
                 "state = 'open'",
                 soci::use(sql::IdArray(findings.resolved)), soci::use(run), soci::use(at),
                 soci::use(resolved_by));
  }
}

}  // namespace cmdb::store
