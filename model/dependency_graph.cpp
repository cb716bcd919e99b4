#include "model/dependency_graph.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <unordered_set>

#include "model/error.hpp"

namespace cmdb::model {
namespace {

bool SpreadsForward(Propagation p) { return p == Propagation::kFromTo || p == Propagation::kBoth; }
bool SpreadsBackward(Propagation p) { return p == Propagation::kToFrom || p == Propagation::kBoth; }

}  // namespace

DependencyGraph DependencyGraph::Build(std::vector<GraphNode> nodes,
                                       const std::vector<GraphEdge>& edges,
                                       const std::vector<RelationType>& types) {
  DependencyGraph g;
  g.nodes_ = std::move(nodes);
  g.index_.reserve(g.nodes_.size());
  for (Index i = 0; i < g.nodes_.size(); ++i) g.index_.emplace(g.nodes_[i].id, i);
  std::unordered_map<std::string, std::uint16_t> type_index;
  for (const RelationType& t : types) {
    type_index.emplace(t.name, static_cast<std::uint16_t>(g.type_names_.size()));
    g.type_names_.push_back(t.name);
    g.type_propagation_.push_back(t.propagation);
  }
  struct Resolved {
    Index from;
    Index to;
    Index edge;
  };
  std::vector<Resolved> resolved;
  resolved.reserve(edges.size());
  for (const GraphEdge& e : edges) {
    auto from = g.index_.find(e.from);
    auto to = g.index_.find(e.to);
    auto type = type_index.find(e.type);
    if (from == g.index_.end() || to == g.index_.end() || type == type_index.end()) continue;
    resolved.push_back({from->second, to->second, static_cast<Index>(g.edge_ids_.size())});
    g.edge_ids_.push_back(e.id);
    g.edge_types_.push_back(type->second);
    g.edge_from_.push_back(from->second);
    g.edge_to_.push_back(to->second);
  }
  const std::size_t n = g.nodes_.size();
  auto fill = [&](bool outgoing, std::vector<Index>& offsets, std::vector<Index>& neighbours,
                  std::vector<Index>& edge_of) {
    offsets.assign(n + 1, 0);
    for (const Resolved& r : resolved) ++offsets[(outgoing ? r.from : r.to) + 1];
    for (std::size_t i = 0; i < n; ++i) offsets[i + 1] += offsets[i];
    neighbours.resize(resolved.size());
    edge_of.resize(resolved.size());
    std::vector<Index> cursor(offsets.begin(), offsets.end() - 1);
    for (const Resolved& r : resolved) {
      Index slot = cursor[outgoing ? r.from : r.to]++;
      neighbours[slot] = outgoing ? r.to : r.from;
      edge_of[slot] = r.edge;
    }
  };
  fill(true, g.out_offsets_, g.out_neighbours_, g.out_edges_);
  fill(false, g.in_offsets_, g.in_neighbours_, g.in_edges_);
  return g;
}

const GraphNode* DependencyGraph::Find(CiId id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &nodes_[it->second];
}

ImpactResult DependencyGraph::Impact(const ImpactQuery& query) const {
  auto root_it = index_.find(query.root);
  if (root_it == index_.end()) {
    throw Error(ErrorCode::kNotFound, "CI " + std::to_string(query.root) + " does not exist");
  }
  std::vector<bool> allowed(type_names_.size(), query.relation_types.empty());
  for (const std::string& name : query.relation_types) {
    auto it = std::find(type_names_.begin(), type_names_.end(), name);
    if (it == type_names_.end()) {
      throw Error(ErrorCode::kInvalidArgument, "unknown relation type '" + name + "'");
    }
    allowed[static_cast<std::size_t>(it - type_names_.begin())] = true;
  }
  const bool down = query.direction == ImpactDirection::kDown;
  // Calls f(neighbour, edge) for every node that failure travels to from `x` (spread) or
  // that travels into `x` (providers), under the type filter.
  auto for_each = [&](Index x, bool towards_consumers, auto&& f) {
    for (Index s = out_offsets_[x]; s < out_offsets_[x + 1]; ++s) {
      Index e = out_edges_[s];
      if (!allowed[edge_types_[e]]) continue;
      Propagation p = type_propagation_[edge_types_[e]];
      if (towards_consumers ? SpreadsForward(p) : SpreadsBackward(p)) f(out_neighbours_[s], e);
    }
    for (Index s = in_offsets_[x]; s < in_offsets_[x + 1]; ++s) {
      Index e = in_edges_[s];
      if (!allowed[edge_types_[e]]) continue;
      Propagation p = type_propagation_[edge_types_[e]];
      if (towards_consumers ? SpreadsBackward(p) : SpreadsForward(p)) f(in_neighbours_[s], e);
    }
  };
  constexpr Index kNone = std::numeric_limits<Index>::max();
  const std::size_t n = nodes_.size();
  std::vector<int> distance(n, -1);
  std::vector<Index> parent_edge(n, kNone);
  std::vector<Index> parent(n, kNone);
  std::vector<Index> order;
  std::deque<Index> queue;
  const Index root = root_it->second;
  distance[root] = 0;
  order.push_back(root);
  queue.push_back(root);
  ImpactResult result;
  const std::size_t cap = std::max<std::size_t>(1, query.max_nodes);
  std::vector<Index> pending;  // redundant CIs reached but (so far) kept up
  std::vector<bool> is_pending(n, false);
  auto impact = [&](Index y, Index from, Index e) {
    if (order.size() >= cap) {
      result.truncated = true;
      return false;
    }
    distance[y] = distance[from] + 1;
    parent[y] = from;
    parent_edge[y] = e;
    order.push_back(y);
    queue.push_back(y);
    return true;
  };
  for (;;) {
    while (!queue.empty() && !result.truncated) {
      Index x = queue.front();
      queue.pop_front();
      if (query.max_depth >= 0 && distance[x] >= query.max_depth) continue;
      for_each(x, down, [&](Index y, Index e) {
        if (distance[y] >= 0 || result.truncated) return;
        if (down && nodes_[y].min_healthy > 0) {
          if (!is_pending[y]) {
            is_pending[y] = true;
            pending.push_back(y);
          }
          return;
        }
        impact(y, x, e);
      });
    }
    if (result.truncated) break;
    // A redundant CI fails once fewer than k of its providers are healthy; failures only
    // accumulate, so re-checking until nothing changes reaches the fixpoint.
    bool changed = false;
    for (Index y : pending) {
      if (distance[y] >= 0) continue;
      int providers = 0;
      int failed = 0;
      Index best = kNone;
      Index best_edge = kNone;
      std::unordered_set<Index> seen;
      for_each(y, !down, [&](Index p, Index e) {
        if (!seen.insert(p).second) return;
        ++providers;
        if (distance[p] < 0) return;
        ++failed;
        if (query.max_depth >= 0 && distance[p] >= query.max_depth) return;
        if (best == kNone || distance[p] < distance[best]) {
          best = p;
          best_edge = e;
        }
      });
      if (providers - failed < nodes_[y].min_healthy && best != kNone) {
        if (!impact(y, best, best_edge)) break;
        changed = true;
      }
    }
    if (!changed || result.truncated) break;
  }
  for (Index y : pending) {
    if (distance[y] >= 0) continue;
    AbsorbedNode a;
    a.id = nodes_[y].id;
    a.min_healthy = nodes_[y].min_healthy;
    std::unordered_set<Index> seen;
    for_each(y, !down, [&](Index p, Index) {
      if (!seen.insert(p).second) return;
      ++a.providers;
      if (distance[p] >= 0) ++a.failed;
    });
    a.healthy = a.providers - a.failed;
    // A CI left out only because its failed providers sit at the depth limit was not kept
    // up by redundancy; it is simply beyond the requested depth.
    if (a.healthy >= a.min_healthy) result.absorbed.push_back(a);
  }
  std::stable_sort(order.begin() + 1, order.end(),
                   [&](Index a, Index b) { return distance[a] < distance[b]; });
  std::unordered_set<Index> edges;
  for (Index x : order) {
    ImpactNode node;
    node.id = nodes_[x].id;
    node.distance = distance[x];
    for (Index at = x; parent[at] != kNone; at = parent[at]) {
      node.via.push_back(edge_ids_[parent_edge[at]]);
    }
    std::reverse(node.via.begin(), node.via.end());
    result.nodes.push_back(std::move(node));
    for_each(x, down, [&](Index y, Index e) {
      if (distance[y] >= 0) edges.insert(e);
    });
  }
  for (Index e : edges) {
    result.edges.push_back({edge_ids_[e], nodes_[edge_from_[e]].id, nodes_[edge_to_[e]].id,
                            type_names_[edge_types_[e]]});
  }
  std::sort(result.edges.begin(), result.edges.end(),
            [](const ImpactEdge& a, const ImpactEdge& b) { return a.id < b.id; });
  std::sort(result.absorbed.begin(), result.absorbed.end(),
            [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; });
  return result;
}

}  // namespace cmdb::model
