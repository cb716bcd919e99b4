#pragma once
// The dependency graph in compact adjacency arrays (CSR, both directions, relation type per
// edge) and the impact traversal over it: which CIs fail when one fails (down), or which CIs
// one needs (up), following each relation type's propagation, honouring k-of-n redundancy,
// depth, type filters and a node cap. Immutable once built: safe to share between threads.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph_contents.hpp"
#include "model/relation.hpp"

namespace cmdb::graph {

using model::Propagation;
using model::RelationType;

enum class ImpactDirection {
  kDown,  // what fails if the root fails
  kUp,    // what the root needs
};

struct ImpactQuery {
  CiId root = 0;
  std::vector<CiId> also_failing;  // more CIs failing with the root (a change's CIs): distance 0
  ImpactDirection direction = ImpactDirection::kDown;
  int max_depth = -1;                       // -1: unlimited
  std::vector<std::string> relation_types;  // empty: every type
  std::size_t max_nodes = 10000;
  bool include_edges = true;  // false: nodes and absorbed only (cheaper)
};

struct ImpactNode {
  CiId id = 0;
  std::int32_t distance = 0;
  std::int32_t parent = -1;  // index in ImpactResult::nodes of the CI it was reached from
  RelationId via_edge = 0;   // the relation it was reached over (0 for the root)
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
  std::string_view type;  // points into the graph, which must outlive the result
};

// A CI as the graph stores it; the views point into the graph, which must outlive them.
struct NodeView {
  CiId id = 0;
  std::string_view name;
  std::string_view type;
  std::string_view status;
  std::int32_t min_healthy = 0;
};

class DependencyGraph;

// One impacted CI as the traversal reached it, in the graph's own indexes.
struct ImpactStep {
  std::uint32_t node = 0;    // the CI
  std::uint32_t parent = 0;  // position in ImpactNodes of the CI it was reached from, or kNone
  std::uint32_t via = 0;     // the relation it was reached over, or kNone
  std::int32_t distance = 0;
  static constexpr std::uint32_t kNone = 0xFFFFFFFFU;
};

// The impacted CIs in traversal order: the traversal's own queue, kept as the result (no copy
// of a million-CI closure), each CI resolved through the graph when it is read. The graph
// must outlive it.
class ImpactNodes {
 public:
  class Iterator {
   public:
    using value_type = ImpactNode;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Iterator(const ImpactNodes* nodes, std::size_t at) : nodes_(nodes), at_(at) {}
    ImpactNode operator*() const { return (*nodes_)[at_]; }
    Iterator& operator++() {
      ++at_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++at_;
      return before;
    }
    bool operator==(const Iterator& other) const { return at_ == other.at_; }

   private:
    const ImpactNodes* nodes_ = nullptr;
    std::size_t at_ = 0;
  };

  std::size_t size() const { return steps_.size(); }
  bool empty() const { return steps_.empty(); }
  // The CI at `at`: its id, distance, parent position and the relation id it was reached over.
  ImpactNode operator[](std::size_t at) const;
  // Its name, type and status, read from the graph without an id look-up.
  NodeView View(std::size_t at) const;
  std::int32_t Distance(std::size_t at) const { return steps_[at].distance; }
  // Replaces `path` by the relation ids from the root to the CI at `at` (the `via` of the API).
  void ViaPath(std::size_t at, std::vector<RelationId>& path) const;
  // Fetches what View(at) reads into the cache (writers call it some places ahead).
  void Prefetch(std::size_t at) const;
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, steps_.size()}; }

 private:
  friend class DependencyGraph;
  const DependencyGraph* graph_ = nullptr;
  std::vector<ImpactStep> steps_;
};

struct ImpactResult {
  ImpactNodes nodes;              // the root first (distance 0), then by distance
  std::vector<ImpactEdge> edges;  // relations along which failure travels between nodes
  std::vector<AbsorbedNode> absorbed;
  // Positions in `nodes` of the business services reached (the root included), in order:
  // the rollup of the API without a look-up per CI.
  std::vector<std::size_t> services;
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

  std::optional<NodeView> Find(CiId id) const;
  // The CIs and relations the graph holds (relations of types it does not know are not kept).
  GraphContents Contents() const;
  std::size_t node_count() const { return ids_.size(); }
  std::size_t edge_count() const { return edge_ids_.size(); }

 private:
  using Index = std::uint32_t;
  static constexpr Index kNoIndex = ImpactStep::kNone;
  friend class ImpactNodes;
  class Traversal;  // one Impact() query
  std::optional<Index> IndexOf(CiId id) const;
  NodeView View(Index i) const;
  // Build(), phase by phase: the node columns, the id index, the relations, the failure
  // adjacency in both directions, then the per-CI bits (services, redundancy).
  void AddNodes(std::vector<GraphNode>& nodes);
  void IndexIds();
  void AddEdges(const std::vector<GraphEdge>& edges, const std::vector<RelationType>& types);
  void BuildAdjacency();
  void MarkServicesAndRedundancy();

  // Nodes, column by column: names in one buffer, types and statuses as small indexes.
  std::vector<CiId> ids_;
  std::string names_;
  std::vector<std::uint32_t> name_offsets_;  // size n + 1
  std::vector<std::uint16_t> node_types_;
  std::vector<std::string> node_type_names_;
  std::vector<std::uint8_t> statuses_;
  std::vector<std::string> status_names_;
  std::uint16_t service_type_ = 0xFFFF;  // node_type_names_ index of business_service
  // Per CI, side by side so that meeting a redundant CI costs one cache miss: its
  // min_healthy (0: no redundancy) and how many distinct CIs' failure reaches it over any
  // relation type (the unfiltered case, computed once at build time; 0 without redundancy).
  struct Redundancy {
    std::int32_t min_healthy = 0;
    std::int32_t providers = 0;
  };
  std::vector<Redundancy> redundancy_;
  // CI id -> index: a direct table when ids are dense (the usual case: one identity
  // sequence), else a sorted list searched by bisection.
  std::vector<Index> dense_index_;
  std::vector<std::pair<CiId, Index>> sparse_index_;
  std::vector<std::string> type_names_;
  std::vector<Propagation> type_propagation_;
  // Failure adjacency, CSR: down_* lists for node i the CIs its failure reaches directly
  // ([down_offsets_[i], down_offsets_[i + 1]) in the neighbour/edge/type arrays), up_* the CIs
  // whose failure reaches i (its providers). Each relation is stored once per direction in
  // which its type propagates (twice for two-way types, never for types that propagate
  // nothing), so a traversal reads only slots that matter, in one contiguous run per CI; the
  // relation type is repeated per slot for type filters.
  std::vector<Index> down_offsets_, down_neighbours_, down_edges_;
  std::vector<Index> up_offsets_, up_neighbours_, up_edges_;
  std::vector<std::uint16_t> down_types_, up_types_;
  // One bit per CI: it has redundancy (min_healthy > 0). A bit set small enough to stay in
  // cache, read for every CI a downward traversal reaches.
  std::vector<std::uint64_t> redundant_bits_;
  // One bit per CI: it is a business service (noted as the traversal admits CIs).
  std::vector<std::uint64_t> service_bits_;
  // The CIs are stored in ascending id order (the usual case: loaded by id, new CIs
  // appended), so index order is id order.
  bool ids_ascending_ = true;
  std::vector<std::uint8_t> provider_repeats_;  // 1: some provider has parallel relations
  std::vector<RelationId> edge_ids_;
  std::vector<std::uint16_t> edge_types_;
  std::vector<Index> edge_from_, edge_to_;
};

}  // namespace cmdb::graph
