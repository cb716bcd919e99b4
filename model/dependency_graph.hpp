#pragma once
// The dependency graph in compact adjacency arrays (CSR, both directions, relation type per
// edge) and the impact traversal over it: which CIs fail when one fails (down), or which CIs
// one needs (up), following each relation type's propagation, honouring k-of-n redundancy,
// depth, type filters and a node cap. Immutable once built: safe to share between threads.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/configuration_item.hpp"
#include "model/relation.hpp"

namespace cmdb::model {

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

enum class ImpactDirection {
  kDown,  // what fails if the root fails
  kUp,    // what the root needs
};

struct ImpactQuery {
  CiId root = 0;
  ImpactDirection direction = ImpactDirection::kDown;
  int max_depth = -1;                       // -1: unlimited
  std::vector<std::string> relation_types;  // empty: every type
  std::size_t max_nodes = 10000;
};

struct ImpactNode {
  CiId id = 0;
  int distance = 0;
  std::vector<RelationId> via;  // relation ids from the root to this node
};

// A CI that redundancy kept up: `healthy` of `providers` are still up, `min_healthy` needed.
struct AbsorbedNode {
  CiId id = 0;
  int providers = 0;
  int failed = 0;
  int healthy = 0;
  int min_healthy = 0;
};

struct ImpactEdge {
  RelationId id = 0;
  CiId from = 0;
  CiId to = 0;
  std::string type;
};

struct ImpactResult {
  std::vector<ImpactNode> nodes;  // the root first (distance 0), then by distance
  std::vector<ImpactEdge> edges;  // relations along which failure travels between nodes
  std::vector<AbsorbedNode> absorbed;
  bool truncated = false;
};

class DependencyGraph {
 public:
  DependencyGraph() = default;

  // Builds the arrays. Edges naming unknown CIs or relation types are ignored (the database
  // guarantees there are none).
  static DependencyGraph Build(std::vector<GraphNode> nodes, const std::vector<GraphEdge>& edges,
                               const std::vector<RelationType>& types);

  // Throws Error{kNotFound} for an unknown root, Error{kInvalidArgument} for an unknown
  // relation type in the filter.
  ImpactResult Impact(const ImpactQuery& query) const;

  const GraphNode* Find(CiId id) const;
  std::size_t node_count() const { return nodes_.size(); }
  std::size_t edge_count() const { return edge_ids_.size(); }

 private:
  using Index = std::uint32_t;
  std::vector<GraphNode> nodes_;
  std::unordered_map<CiId, Index> index_;
  std::vector<std::string> type_names_;
  std::vector<Propagation> type_propagation_;
  // Outgoing (from -> to) and incoming (to <- from) adjacency, CSR: the edges of node i are
  // [offsets[i], offsets[i + 1]) in the neighbour/type/edge arrays.
  std::vector<Index> out_offsets_, out_neighbours_, out_edges_;
  std::vector<Index> in_offsets_, in_neighbours_, in_edges_;
  std::vector<RelationId> edge_ids_;
  std::vector<std::uint16_t> edge_types_;
  std::vector<Index> edge_from_, edge_to_;
};

}  // namespace cmdb::model
