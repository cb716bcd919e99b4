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

  // Changes that ended in the month, and incidents within 72 h of a completion on their impact
  // set (the CIs the submission froze, or the change's own CIs).
  sql::ForEachRow(
      db_,
      "SELECT c.id, c.title, c.state, cmdb_us(e.at), c.created_by, CASE WHEN c.state = "
      "'completed' THEN (SELECT coalesce(array_agg(i.id ORDER BY i.id), '{}')::text FROM "
      "incidents i WHERE i.started_at >= e.at AND i.started_at < e.at + interval '72 hours' AND "
      "i.ci_ids && coalesce(c.impact_ci_ids, c.ci_ids)) ELSE '{}' END FROM changes c JOIN "
      "LATERAL (SELECT max(at) AS at FROM change_events ev WHERE ev.change_id = c.id AND "
      "ev.to_state = c.state) e ON true WHERE c.state IN ('completed', 'failed', 'rejected', "
      "'cancelled') AND e.at >= cmdb_ts($1) AND e.at < cmdb_ts($2) ORDER BY e.at, c.id",
      [&](const soci::row& r) {
        d.changes.push_back(ReportChange{sql::Int(r, 0), sql::Text(r, 1), sql::Text(r, 2),
                                         sql::Time(r, 3), sql::Text(r, 4), sql::Ids(r, 5)});
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

}  // namespace cmdb::store
