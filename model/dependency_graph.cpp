#include "model/dependency_graph.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "model/error.hpp"

namespace cmdb::model {
namespace {

bool SpreadsForward(Propagation p) { return p == Propagation::kFromTo || p == Propagation::kBoth; }
bool SpreadsBackward(Propagation p) { return p == Propagation::kToFrom || p == Propagation::kBoth; }

// Per-thread traversal state sized to the graph and reused across queries: a node counts as
// visited only when its stamp equals the current epoch, so a query never clears O(CIs) memory
// and a small closure costs microseconds even on a million-CI graph.
struct Workspace {
  // The per-CI state a traversal touches for every relation, packed so that reading a
  // neighbour's state is one cache miss, not five.
  struct NodeState {
    std::uint32_t stamp = 0;
    std::int32_t distance = 0;  // -2: pending redundancy decision
    std::uint32_t parent = 0;
    std::uint32_t parent_edge = 0;
  };
  std::vector<NodeState> state;
  std::vector<std::uint32_t> position;    // index in the result
  std::vector<std::uint32_t> edge_stamp;  // per relation: already in the result this epoch
  std::vector<std::int32_t> providers;    // redundant CIs: distinct providers
  std::vector<std::int32_t> failed_seen;  // redundant CIs: failed providers met (upper bound)
  std::uint32_t epoch = 0;

  void Begin(std::size_t n) {
    if (state.size() < n) {
      state.resize(n);
      position.resize(n);
      providers.resize(n);
      failed_seen.resize(n);
    }
    if (++epoch == 0) {  // wrapped: forget every stamp once
      for (auto& s : state) s.stamp = 0;
      std::fill(edge_stamp.begin(), edge_stamp.end(), 0);
      epoch = 1;
    }
  }
  bool Seen(std::uint32_t i) const { return state[i].stamp == epoch; }
  std::int32_t& Distance(std::uint32_t i) { return state[i].distance; }
  void Mark(std::uint32_t i, std::int32_t d) {
    state[i].stamp = epoch;
    state[i].distance = d;
  }
};

Workspace& ThreadWorkspace() {
  thread_local Workspace workspace;
  return workspace;
}

}  // namespace

std::vector<RelationId> ViaPath(const ImpactResult& result, std::size_t index) {
  std::vector<RelationId> path;
  for (auto at = static_cast<std::int64_t>(index);
       at >= 0 && result.nodes[static_cast<std::size_t>(at)].parent >= 0;
       at = result.nodes[static_cast<std::size_t>(at)].parent) {
    path.push_back(result.nodes[static_cast<std::size_t>(at)].via_edge);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

DependencyGraph DependencyGraph::Build(std::vector<GraphNode> nodes,
                                       const std::vector<GraphEdge>& edges,
                                       const std::vector<RelationType>& types) {
  DependencyGraph g;
  const std::size_t n = nodes.size();
  g.ids_.reserve(n);
  g.name_offsets_.reserve(n + 1);
  g.node_types_.reserve(n);
  g.statuses_.reserve(n);
  g.min_healthy_.reserve(n);
  std::unordered_map<std::string, std::uint16_t> type_ids;
  std::unordered_map<std::string, std::uint8_t> status_ids;
  CiId max_id = 0;
  for (GraphNode& node : nodes) {
    g.ids_.push_back(node.id);
    max_id = std::max(max_id, node.id);
    g.name_offsets_.push_back(static_cast<std::uint32_t>(g.names_.size()));
    g.names_ += node.name;
    auto [type, new_type] =
        type_ids.try_emplace(node.type, static_cast<std::uint16_t>(g.node_type_names_.size()));
    if (new_type) g.node_type_names_.push_back(node.type);
    g.node_types_.push_back(type->second);
    auto [status, new_status] =
        status_ids.try_emplace(node.status, static_cast<std::uint8_t>(g.status_names_.size()));
    if (new_status) g.status_names_.push_back(node.status);
    g.statuses_.push_back(status->second);
    g.min_healthy_.push_back(node.min_healthy);
  }
  g.name_offsets_.push_back(static_cast<std::uint32_t>(g.names_.size()));
  nodes.clear();
  nodes.shrink_to_fit();
  if (max_id >= 0 && static_cast<std::size_t>(max_id) <= 4 * n + 1024) {
    g.dense_index_.assign(static_cast<std::size_t>(max_id) + 1, kNoIndex);
    for (Index i = 0; i < n; ++i) g.dense_index_[static_cast<std::size_t>(g.ids_[i])] = i;
  } else {
    g.sparse_index_.reserve(n);
    for (Index i = 0; i < n; ++i) g.sparse_index_.emplace_back(g.ids_[i], i);
    std::sort(g.sparse_index_.begin(), g.sparse_index_.end());
  }
  std::unordered_map<std::string, std::uint16_t> type_index;
  for (const RelationType& t : types) {
    type_index.emplace(t.name, static_cast<std::uint16_t>(g.type_names_.size()));
    g.type_names_.push_back(t.name);
    g.type_propagation_.push_back(t.propagation);
  }
  g.edge_ids_.reserve(edges.size());
  g.edge_types_.reserve(edges.size());
  g.edge_from_.reserve(edges.size());
  g.edge_to_.reserve(edges.size());
  for (const GraphEdge& e : edges) {
    std::optional<Index> from = g.IndexOf(e.from);
    std::optional<Index> to = g.IndexOf(e.to);
    auto type = type_index.find(e.type);
    if (!from || !to || type == type_index.end()) continue;
    g.edge_ids_.push_back(e.id);
    g.edge_types_.push_back(type->second);
    g.edge_from_.push_back(*from);
    g.edge_to_.push_back(*to);
  }
  const std::size_t m = g.edge_ids_.size();
  auto fill = [&](const std::vector<Index>& key, const std::vector<Index>& other,
                  std::vector<Index>& offsets, std::vector<Index>& neighbours,
                  std::vector<Index>& edge_of) {
    offsets.assign(n + 1, 0);
    for (std::size_t e = 0; e < m; ++e) ++offsets[key[e] + 1];
    for (std::size_t i = 0; i < n; ++i) offsets[i + 1] += offsets[i];
    neighbours.resize(m);
    edge_of.resize(m);
    std::vector<Index> cursor(offsets.begin(), offsets.end() - 1);
    for (std::size_t e = 0; e < m; ++e) {
      Index slot = cursor[key[e]]++;
      neighbours[slot] = other[e];
      edge_of[slot] = static_cast<Index>(e);
    }
  };
  fill(g.edge_from_, g.edge_to_, g.out_offsets_, g.out_neighbours_, g.out_edges_);
  fill(g.edge_to_, g.edge_from_, g.in_offsets_, g.in_neighbours_, g.in_edges_);
  auto per_slot = [&](const std::vector<Index>& edge_of, std::vector<std::uint16_t>& types_out,
                      std::vector<std::uint8_t>& spread_out) {
    types_out.resize(m);
    spread_out.resize(m);
    for (std::size_t slot = 0; slot < m; ++slot) {
      std::uint16_t t = g.edge_types_[edge_of[slot]];
      Propagation p = g.type_propagation_[t];
      types_out[slot] = t;
      spread_out[slot] =
          static_cast<std::uint8_t>((SpreadsForward(p) ? 1U : 0U) | (SpreadsBackward(p) ? 2U : 0U));
    }
  };
  per_slot(g.out_edges_, g.out_types_, g.out_spread_);
  per_slot(g.in_edges_, g.in_types_, g.in_spread_);
  g.provider_count_.assign(n, 0);
  g.provider_repeats_.assign(n, 0);
  std::vector<Index> providers;
  for (Index y = 0; y < n; ++y) {
    if (g.min_healthy_[y] <= 0) continue;
    providers.clear();
    for (Index s = g.out_offsets_[y]; s < g.out_offsets_[y + 1]; ++s) {
      if ((g.out_spread_[s] & 2U) != 0) providers.push_back(g.out_neighbours_[s]);
    }
    for (Index s = g.in_offsets_[y]; s < g.in_offsets_[y + 1]; ++s) {
      if ((g.in_spread_[s] & 1U) != 0) providers.push_back(g.in_neighbours_[s]);
    }
    std::sort(providers.begin(), providers.end());
    const std::size_t all = providers.size();
    g.provider_count_[y] = static_cast<std::int32_t>(
        std::unique(providers.begin(), providers.end()) - providers.begin());
    g.provider_repeats_[y] = static_cast<std::size_t>(g.provider_count_[y]) != all ? 1 : 0;
  }
  return g;
}

std::optional<DependencyGraph::Index> DependencyGraph::IndexOf(CiId id) const {
  if (!dense_index_.empty() || sparse_index_.empty()) {
    if (id < 0 || static_cast<std::size_t>(id) >= dense_index_.size()) return std::nullopt;
    Index i = dense_index_[static_cast<std::size_t>(id)];
    if (i == kNoIndex) return std::nullopt;
    return i;
  }
  auto it =
      std::lower_bound(sparse_index_.begin(), sparse_index_.end(), std::make_pair(id, Index{0}));
  if (it == sparse_index_.end() || it->first != id) return std::nullopt;
  return it->second;
}

NodeView DependencyGraph::View(Index i) const {
  NodeView v;
  v.id = ids_[i];
  v.name =
      std::string_view(names_).substr(name_offsets_[i], name_offsets_[i + 1] - name_offsets_[i]);
  v.type = node_type_names_[node_types_[i]];
  v.status = status_names_[statuses_[i]];
  v.min_healthy = min_healthy_[i];
  return v;
}

std::optional<NodeView> DependencyGraph::Find(CiId id) const {
  std::optional<Index> i = IndexOf(id);
  if (!i) return std::nullopt;
  return View(*i);
}

ImpactResult DependencyGraph::Impact(const ImpactQuery& query) const {
  std::optional<Index> root_index = IndexOf(query.root);
  if (!root_index) {
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
  // Calls f(neighbour, edge) for every CI that failure travels to from `x`
  // (towards_consumers), or that failure travels from into `x` (its providers).
  const bool filtered = !query.relation_types.empty();
  auto for_each = [&](Index x, bool towards_consumers, auto&& f) {
    // Out-slots carry failure forward when the type spreads from -> to; in-slots when it
    // spreads to -> from. Providers are the mirror image.
    const std::uint8_t out_bit = towards_consumers ? 1 : 2;
    const std::uint8_t in_bit = towards_consumers ? 2 : 1;
    for (Index s = out_offsets_[x]; s < out_offsets_[x + 1]; ++s) {
      if ((out_spread_[s] & out_bit) == 0 || (filtered && !allowed[out_types_[s]])) continue;
      f(out_neighbours_[s], out_edges_[s]);
    }
    for (Index s = in_offsets_[x]; s < in_offsets_[x + 1]; ++s) {
      if ((in_spread_[s] & in_bit) == 0 || (filtered && !allowed[in_types_[s]])) continue;
      f(in_neighbours_[s], in_edges_[s]);
    }
  };
  // The distinct CIs whose failure reaches `y` (parallel relations to one provider count once),
  // each with one relation that connects them.
  auto providers_of = [&](Index y) {
    std::vector<std::pair<Index, Index>> providers;
    for_each(y, !down, [&](Index p, Index e) { providers.emplace_back(p, e); });
    std::sort(providers.begin(), providers.end());
    providers.erase(std::unique(providers.begin(), providers.end(),
                                [](const auto& a, const auto& b) { return a.first == b.first; }),
                    providers.end());
    return providers;
  };
  Workspace& w = ThreadWorkspace();
  w.Begin(ids_.size());
  const Index root = *root_index;
  std::vector<Index> order;  // impacted CIs in the order they were reached
  order.push_back(root);
  w.Mark(root, 0);
  w.state[root].parent = kNoIndex;
  for (CiId id : query.also_failing) {
    std::optional<Index> x = IndexOf(id);
    if (!x) throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
    if (w.Seen(*x)) continue;
    order.push_back(*x);
    w.Mark(*x, 0);
    w.state[*x].parent = kNoIndex;
  }
  ImpactResult result;
  const std::size_t cap = std::max<std::size_t>(1, query.max_nodes);
  std::vector<Index> pending;  // redundant CIs reached but (so far) kept up
  auto impact = [&](Index y, Index from, Index e) {
    if (order.size() >= cap) {
      result.truncated = true;
      return false;
    }
    w.Mark(y, w.Distance(from) + 1);
    w.state[y].parent = from;
    w.state[y].parent_edge = e;
    order.push_back(y);
    return true;
  };
  // Redundant CIs wait until enough of their providers have failed. `failed_seen` counts the
  // failed providers met so far; parallel relations can only make it larger than the number of
  // distinct failed providers, so crossing the threshold is confirmed by an exact count.
  auto exact_failed = [&](Index y) {
    int failed = 0;
    for (const auto& [p, e] : providers_of(y)) {
      if (w.Seen(p) && w.Distance(p) >= 0) ++failed;
    }
    return failed;
  };
  for (std::size_t head = 0; head < order.size() && !result.truncated; ++head) {
    Index x = order[head];
    if (query.max_depth >= 0 && w.Distance(x) >= query.max_depth) continue;
    for_each(x, down, [&](Index y, Index e) {
      if (result.truncated) return;
      if (w.Seen(y)) {
        if (w.Distance(y) != -2) return;  // already impacted
        ++w.failed_seen[y];
      } else if (down && min_healthy_[y] > 0) {
        w.Mark(y, -2);
        w.providers[y] =
            filtered ? static_cast<std::int32_t>(providers_of(y).size()) : provider_count_[y];
        w.failed_seen[y] = 1;
        pending.push_back(y);
      } else {
        impact(y, x, e);
        return;
      }
      if (w.providers[y] - w.failed_seen[y] >= min_healthy_[y]) return;
      // Without parallel relations the running count is exact; otherwise count again.
      const bool exact = !filtered && provider_repeats_[y] == 0;
      if (!exact && w.providers[y] - exact_failed(y) >= min_healthy_[y]) return;
      w.Distance(y) = -1;  // decided: no longer pending
      impact(y, x, e);
    });
  }
  for (Index y : pending) {
    if (w.Distance(y) >= 0) continue;
    AbsorbedNode a;
    a.id = ids_[y];
    a.min_healthy = min_healthy_[y];
    if (!filtered && provider_repeats_[y] == 0 && query.max_depth < 0) {
      a.providers = w.providers[y];  // the running count is exact here
      a.failed = w.failed_seen[y];
    } else {
      for (const auto& [p, e] : providers_of(y)) {
        ++a.providers;
        if (w.Seen(p) && w.Distance(p) >= 0) ++a.failed;
      }
    }
    a.healthy = a.providers - a.failed;
    // A CI left out only because its failed providers sit at the depth limit was not kept
    // up by redundancy; it is simply beyond the requested depth.
    if (a.healthy >= a.min_healthy) result.absorbed.push_back(a);
  }
  result.nodes.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    w.position[order[i]] = static_cast<std::uint32_t>(i);
  for (Index x : order) {
    ImpactNode node;
    node.id = ids_[x];
    node.distance = w.Distance(x);
    if (w.state[x].parent != kNoIndex) {
      node.parent = w.position[w.state[x].parent];
      node.via_edge = edge_ids_[w.state[x].parent_edge];
    }
    result.nodes.push_back(node);
  }
  // Relations along which failure travels between impacted CIs, each once (a two-way relation
  // is met from both ends), in traversal order.
  if (w.edge_stamp.size() < edge_ids_.size()) w.edge_stamp.resize(edge_ids_.size(), 0);
  for (Index x : query.include_edges ? order : std::vector<Index>{}) {
    for_each(x, down, [&](Index y, Index e) {
      if (!w.Seen(y) || w.Distance(y) < 0 || w.edge_stamp[e] == w.epoch) return;
      w.edge_stamp[e] = w.epoch;
      result.edges.push_back(
          {edge_ids_[e], ids_[edge_from_[e]], ids_[edge_to_[e]], type_names_[edge_types_[e]]});
    });
  }
  std::sort(result.absorbed.begin(), result.absorbed.end(),
            [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; });
  return result;
}

}  // namespace cmdb::model
