#pragma once
// What a dependency graph is built from: its CIs and relations as plain rows, the changes that
// bring a set of rows up to date, and the compact binary form stored in PostgreSQL for the next
// instance to start from. Value types and pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/configuration_item.hpp"
#include "model/relation.hpp"

namespace cmdb::graph {

using model::CiId;
using model::RelationId;

struct GraphNode {
  CiId id = 0;
  std::string type;
  std::string name;
  std::string status;
  std::int32_t min_healthy = 0;  // 0: no redundancy
};

struct GraphEdge {
  RelationId id = 0;
  CiId from = 0;
  CiId to = 0;
  std::string type;
};

// What a graph is built from: its CIs and relations.
struct GraphContents {
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
};

// The current rows of CIs and relations that changed: each id in `ci_ids` is replaced by its
// row in `cis`, or removed when `cis` has none (it was deleted); the same for relations.
struct GraphChanges {
  std::vector<CiId> ci_ids;
  std::vector<GraphNode> cis;
  std::vector<RelationId> relation_ids;
  std::vector<GraphEdge> relations;
  bool empty() const { return ci_ids.empty() && relation_ids.empty(); }
};
void ApplyChanges(GraphContents& contents, GraphChanges changes);

// A compact binary form of the contents (little-endian, as this machine), for the snapshot
// stored in PostgreSQL. Deserialize throws Error{kInternal} on anything it did not write.
std::string SerializeGraph(const GraphContents& contents);
GraphContents DeserializeGraph(std::string_view bytes);

}  // namespace cmdb::graph
