#include "reports/change_assessment.hpp"

#include <algorithm>
#include <iterator>

#include <boost/json/value_from.hpp>

#include "model/json.hpp"
#include "store/drift_repository.hpp"
#include "store/incident_repository.hpp"

namespace cmdb::reports {

using model::CiId;
using model::Error;
using model::ErrorCode;
namespace json = boost::json;

namespace {

constexpr std::size_t kListedCis = 1000;    // affected CIs listed in an assessment
constexpr std::size_t kListedShared = 100;  // shared CIs listed per collision
constexpr std::size_t kMaxCollisions = 1000;

json::array Affected(const graph::ImpactResult& result) {
  json::array affected;
  for (std::size_t at = 0; at < result.nodes.size() && at < kListedCis; ++at) {
    const graph::NodeView v = result.nodes.View(at);
    const std::int32_t distance = result.nodes.Distance(at);
    affected.push_back(json::object{{"ci", v.id},
                                    {"name", v.name},
                                    {"type", v.type},
                                    {"status", v.status},
                                    {"distance", distance},
                                    {"in_change", distance == 0}});
  }
  return affected;
}

json::array Services(const graph::ImpactResult& result) {
  json::array services;
  for (std::size_t at : result.services) {
    const graph::NodeView v = result.nodes.View(at);
    services.push_back(
        json::object{{"ci", v.id}, {"name", v.name}, {"distance", result.nodes.Distance(at)}});
  }
  return services;
}

json::array Absorbed(const graph::ImpactResult& result) {
  json::array absorbed;
  for (const auto& a : result.absorbed) {
    absorbed.push_back(json::object{{"ci", a.id},
                                    {"providers", a.providers},
                                    {"failed", a.failed},
                                    {"healthy", a.healthy},
                                    {"min_healthy", a.min_healthy}});
  }
  return absorbed;
}

json::array OpenDrift(store::DbSession& db, const std::vector<CiId>& cis) {
  json::array drift;
  for (const model::DriftFinding& f : store::DriftRepository(db).OpenOn(cis)) {
    drift.push_back(json::object{{"finding", f.id},
                                 {"ci", f.ci},
                                 {"attribute", f.attribute},
                                 {"expected", f.expected},
                                 {"actual", f.actual},
                                 {"authorized", f.authorized}});
  }
  return drift;
}

json::array OpenIncidents(store::DbSession& db, const std::vector<CiId>& cis) {
  json::array incidents;
  for (const model::Incident& i : store::IncidentRepository(db).OpenOn(cis)) {
    incidents.push_back(json::object{{"incident", i.id},
                                     {"title", i.title},
                                     {"severity", i.severity},
                                     {"tier", i.tier},
                                     {"state", json::value_from(i.state)},
                                     {"ci_ids", model::IdsToJson(i.ci_ids)}});
  }
  return incidents;
}

}  // namespace

graph::ImpactQuery ChangeImpactQuery(const model::Change& change, std::size_t max_nodes) {
  graph::ImpactQuery q;
  q.root = change.ci_ids.at(0);
  q.also_failing.assign(change.ci_ids.begin() + 1, change.ci_ids.end());
  q.direction = graph::ImpactDirection::kDown;
  q.max_nodes = max_nodes;
  return q;
}

store::FrozenAssessment AssessChange(store::DbSession& db, const model::Change& change,
                                     const graph::DependencyGraph& graph) {
  graph::ImpactQuery q = ChangeImpactQuery(change, graph.node_count() + 1);
  q.include_edges = false;
  graph::ImpactResult result;
  try {
    result = graph.Impact(q);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kConflict, std::string(e.what()) + " any more; edit the change's CIs");
  }
  store::FrozenAssessment out;
  out.impact_set.reserve(result.nodes.size());
  for (const auto& n : result.nodes) out.impact_set.push_back(n.id);
  std::sort(out.impact_set.begin(), out.impact_set.end());
  out.assessment = {{"computed_at", model::FormatTimestamp(model::Timestamp::Now())},
                    {"affected_count", static_cast<std::int64_t>(out.impact_set.size())},
                    {"affected", Affected(result)},
                    {"affected_truncated", out.impact_set.size() > kListedCis},
                    {"services", Services(result)},
                    {"absorbed", Absorbed(result)},
                    {"open_drift", OpenDrift(db, out.impact_set)},
                    {"open_incidents", OpenIncidents(db, out.impact_set)}};
  return out;
}

json::array ChangeCollisions(store::DbSession& db, const model::Change& change,
                             const std::vector<CiId>& impact_set) {
  // The changes active in an overlapping window are few (an index range scan); their impact
  // sets are intersected here by merging sorted lists. Asking PostgreSQL for `impact_ci_ids &&
  // $set` instead costs one index probe per CI of a large impact set, and the array overlap
  // operator compares every pair of elements.
  std::vector<CiId> mine = impact_set;
  std::sort(mine.begin(), mine.end());
  json::array out;
  std::vector<CiId> shared;
  for (store::ActiveChange& other : store::ChangeRepository(db).ActiveInWindow(
           change.planned_start, change.planned_end, change.id)) {
    if (out.size() >= kMaxCollisions) break;
    std::sort(other.impact_set.begin(), other.impact_set.end());
    shared.clear();
    std::set_intersection(mine.begin(), mine.end(), other.impact_set.begin(),
                          other.impact_set.end(), std::back_inserter(shared));
    if (shared.empty()) continue;
    const auto count = static_cast<std::int64_t>(shared.size());
    if (shared.size() > kListedShared) shared.resize(kListedShared);
    out.push_back(json::object{{"change", other.id},
                               {"title", other.title},
                               {"state", json::value_from(other.state)},
                               {"planned_start", model::FormatTimestamp(other.planned_start)},
                               {"planned_end", model::FormatTimestamp(other.planned_end)},
                               {"shared_count", count},
                               {"shared_cis", model::IdsToJson(shared)}});
  }
  return out;
}

}  // namespace cmdb::reports
