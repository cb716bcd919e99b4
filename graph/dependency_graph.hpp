#pragma once
// The dependency graph in compact adjacency arrays (CSR, both directions, relation type per
// edge) and the impact traversal over it: which CIs fail when one fails (down), or which CIs
// one needs (up), following each relation type's propagation, honouring k-of-n redundancy,
// depth, type filters and a node cap. Immutable once built: safe to share between threads.
// A write is applied in time proportional to it (WithChanges): the new graph shares the arrays
// and carries the change beside them until the changes are merged into new arrays (Merged).

#include <cstddef>
#include <cstdint>
#include <memory>
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
  DependencyGraph();

  // Builds the arrays. Edges naming unknown CIs or relation types are ignored (the database
  // guarantees there are none).
  static DependencyGraph Build(std::vector<GraphNode> nodes, const std::vector<GraphEdge>& edges,
                               const std::vector<RelationType>& types);

  // This graph with `changes` applied, in time proportional to them, not to the graph: the
  // result shares this graph's arrays and carries what changed beside them (CIs added,
  // changed or deleted; relations added or removed), which the traversal reads with the
  // arrays. Its answers are those of a Build of the changed contents. With relation types
  // other than this graph's (`types` as they are now), it is a Build instead.
  DependencyGraph WithChanges(GraphChanges changes, const std::vector<RelationType>& types) const;
  // The same when the relation types are known to be this graph's (a write of this instance).
  // A relation of a type the graph does not know is left out (see HasRelationType).
  DependencyGraph WithChanges(GraphChanges changes) const;
  // Whether the graph was built with the relation type `name`.
  bool HasRelationType(std::string_view name) const;
  // The CIs and relations changed beside the arrays (0 for a graph Build made): past a
  // threshold, Merged() is worth its cost.
  std::size_t delta_size() const;
  // The same graph with its changes merged into new arrays (a Build of its contents).
  DependencyGraph Merged() const;
  // Throws Error{kNotFound} for an unknown root, Error{kInvalidArgument} for an unknown
  // relation type in the filter.
  ImpactResult Impact(const ImpactQuery& query) const;

  std::optional<NodeView> Find(CiId id) const;
  // The CIs and relations the graph holds (relations of types it does not know are not kept).
  GraphContents Contents() const;
  std::size_t node_count() const;
  std::size_t edge_count() const;

 private:
  using Index = std::uint32_t;
  static constexpr Index kNoIndex = ImpactStep::kNone;
  friend class ImpactNodes;
  class Traversal;  // one Impact() query
  struct Core;      // the arrays a Build makes
  struct Delta;     // the changes carried beside them
  class Editor;     // WithChanges, change by change
  struct Redundancy {
    std::int32_t min_healthy = 0;
    std::int32_t providers = 0;
  };

  std::optional<Index> IndexOf(CiId id) const;
  NodeView View(Index i) const;
  // The relation types the graph was built with (their names and propagation).
  std::vector<RelationType> relation_types() const;
  CiId IdAt(Index i) const;
  RelationId EdgeIdAt(Index e) const;
  // Whether CI i carries changes (its state or its relations): it is then read from the delta.
  bool Touched(Index i) const;
  bool IsService(Index i) const;
  bool IsRedundant(Index i) const;
  Redundancy RedundancyOf(Index i) const;
  bool ProviderRepeats(Index i) const;
  // Calls f(neighbour, edge, type) for each slot of CI x in the adjacency `down` or up, the
  // arrays' (less the relations removed since) and then the delta's.
  template <typename F>
  void ForEachSlot(Index x, bool down, F&& f) const;

  std::shared_ptr<const Core> core_;
  std::shared_ptr<const Delta> delta_;  // null: no changes since the Build
};

}  // namespace cmdb::graph
