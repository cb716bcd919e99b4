#pragma once
// The assessment of a change, as a change reviewer reads it: the CIs its failure reaches (its
// own CIs and their downstream closure) with the business services, the redundancy that
// absorbs it, open drift and open incidents on them; and its collisions with other active
// changes whose windows overlap and whose impact sets intersect. Builders over the store and
// the dependency graph; the graph must outlive nothing they return. Not thread-safe (one
// session).

#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "graph/dependency_graph.hpp"
#include "model/change.hpp"
#include "store/change_repository.hpp"
#include "store/db_pool.hpp"

namespace cmdb::reports {

// The assessment of `change` on `graph` now (submit freezes it). kConflict when one of its
// CIs is no longer in the graph.
store::FrozenAssessment AssessChange(store::DbSession& db, const model::Change& change,
                                     const graph::DependencyGraph& graph);

// Other submitted, approved or in-progress changes whose windows overlap `change`'s and whose
// impact sets intersect `impact_set`, each with the shared CIs (at most 100 listed).
boost::json::array ChangeCollisions(store::DbSession& db, const model::Change& change,
                                    const std::vector<model::CiId>& impact_set);

// The impact query of a change: its first CI as the root, the others failing with it.
graph::ImpactQuery ChangeImpactQuery(const model::Change& change, std::size_t max_nodes);

}  // namespace cmdb::reports
