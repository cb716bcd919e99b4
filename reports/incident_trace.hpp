#pragma once
// The trace of an incident, as an incident handler reads it: the business services its CIs'
// failure reaches (on the graph as of the incident's start), the changes that may have
// caused it ranked by graph distance and recency with a reason each, open drift and approved
// knowledge on the CIs involved. A builder over the store and the dependency graph; not
// thread-safe (one session).

#include <functional>
#include <memory>

#include <boost/json/object.hpp>

#include "graph/dependency_graph.hpp"
#include "model/incident.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::reports {

struct TraceOptions {
  int lookback_hours = 72;
  // The in-memory graph and when it last changed: the trace uses it when nothing changed
  // since the incident started, and the graph as of the start otherwise.
  const graph::DependencyGraph* current = nullptr;
  model::Timestamp current_since;
  // The graph as of an instant, from history (store::LoadDependencyGraph, or a cache of it).
  std::function<std::shared_ptr<const graph::DependencyGraph>(model::Timestamp)> graph_as_of;
};

boost::json::object TraceIncident(store::DbSession& db, const model::Incident& incident,
                                  const TraceOptions& options);

}  // namespace cmdb::reports
