#include "store/report_repository.hpp"

#include <algorithm>
#include <unordered_map>

#include "store/incident_repository.hpp"
#include "store/quality_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::store {

using model::Timestamp;

OperationsData ReportRepository::LoadOperations(Timestamp start, Timestamp end) {
  OperationsData d;
  d.start = start;
  d.end = end;
  Transaction tr(db_);
  tr.ReadOnlySnapshot();
  IncidentRepository incidents(db_);
  QualityRepository quality(db_);
  d.calendar = incidents.Calendar();
  const long long from = start.micros;
  const long long to = end.micros;

  // The incidents the month touches: an event in it, open at its end, a callback or a promise
  // in it.
  std::vector<std::int64_t> ids;
  sql::ForEachRow(
      db_,
      "SELECT incident_id FROM incident_events WHERE at >= cmdb_ts($1) AND at < cmdb_ts($2) "
      "UNION SELECT id FROM incidents WHERE created_at < cmdb_ts($2) AND state IN ('new', "
      "'in_progress') UNION SELECT id FROM incidents WHERE created_at < cmdb_ts($2) AND "
      "resolved_at >= cmdb_ts($2) UNION SELECT incident_id FROM callbacks WHERE called_at >= "
      "cmdb_ts($1) AND called_at < cmdb_ts($2) AND incident_id IS NOT NULL UNION SELECT "
      "incident_id FROM incident_changes WHERE promised_by >= cmdb_ts($1) AND promised_by < "
      "cmdb_ts($2)",
      [&](const soci::row& r) { ids.push_back(sql::Int(r, 0)); }, soci::use(from), soci::use(to));
  std::sort(ids.begin(), ids.end());
  std::unordered_map<std::int64_t, std::size_t> at;
  for (model::Incident& i : incidents.ListByIds(ids)) {
    at.emplace(i.id, d.incidents.size());
    d.incidents.push_back(ReportIncident{std::move(i), {}});
  }
  for (auto& [id, event] : incidents.EventsOf(ids)) {
    auto found = at.find(id);
    if (found != at.end()) d.incidents[found->second].events.push_back(std::move(event));
  }
  for (const ReportIncident& r : d.incidents) {
    for (const model::IncidentEvent& e : r.events) {
      if (e.action == "resolve") d.resolvers[r.incident.id] = e.by;
    }
  }
  d.plans = quality.PlansOf(ids);
  d.callbacks = quality.CallbacksBetween(start, end);
  d.key_users = quality.ActiveKeyUsers();
  d.complaints = quality.ComplaintsLiveSince(start, end);

  sql::ForEachRow(
      db_,
      "SELECT id, created_by, cmdb_us(created_at), approved_by, cmdb_us(approved_at) FROM "
      "knowledge_articles WHERE (created_at >= cmdb_ts($1) AND created_at < cmdb_ts($2)) OR "
      "(approved_at >= cmdb_ts($1) AND approved_at < cmdb_ts($2)) ORDER BY id",
      [&](const soci::row& r) {
        d.articles.push_back(ReportArticle{sql::Int(r, 0), sql::Text(r, 1), sql::Time(r, 2),
                                           sql::OptionalText(r, 3), sql::OptionalTime(r, 4)});
      },
      soci::use(from), soci::use(to));

  // Changes that ended in the month (their event into the state they are in), with their
  // impact sets; and the incidents that started from the month's start to 72 h after its end,
  // for what followed a change.
  sql::ForEachRow(
      db_,
      "SELECT c.id, c.title, c.state, cmdb_us(e.at), c.created_by, coalesce(c.impact_ci_ids, "
      "c.ci_ids)::text FROM (SELECT change_id, to_state, max(at) AS at FROM change_events WHERE "
      "to_state IN ('completed', 'failed', 'rejected', 'cancelled') AND at >= cmdb_ts($1) AND "
      "at < cmdb_ts($2) GROUP BY change_id, to_state) e JOIN changes c ON c.id = e.change_id AND "
      "c.state = e.to_state ORDER BY e.at, c.id",
      [&](const soci::row& r) {
        d.changes.push_back(ReportChange{sql::Int(r, 0), sql::Text(r, 1), sql::Text(r, 2),
                                         sql::Time(r, 3), sql::Text(r, 4), sql::Ids(r, 5)});
      },
      soci::use(from), soci::use(to));
  sql::ForEachRow(
      db_,
      "SELECT id, cmdb_us(started_at), ci_ids::text FROM incidents WHERE started_at >= "
      "cmdb_ts($1) AND started_at < cmdb_ts($2) + interval '72 hours' ORDER BY started_at, id",
      [&](const soci::row& r) {
        d.started.push_back(StartedIncident{sql::Int(r, 0), sql::Time(r, 1), sql::Ids(r, 2)});
      },
      soci::use(from), soci::use(to));

  sql::ForEachRow(
      db_,
      "SELECT count(*) FILTER (WHERE detected_at >= cmdb_ts($1) AND detected_at < cmdb_ts($2)), "
      "count(*) FILTER (WHERE state = 'resolved' AND closed_at >= cmdb_ts($1) AND closed_at < "
      "cmdb_ts($2)), count(*) FILTER (WHERE state = 'accepted' AND closed_at >= cmdb_ts($1) AND "
      "closed_at < cmdb_ts($2)), count(*) FILTER (WHERE state = 'ignored' AND closed_at >= "
      "cmdb_ts($1) AND closed_at < cmdb_ts($2)), count(*) FILTER (WHERE detected_at < "
      "cmdb_ts($2) AND (closed_at IS NULL OR closed_at >= cmdb_ts($2))), count(*) FILTER (WHERE "
      "NOT authorized AND detected_at < cmdb_ts($2) AND (closed_at IS NULL OR closed_at >= "
      "cmdb_ts($2))) FROM drift_findings WHERE detected_at < cmdb_ts($2) AND (closed_at IS NULL "
      "OR closed_at >= cmdb_ts($1))",
      [&](const soci::row& r) {
        d.drift = ReportDriftCounts{sql::Int(r, 0), sql::Int(r, 1), sql::Int(r, 2),
                                    sql::Int(r, 3), sql::Int(r, 4), sql::Int(r, 5)};
      },
      soci::use(from), soci::use(to));

  auto score_before = [&](long long instant) {
    std::optional<ReportAuditScore> out;
    sql::ForEachRow(
        db_,
        "SELECT cmdb_us(at), run_id, pass, fail FROM audit_scores WHERE set_name = 'baseline' AND "
        "group_kind = 'overall' AND at < cmdb_ts($1) ORDER BY at DESC LIMIT 1",
        [&](const soci::row& r) {
          out = ReportAuditScore{sql::Time(r, 0), sql::Int(r, 1), sql::Int(r, 2), sql::Int(r, 3)};
        },
        soci::use(instant));
    return out;
  };
  d.audit_start = score_before(from);
  d.audit_end = score_before(to);

  sql::ForEachRow(
      db_, "SELECT id, name FROM configuration_items WHERE type = 'business_service' ORDER BY id",
      [&](const soci::row& r) { d.service_names.emplace(sql::Int(r, 0), sql::Text(r, 1)); });
  tr.Commit();
  return d;
}

namespace {

// A CI version's columns as ComparedCi reads them (prefix: the version row's alias).
std::string VersionColumns(const std::string& v) {
  return v + ".version, " + v + ".type, " + v + ".name, " + v + ".status, " + v + ".owner, " +
         "array_to_json(" + v + ".tags)::text, " + v + ".attributes::text, cmdb_us(" + v +
         ".valid_from)";
}

std::optional<model::ConfigurationItem> CiAt(const soci::row& r, std::size_t c, std::int64_t id) {
  if (sql::IsNull(r, c)) return std::nullopt;
  model::ConfigurationItem ci;
  ci.id = id;
  ci.version = sql::Int(r, c);
  ci.type = sql::Text(r, c + 1);
  ci.name = sql::Text(r, c + 2);
  ci.status = sql::Text(r, c + 3);
  ci.owner = sql::OptionalText(r, c + 4);
  const boost::json::value tags = sql::Json(r, c + 5);
  for (const auto& t : tags.as_array()) ci.tags.emplace_back(t.as_string());
  ci.attributes = sql::Json(r, c + 6).as_object();
  ci.updated_at = sql::Time(r, c + 7);
  return ci;
}

std::optional<RelationState> RelationAt(const soci::row& r, std::size_t c) {
  if (sql::IsNull(r, c)) return std::nullopt;
  return RelationState{sql::Text(r, c), sql::Int(r, c + 1), sql::Int(r, c + 2),
                       sql::Json(r, c + 3).as_object()};
}

// The live rows of `table` now, or its versions valid at `as_of` (not deleted).
std::string InventorySource(bool as_of) {
  return as_of ? "(SELECT ci_id AS id, type, name, status, owner, tags, attributes, version, "
                 "valid_from AS since FROM ci_history WHERE NOT deleted AND valid_from <= "
                 "cmdb_ts($1) AND (valid_to IS NULL OR valid_to > cmdb_ts($1))) c"
               : "(SELECT id, type, name, status, owner, tags, attributes, version, updated_at "
                 "AS since FROM configuration_items WHERE $1::bigint IS NULL) c";
}

}  // namespace

std::vector<InventoryGroup> ReportRepository::InventoryGroups(
    std::optional<Timestamp> as_of, const std::string& group_by,
    const std::optional<std::string>& type) {
  std::string key = "c.type";
  std::string from = InventorySource(as_of.has_value());
  if (group_by == "owner") key = "coalesce(c.owner, '')";
  if (group_by == "status") key = "c.status";
  if (group_by == "tag") {
    key = "coalesce(t.tag, '')";
    from += " LEFT JOIN LATERAL unnest(c.tags) AS t(tag) ON true";
  }
  const std::optional<long long> instant =
      as_of ? std::optional<long long>(as_of->micros) : std::nullopt;
  std::vector<InventoryGroup> out;
  sql::ForEachRow(
      db_,
      "SELECT " + key + " AS k, c.status, count(*) FROM " + from +
          " WHERE ($2::text IS NULL OR c.type = $2) GROUP BY 1, 2 ORDER BY 1, 2",
      [&](const soci::row& r) {
        const std::string k = sql::Text(r, 0);
        if (out.empty() || out.back().key != k) out.push_back(InventoryGroup{k, {}, 0});
        const std::int64_t n = sql::Int(r, 2);
        out.back().by_status[sql::Text(r, 1)] += n;
        out.back().count += n;
      },
      soci::use(instant), soci::use(type));
  return out;
}

InventoryCursor::InventoryCursor(DbSession session, std::optional<Timestamp> as_of,
                                 std::optional<std::string> type)
    : session_(std::move(session)) {
  sql::Execute(session_, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  open_ = true;
  const std::optional<long long> instant =
      as_of ? std::optional<long long>(as_of->micros) : std::nullopt;
  sql::Execute(session_,
               "DECLARE cmdb_inventory NO SCROLL CURSOR FOR SELECT c.id, c.type, c.name, "
               "c.status, c.owner, array_to_json(c.tags)::text, c.attributes::text, c.version, "
               "cmdb_us(c.since) FROM " +
                   InventorySource(as_of.has_value()) +
                   " WHERE ($2::text IS NULL OR c.type = $2) ORDER BY c.id",
               soci::use(instant), soci::use(type));
}

InventoryCursor::~InventoryCursor() {
  if (!open_) return;
  try {
    sql::Execute(session_, "ROLLBACK");
  } catch (...) {  // NOLINT(bugprone-empty-catch): a broken connection rolls back by itself
  }
}

bool InventoryCursor::Next(std::vector<InventoryRow>& rows, std::size_t batch) {
  rows.clear();
  if (!open_) return false;
  sql::ForEachRow(
      session_, "FETCH " + std::to_string(batch) + " FROM cmdb_inventory", [&](const soci::row& r) {
        rows.push_back(InventoryRow{sql::Int(r, 0), sql::Text(r, 1), sql::Text(r, 2),
                                    sql::Text(r, 3), sql::OptionalText(r, 4), sql::Text(r, 5),
                                    sql::Text(r, 6), sql::Int(r, 7), sql::Time(r, 8)});
      });
  if (rows.size() < batch) {
    sql::Execute(session_, "COMMIT");
    open_ = false;
  }
  return !rows.empty();
}

std::vector<ComparedCi> ReportRepository::CompareCis(Timestamp from, Timestamp to,
                                                     const std::optional<std::string>& type) {
  std::vector<ComparedCi> out;
  auto at = [](const char* alias, const char* instant) {
    return std::string(
               "LEFT JOIN LATERAL (SELECT * FROM ci_history v WHERE v.ci_id = t.ci_id "
               "AND NOT v.deleted AND v.valid_from <= cmdb_ts(") +
           instant + ") AND (v.valid_to IS NULL OR v.valid_to > cmdb_ts(" + instant +
           ")) ORDER BY v.version DESC LIMIT 1) " + alias + " ON true";
  };
  sql::ForEachRow(
      db_,
      "WITH t AS (SELECT DISTINCT ci_id FROM ci_history WHERE valid_from > cmdb_ts($1) AND "
      "valid_from <= cmdb_ts($2)) SELECT t.ci_id, " +
          VersionColumns("a") + ", " + VersionColumns("b") + " FROM t " + at("a", "$1") + " " +
          at("b", "$2") +
          " WHERE ($3::text IS NULL OR a.type = $3 OR b.type = $3) ORDER BY t.ci_id",
      [&](const soci::row& r) {
        const std::int64_t id = sql::Int(r, 0);
        out.push_back(ComparedCi{id, CiAt(r, 1, id), CiAt(r, 9, id)});
      },
      soci::use(static_cast<long long>(from.micros)), soci::use(static_cast<long long>(to.micros)),
      soci::use(type));
  return out;
}

std::vector<ComparedRelation> ReportRepository::CompareRelations(
    Timestamp from, Timestamp to, const std::optional<std::string>& relation_type) {
  std::vector<ComparedRelation> out;
  auto at = [](const char* alias, const char* instant) {
    return std::string(
               "LEFT JOIN LATERAL (SELECT * FROM relation_history v WHERE "
               "v.relation_id = t.relation_id AND NOT v.deleted AND v.valid_from <= "
               "cmdb_ts(") +
           instant + ") AND (v.valid_to IS NULL OR v.valid_to > cmdb_ts(" + instant +
           ")) ORDER BY v.version DESC LIMIT 1) " + alias + " ON true";
  };
  sql::ForEachRow(
      db_,
      "WITH t AS (SELECT DISTINCT relation_id FROM relation_history WHERE valid_from > "
      "cmdb_ts($1) AND valid_from <= cmdb_ts($2)) SELECT t.relation_id, a.type, a.from_ci, "
      "a.to_ci, a.attributes::text, b.type, b.from_ci, b.to_ci, b.attributes::text FROM t " +
          at("a", "$1") + " " + at("b", "$2") +
          " WHERE ($3::text IS NULL OR a.type = $3 OR b.type = $3) ORDER BY t.relation_id",
      [&](const soci::row& r) {
        out.push_back(ComparedRelation{sql::Int(r, 0), RelationAt(r, 1), RelationAt(r, 5)});
      },
      soci::use(static_cast<long long>(from.micros)), soci::use(static_cast<long long>(to.micros)),
      soci::use(relation_type));
  return out;
}

std::vector<DriftRow> ReportRepository::Drift(Timestamp from, Timestamp to) {
  std::vector<DriftRow> out;
  sql::ForEachRow(
      db_,
      "SELECT f.id, f.ci_id, coalesce(c.name, ''), coalesce(c.type, ''), c.owner, f.attribute, "
      "f.state, f.authorized, s.name, cmdb_us(f.detected_at), cmdb_us(f.closed_at), "
      "coalesce(f.expected::text, 'null'), coalesce(f.actual::text, 'null') FROM drift_findings "
      "f LEFT JOIN configuration_items c ON c.id = f.ci_id LEFT JOIN discovery_runs r ON r.id = "
      "f.run_id LEFT JOIN discovery_sources s ON s.id = r.source_id WHERE f.detected_at < "
      "cmdb_ts($2) AND (f.detected_at >= cmdb_ts($1) OR f.closed_at IS NULL OR f.closed_at >= "
      "cmdb_ts($1)) ORDER BY f.id",
      [&](const soci::row& r) {
        out.push_back(DriftRow{sql::Int(r, 0), sql::Int(r, 1), sql::Text(r, 2), sql::Text(r, 3),
                               sql::OptionalText(r, 4), sql::Text(r, 5), sql::Text(r, 6),
                               sql::Bool(r, 7), sql::OptionalText(r, 8), sql::Time(r, 9),
                               sql::OptionalTime(r, 10), sql::Text(r, 11), sql::Text(r, 12)});
      },
      soci::use(static_cast<long long>(from.micros)), soci::use(static_cast<long long>(to.micros)));
  return out;
}

std::vector<AuditScoreRow> ReportRepository::AuditScores(const std::string& set, Timestamp from,
                                                         Timestamp to) {
  std::vector<AuditScoreRow> out;
  sql::ForEachRow(
      db_,
      "SELECT cmdb_us(at), run_id, group_kind, group_key, pass, fail FROM audit_scores WHERE "
      "set_name = $1 AND at >= cmdb_ts($2) AND at < cmdb_ts($3) ORDER BY at, run_id, "
      "group_kind, group_key",
      [&](const soci::row& r) {
        out.push_back(AuditScoreRow{sql::Time(r, 0), sql::Int(r, 1), sql::Text(r, 2),
                                    sql::Text(r, 3), sql::Int(r, 4), sql::Int(r, 5)});
      },
      soci::use(set), soci::use(static_cast<long long>(from.micros)),
      soci::use(static_cast<long long>(to.micros)));
  return out;
}

std::vector<CalendarChange> ReportRepository::ChangesBetween(Timestamp from, Timestamp to) {
  std::vector<CalendarChange> out;
  sql::ForEachRow(
      db_,
      "SELECT id, title, risk, state, cmdb_us(planned_start), cmdb_us(planned_end), created_by, "
      "ci_ids::text, coalesce(impact_ci_ids, ci_ids)::text FROM changes WHERE planned_start < "
      "cmdb_ts($2) AND planned_end > cmdb_ts($1) ORDER BY planned_start, id LIMIT 10001",
      [&](const soci::row& r) {
        out.push_back(CalendarChange{sql::Int(r, 0), sql::Text(r, 1), sql::Text(r, 2),
                                     sql::Text(r, 3), sql::Time(r, 4), sql::Time(r, 5),
                                     sql::Text(r, 6), sql::Ids(r, 7), sql::Ids(r, 8)});
      },
      soci::use(static_cast<long long>(from.micros)), soci::use(static_cast<long long>(to.micros)));
  return out;
}

}  // namespace cmdb::store
