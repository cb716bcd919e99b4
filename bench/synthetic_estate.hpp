#pragma once
// The synthetic estate of the benchmarks: business services -> applications -> databases /
// VMs -> hypervisors -> top-of-rack and core switches, with k-of-n clusters and shared hubs
// (DNS, storage). Deterministic (fixed seed); ~4.1 relations per CI (1M CIs: 4.1M relations).

#include <cstddef>
#include <vector>

#include "graph/dependency_graph.hpp"
#include "store/db_pool.hpp"

namespace cmdb::bench {

struct Estate {
  std::vector<cmdb::graph::GraphNode> nodes;
  std::vector<cmdb::graph::GraphEdge> edges;
  cmdb::model::CiId first_core = 0, first_tor = 0, first_hv = 0, first_vm = 0, storage_hub = 0;
  cmdb::model::CiId first_service = 0, first_app = 0, first_db = 0, first_cluster = 0;
  std::size_t apps = 0, dbs = 0, vms = 0;
};

// About `total` CIs.
Estate Generate(std::size_t total);

// The relation types the estate uses, with their propagation.
std::vector<cmdb::model::RelationType> EstateRelationTypes();

// Writes the estate into a migrated, empty cmdb database with COPY (its foreign keys hold
// by construction, so their triggers are skipped), continues the id sequences after it, then
// analyses the tables.
void LoadEstate(cmdb::store::DbSession& db, const Estate& e);
// The CIs only (no relations), the same way; the id sequences continue after them.
void LoadCis(cmdb::store::DbSession& db, const Estate& e);

}  // namespace cmdb::bench
