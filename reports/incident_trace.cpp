#include "reports/incident_trace.hpp"

#include <algorithm>
#include <unordered_map>

#include <boost/json/value_from.hpp>

#include "model/json.hpp"
#include "store/change_repository.hpp"
#include "store/drift_repository.hpp"
#include "store/knowledge_repository.hpp"

namespace cmdb::reports {

using model::CiId;
namespace json = boost::json;

namespace {

// Closures up to this size are looked up through the index on the changes' CIs; larger ones
// (one index probe per CI in PostgreSQL) are matched against in memory.
constexpr std::size_t kSmallClosure = 2000;
constexpr std::size_t kListedKnowledge = 100;

std::string Duration(std::int64_t micros) {
  const std::int64_t minutes = micros / 60000000;
  if (minutes < 60) return std::to_string(minutes) + " min";
  if (minutes < std::int64_t{48} * 60) {
    return std::to_string(minutes / 60) + " h" +
           (minutes % 60 != 0 ? " " + std::to_string(minutes % 60) + " min" : "");
  }
  return std::to_string(minutes / (std::int64_t{24} * 60)) + " days";
}

// What the incident's CIs reach on the graph of its start.
struct Reach {
  json::array services;  // business services its failure reaches
  std::int64_t reached = 0;
  // CIs involved: what the incident's CIs depend on (and they themselves), with distance.
  std::unordered_map<CiId, int> upstream;
  std::vector<CiId> involved;
};

Reach ReachOf(const model::Incident& incident, const graph::DependencyGraph& graph,
              const std::vector<CiId>& roots) {
  Reach r;
  if (!roots.empty()) {
    graph::ImpactQuery q;
    q.root = roots[0];
    q.also_failing.assign(roots.begin() + 1, roots.end());
    q.max_nodes = graph.node_count() + 1;
    q.include_edges = false;
    const graph::ImpactResult down = graph.Impact(q);
    r.reached = static_cast<std::int64_t>(down.nodes.size());
    for (std::size_t at : down.services) {
      const graph::NodeView v = down.nodes.View(at);
      r.services.push_back(
          json::object{{"ci", v.id}, {"name", v.name}, {"distance", down.nodes.Distance(at)}});
    }
    q.direction = graph::ImpactDirection::kUp;
    const graph::ImpactResult up = graph.Impact(q);
    r.upstream.reserve(up.nodes.size() + incident.ci_ids.size());
    for (const auto& n : up.nodes) r.upstream.emplace(n.id, n.distance);
  }
  r.involved.reserve(r.upstream.size() + incident.ci_ids.size());
  for (const auto& [id, distance] : r.upstream) r.involved.push_back(id);
  for (CiId id : incident.ci_ids) {
    if (!r.upstream.contains(id)) {
      r.involved.push_back(id);
      r.upstream.emplace(id, 0);
    }
  }
  return r;
}

// Changes on the CIs involved, completed within the look-back window before the start or in
// progress when it started, nearest in the graph and most recent first, each with why.
json::array SuspectChanges(store::DbSession& db, const model::Incident& incident,
                           const graph::DependencyGraph& graph, const Reach& reach,
                           int lookback_hours) {
  const std::int64_t window = std::int64_t{lookback_hours} * 3600 * 1000000;
  const bool small = reach.involved.size() <= kSmallClosure;
  store::ChangeRepository changes(db);
  struct Suspect {
    json::object json;
    int distance;
    std::int64_t before;
  };
  std::vector<Suspect> suspects;
  std::vector<std::int64_t> suspect_ids;
  for (const store::SuspectChange& c :
       changes.Suspects(incident.started_at, model::Timestamp{incident.started_at.micros - window},
                        small ? std::optional(reach.involved) : std::nullopt)) {
    int best = 1 << 30;
    CiId via = 0;
    for (CiId ci : c.ci_ids) {
      auto u = reach.upstream.find(ci);
      if (u != reach.upstream.end() && u->second < best) {
        best = u->second;
        via = ci;
      }
    }
    if (via == 0) continue;  // on nothing the incident's CIs depend on
    std::optional<graph::NodeView> v = graph.Find(via);
    const std::string name = v ? std::string(v->name) : "CI " + std::to_string(via);
    const std::int64_t before = incident.started_at.micros - c.at.micros;
    std::string reason = c.completed_in_window ? "completed " : "in progress since ";
    reason += Duration(before) + " before the incident started";
    if (!c.completed_in_window && c.state != model::ChangeState::kInProgress) {
      reason += " (" + std::string(model::ChangeStateName(c.state)) + " since)";
    }
    reason += ", on " + name;
    reason += best == 0
                  ? ", one of the incident's CIs"
                  : ", which the incident's CIs depend on (distance " + std::to_string(best) + ")";
    suspect_ids.push_back(c.id);
    suspects.push_back({json::object{{"change", c.id},
                                     {"title", ""},
                                     {"state", json::value_from(c.state)},
                                     {"at", model::FormatTimestamp(c.at)},
                                     {"ci", via},
                                     {"distance", best},
                                     {"reason", reason}},
                        best, before});
  }
  // Titles are read for the suspects only: thousands of changes can fall in the window.
  const std::map<std::int64_t, std::string> titles = changes.Titles(suspect_ids);
  for (Suspect& s : suspects) {
    auto title = titles.find(s.json.at("change").as_int64());
    if (title != titles.end()) s.json["title"] = title->second;
  }
  std::sort(suspects.begin(), suspects.end(), [](const Suspect& a, const Suspect& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.before < b.before;
  });
  json::array ranked;
  for (auto& s : suspects) {
    s.json["rank"] = static_cast<std::int64_t>(ranked.size()) + 1;
    ranked.push_back(std::move(s.json));
  }
  return ranked;
}

json::array OpenDrift(store::DbSession& db, const std::vector<CiId>& involved) {
  json::array drift;
  for (const model::DriftFinding& f : store::DriftRepository(db).OpenOn(involved)) {
    drift.push_back(
        json::object{{"finding", f.id},
                     {"ci", f.ci},
                     {"attribute", f.attribute},
                     {"expected", f.expected},
                     {"actual", f.actual},
                     {"authorized", f.authorized},
                     {"change", f.change ? json::value(*f.change) : json::value(nullptr)}});
  }
  return drift;
}

// Approved articles are few next to a closure; they are matched against it here.
json::array Knowledge(store::DbSession& db, const Reach& reach) {
  json::array knowledge;
  for (const model::Article& a : store::KnowledgeRepository(db).ApprovedWithCis()) {
    if (knowledge.size() >= kListedKnowledge) break;
    if (std::none_of(a.ci_ids.begin(), a.ci_ids.end(),
                     [&](CiId id) { return reach.upstream.contains(id); })) {
      continue;
    }
    knowledge.push_back(json::object{
        {"article", a.id}, {"title", a.title}, {"ci_ids", model::IdsToJson(a.ci_ids)}});
  }
  return knowledge;
}

}  // namespace

json::object TraceIncident(store::DbSession& db, const model::Incident& incident,
                           const TraceOptions& options) {
  // The graph as it was when the incident started: the in-memory one when nothing changed
  // since, else the one of that instant from history.
  std::shared_ptr<const graph::DependencyGraph> then;
  const graph::DependencyGraph* graph = options.current;
  const bool from_history =
      graph == nullptr || options.current_since.micros > incident.started_at.micros;
  if (from_history) {
    then = options.graph_as_of(incident.started_at);
    graph = then.get();
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
  Reach reach = ReachOf(incident, *graph, roots);
  return {{"incident", incident.id},
          {"as_of", model::FormatTimestamp(incident.started_at)},
          {"graph", from_history ? "history" : "current"},
          {"cis_missing_then", std::move(missing)},
          {"services", std::move(reach.services)},
          {"reached_count", reach.reached},
          {"suspect_changes", SuspectChanges(db, incident, *graph, reach, options.lookback_hours)},
          {"lookback_hours", options.lookback_hours},
          {"drift", OpenDrift(db, reach.involved)},
          {"knowledge", Knowledge(db, reach)}};
}

}  // namespace cmdb::reports
