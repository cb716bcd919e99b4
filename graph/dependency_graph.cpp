#include "graph/dependency_graph.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_map>

#include "model/error.hpp"

namespace cmdb::graph {

using model::Error;
using model::ErrorCode;
namespace {

bool SpreadsForward(Propagation p) { return p == Propagation::kFromTo || p == Propagation::kBoth; }
bool SpreadsBackward(Propagation p) { return p == Propagation::kToFrom || p == Propagation::kBoth; }

bool TestBit(const std::vector<std::uint64_t>& bits, std::uint32_t i) {
  return ((bits[i >> 6U] >> (i & 63U)) & 1U) != 0;
}
void SetBit(std::vector<std::uint64_t>& bits, std::uint32_t i) {
  bits[i >> 6U] |= std::uint64_t{1} << (i & 63U);
}
void ClearBit(std::vector<std::uint64_t>& bits, std::uint32_t i) {
  bits[i >> 6U] &= ~(std::uint64_t{1} << (i & 63U));
}

// Per-thread traversal state sized to the graph and reused across queries. What a traversal
// reads for every relation is one bit per CI (reached or not), a bit set of 125 KB for a
// million CIs that stays in cache; distances, parents and relations are written once per
// impacted CI, in order, straight into the result. The bits a query set are cleared when it
// ends, so a small closure costs microseconds even on a million-CI graph.
struct Workspace {
  std::vector<std::uint64_t> reached;  // impacted, or pending a redundancy decision
  std::vector<std::uint64_t> pending;  // reached, kept up by redundancy so far
  // Pending redundant CIs: how many more failed providers they absorb before failing,
  // counting every relation met (parallel relations to one provider make it too low).
  std::vector<std::int32_t> slack;
  std::vector<std::uint32_t> pending_list;

  void Begin(std::size_t n) {
    const std::size_t words = (n + 63) / 64;
    if (reached.size() < words) {
      reached.assign(words, 0);
      pending.assign(words, 0);
    }
    if (slack.size() < n) slack.resize(n);
    pending_list.clear();
  }
  // Every CI whose bit is set is in `impacted` (the traversal's queue, which becomes the
  // result) or in `pending_list`: each is listed before it is marked.
  void End(const std::vector<ImpactStep>& impacted) {
    for (const ImpactStep& r : impacted) ClearBit(reached, r.node);
    for (std::uint32_t x : pending_list) {
      ClearBit(reached, x);
      ClearBit(pending, x);
    }
  }
  bool Impacted(std::uint32_t i) const { return TestBit(reached, i) && !TestBit(pending, i); }
};

Workspace& ThreadWorkspace() {
  thread_local Workspace workspace;
  return workspace;
}

// Clears the workspace's bits however the traversal ends: at Finish(), before the result
// (whose steps say which bits are set) is handed over, or when an exception leaves.
class WorkspaceScope {
 public:
  WorkspaceScope(Workspace& w, std::size_t n, const std::vector<ImpactStep>& impacted)
      : w_(w), impacted_(impacted) {
    w_.Begin(n);
  }
  ~WorkspaceScope() { Finish(); }
  void Finish() {
    if (finished_) return;
    finished_ = true;
    w_.End(impacted_);
  }
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;

 private:
  Workspace& w_;
  const std::vector<ImpactStep>& impacted_;
  bool finished_ = false;
};

}  // namespace

ImpactNode ImpactNodes::operator[](std::size_t at) const {
  const ImpactStep& r = steps_[at];
  ImpactNode node;
  node.id = graph_->ids_[r.node];
  node.distance = r.distance;
  if (r.parent != ImpactStep::kNone) {
    node.parent = static_cast<std::int32_t>(r.parent);
    node.via_edge = graph_->edge_ids_[r.via];
  }
  return node;
}

NodeView ImpactNodes::View(std::size_t at) const { return graph_->View(steps_[at].node); }

void ImpactNodes::Prefetch(std::size_t at) const {
  const std::uint32_t i = steps_[at].node;
  __builtin_prefetch(&graph_->ids_[i]);
  __builtin_prefetch(&graph_->name_offsets_[i]);
  __builtin_prefetch(&graph_->node_types_[i]);
  __builtin_prefetch(&graph_->statuses_[i]);
  __builtin_prefetch(&graph_->redundancy_[i]);
}

void ImpactNodes::ViaPath(std::size_t at, std::vector<RelationId>& path) const {
  path.clear();
  for (const ImpactStep* r = &steps_[at]; r->parent != ImpactStep::kNone; r = &steps_[r->parent]) {
    path.push_back(graph_->edge_ids_[r->via]);
  }
  std::reverse(path.begin(), path.end());  // collected from the CI back to the root
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
  g.redundancy_.reserve(n);
  std::unordered_map<std::string, std::uint16_t> type_ids;
  std::unordered_map<std::string, std::uint8_t> status_ids;
  CiId max_id = 0;
  // Appends the small index of `value` to `column`, naming it in `names` when new. Rows mostly
  // come in runs of one type and status: the previous row's answer is reused when `repeat`
  // (a million hash look-ups per column otherwise).
  auto intern = [](auto& ids, std::vector<std::string>& names, auto& column,
                   const std::string& value, bool repeat) {
    using Small = typename std::decay_t<decltype(column)>::value_type;
    if (repeat) {
      column.push_back(column.back());
      return;
    }
    auto [it, added] = ids.try_emplace(value, static_cast<Small>(names.size()));
    if (added) names.push_back(value);
    column.push_back(it->second);
  };
  const GraphNode* previous = nullptr;
  for (GraphNode& node : nodes) {
    g.ids_.push_back(node.id);
    max_id = std::max(max_id, node.id);
    g.name_offsets_.push_back(static_cast<std::uint32_t>(g.names_.size()));
    g.names_ += node.name;
    intern(type_ids, g.node_type_names_, g.node_types_, node.type,
           previous != nullptr && previous->type == node.type);
    intern(status_ids, g.status_names_, g.statuses_, node.status,
           previous != nullptr && previous->status == node.status);
    g.redundancy_.push_back({node.min_healthy, 0});
    previous = &node;
  }
  g.name_offsets_.push_back(static_cast<std::uint32_t>(g.names_.size()));
  if (auto it = type_ids.find("business_service"); it != type_ids.end()) {
    g.service_type_ = it->second;
  }
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
  const std::string* last_type = nullptr;  // the previous edge's type, when known
  std::uint16_t last_type_index = 0;
  for (const GraphEdge& e : edges) {
    std::optional<Index> from = g.IndexOf(e.from);
    std::optional<Index> to = g.IndexOf(e.to);
    if (last_type == nullptr || *last_type != e.type) {
      auto type = type_index.find(e.type);
      last_type = type == type_index.end() ? nullptr : &type->first;
      last_type_index = type == type_index.end() ? 0 : type->second;
      if (last_type == nullptr) continue;
    }
    if (!from || !to) continue;
    g.edge_ids_.push_back(e.id);
    g.edge_types_.push_back(last_type_index);
    g.edge_from_.push_back(*from);
    g.edge_to_.push_back(*to);
  }
  const std::size_t m = g.edge_ids_.size();
  // Calls f(down_key, down_neighbour, edge) for every direction in which failure travels
  // along a relation; the up lists are the same pairs reversed.
  auto for_each_spread = [&](auto&& f) {
    for (std::size_t e = 0; e < m; ++e) {
      const Propagation p = g.type_propagation_[g.edge_types_[e]];
      const Index from = g.edge_from_[e];
      const Index to = g.edge_to_[e];
      if (from == to) continue;  // a CI's own failure: nothing to spread (PostgreSQL forbids it)
      if (SpreadsForward(p)) f(from, to, static_cast<Index>(e));
      if (SpreadsBackward(p)) f(to, from, static_cast<Index>(e));
    }
  };
  auto fill = [&](bool down, std::vector<Index>& offsets, std::vector<Index>& neighbours,
                  std::vector<Index>& edge_of, std::vector<std::uint16_t>& types_of) {
    offsets.assign(n + 1, 0);
    for_each_spread([&](Index a, Index b, Index) { ++offsets[(down ? a : b) + 1]; });
    for (std::size_t i = 0; i < n; ++i) offsets[i + 1] += offsets[i];
    const std::size_t slots = offsets[n];
    neighbours.resize(slots);
    edge_of.resize(slots);
    types_of.resize(slots);
    std::vector<Index> cursor(offsets.begin(), offsets.end() - 1);
    for_each_spread([&](Index a, Index b, Index e) {
      const Index slot = cursor[down ? a : b]++;
      neighbours[slot] = down ? b : a;
      edge_of[slot] = e;
      types_of[slot] = g.edge_types_[e];
    });
  };
  fill(true, g.down_offsets_, g.down_neighbours_, g.down_edges_, g.down_types_);
  fill(false, g.up_offsets_, g.up_neighbours_, g.up_edges_, g.up_types_);
  g.redundant_bits_.assign((n + 63) / 64, 0);
  g.service_bits_.assign((n + 63) / 64, 0);
  for (Index i = 0; i < n; ++i) {
    if (g.node_types_[i] == g.service_type_) SetBit(g.service_bits_, i);
    if (i > 0 && g.ids_[i] < g.ids_[i - 1]) g.ids_ascending_ = false;
  }
  g.provider_repeats_.assign(n, 0);
  std::vector<Index> providers;
  for (Index y = 0; y < n; ++y) {
    if (g.redundancy_[y].min_healthy <= 0) continue;
    SetBit(g.redundant_bits_, y);
    providers.assign(g.up_neighbours_.begin() + g.up_offsets_[y],
                     g.up_neighbours_.begin() + g.up_offsets_[y + 1]);
    std::sort(providers.begin(), providers.end());
    const std::size_t all = providers.size();
    g.redundancy_[y].providers = static_cast<std::int32_t>(
        std::unique(providers.begin(), providers.end()) - providers.begin());
    g.provider_repeats_[y] = static_cast<std::size_t>(g.redundancy_[y].providers) != all ? 1 : 0;
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
  v.min_healthy = redundancy_[i].min_healthy;
  return v;
}

GraphContents DependencyGraph::Contents() const {
  GraphContents c;
  const std::size_t n = ids_.size();
  c.nodes.reserve(n);
  for (Index i = 0; i < n; ++i) {
    const NodeView v = View(i);
    c.nodes.push_back(
        {v.id, std::string(v.type), std::string(v.name), std::string(v.status), v.min_healthy});
  }
  c.edges.reserve(edge_ids_.size());
  for (std::size_t e = 0; e < edge_ids_.size(); ++e) {
    c.edges.push_back(
        {edge_ids_[e], ids_[edge_from_[e]], ids_[edge_to_[e]], type_names_[edge_types_[e]]});
  }
  return c;
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
  std::vector<Index> also;
  also.reserve(query.also_failing.size());
  for (CiId id : query.also_failing) {
    std::optional<Index> x = IndexOf(id);
    if (!x) throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
    also.push_back(*x);
  }
  std::vector<std::uint8_t> allowed(type_names_.size(), query.relation_types.empty() ? 1 : 0);
  for (const std::string& name : query.relation_types) {
    auto it = std::find(type_names_.begin(), type_names_.end(), name);
    if (it == type_names_.end()) {
      throw Error(ErrorCode::kInvalidArgument, "unknown relation type '" + name + "'");
    }
    allowed[static_cast<std::size_t>(it - type_names_.begin())] = 1;
  }
  const bool down = query.direction == ImpactDirection::kDown;
  const bool filtered = !query.relation_types.empty();
  // The lists failure travels along in the requested direction.
  const Index* offsets = down ? down_offsets_.data() : up_offsets_.data();
  const Index* neighbours = down ? down_neighbours_.data() : up_neighbours_.data();
  const Index* edges = down ? down_edges_.data() : up_edges_.data();
  const std::uint16_t* types = down ? down_types_.data() : up_types_.data();
  // The distinct CIs whose failure reaches `y` (parallel relations to one provider count
  // once). Only downward traversals ask.
  auto providers_of = [&](Index y) {
    std::vector<Index> providers;
    for (Index s = up_offsets_[y]; s < up_offsets_[y + 1]; ++s) {
      if (!filtered || allowed[up_types_[s]] != 0) providers.push_back(up_neighbours_[s]);
    }
    std::sort(providers.begin(), providers.end());
    providers.erase(std::unique(providers.begin(), providers.end()), providers.end());
    return providers;
  };
  ImpactResult result;
  result.nodes.graph_ = this;
  // The queue is the result: reserved for every CI it may hold (untouched pages cost
  // nothing), so it never moves while it grows.
  std::vector<ImpactStep>& queue = result.nodes.steps_;
  const std::size_t cap = std::max<std::size_t>(1, query.max_nodes);
  queue.reserve(std::min(cap, ids_.size()) + also.size() + 1);
  Workspace& w = ThreadWorkspace();
  WorkspaceScope scope(w, ids_.size(), queue);
  // Appends y to the queue (and so to the result).
  auto admit = [&](Index y, std::int32_t distance, Index parent, Index edge) {
    if (TestBit(service_bits_, y)) result.services.push_back(queue.size());
    queue.push_back({y, parent, edge, distance});
    SetBit(w.reached, y);
  };
  admit(*root_index, 0, kNoIndex, kNoIndex);
  for (Index x : also) {
    if (!TestBit(w.reached, x)) admit(x, 0, kNoIndex, kNoIndex);
  }
  // Redundant CIs wait until enough of their providers have failed. `slack` counts down the
  // failed providers they can still absorb, once per relation met; parallel relations can
  // only make it run out early, so running out is confirmed by an exact count.
  auto still_absorbed = [&](Index y) {
    const std::vector<Index> providers = providers_of(y);
    std::int32_t healthy = 0;
    for (Index p : providers) {
      if (!w.Impacted(p)) ++healthy;
    }
    return healthy >= redundancy_[y].min_healthy;
  };
  for (std::size_t head = 0; head < queue.size() && !result.truncated; ++head) {
    // The queue says which CIs come next: fetch their adjacency ahead of time, the offsets
    // further ahead than the lists they point to (a cold closure is bound by memory latency).
    if (head + 16 < queue.size()) __builtin_prefetch(&offsets[queue[head + 16].node]);
    if (head + 8 < queue.size()) {
      const Index ahead = queue[head + 8].node;
      __builtin_prefetch(&neighbours[offsets[ahead]]);
    }
    const Index x = queue[head].node;
    const std::int32_t distance = queue[head].distance + 1;
    if (query.max_depth >= 0 && distance > query.max_depth) continue;
    const auto parent = static_cast<Index>(head);
    for (Index s = offsets[x]; s < offsets[x + 1]; ++s) {
      if (filtered && allowed[types[s]] == 0) continue;
      const Index y = neighbours[s];
      if (TestBit(w.reached, y)) {
        if (!TestBit(w.pending, y)) continue;  // already impacted
        --w.slack[y];
      } else if (down && TestBit(redundant_bits_, y)) {
        w.pending_list.push_back(y);
        SetBit(w.reached, y);
        SetBit(w.pending, y);
        const Redundancy r = redundancy_[y];
        const std::int32_t providers =
            filtered ? static_cast<std::int32_t>(providers_of(y).size()) : r.providers;
        w.slack[y] = providers - r.min_healthy - 1;
      } else {
        if (queue.size() >= cap) {
          result.truncated = true;
          break;
        }
        admit(y, distance, parent, edges[s]);
        continue;
      }
      if (w.slack[y] >= 0) continue;
      // Without parallel relations the running count is exact; otherwise count again.
      const bool exact = !filtered && provider_repeats_[y] == 0;
      if (!exact && still_absorbed(y)) continue;
      if (queue.size() >= cap) {
        result.truncated = true;
        break;
      }
      ClearBit(w.pending, y);  // decided: it fails (still listed in pending_list for End)
      admit(y, distance, parent, edges[s]);
    }
  }
  // The CIs redundancy kept up, in id order. When the ids ascend with the index, a long
  // list is read off the pending bits in order (thousands of clusters each absorbing one VM:
  // sorting them cost a seventh of a core switch's closure), a short one is sorted.
  const bool in_order = ids_ascending_;
  if (in_order && w.pending_list.size() > 256) {
    std::size_t kept = 0;
    for (std::size_t word = 0; word < w.pending.size() && kept < w.pending_list.size(); ++word) {
      for (std::uint64_t bits = w.pending[word]; bits != 0; bits &= bits - 1) {
        w.pending_list[kept++] =
            static_cast<Index>(word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
      }
    }
    w.pending_list.resize(kept);  // only the still-pending CIs; their bits are cleared at End
  } else if (in_order) {
    std::sort(w.pending_list.begin(), w.pending_list.end());
  }
  for (Index y : w.pending_list) {
    if (!TestBit(w.pending, y)) continue;
    AbsorbedNode a;
    a.id = ids_[y];
    a.min_healthy = redundancy_[y].min_healthy;
    if (!filtered && provider_repeats_[y] == 0 && query.max_depth < 0) {
      a.providers = redundancy_[y].providers;  // the running count is exact here
      a.failed = a.providers - a.min_healthy - w.slack[y];
    } else {
      for (Index p : providers_of(y)) {
        ++a.providers;
        if (w.Impacted(p)) ++a.failed;
      }
    }
    a.healthy = a.providers - a.failed;
    // A CI left out only because its failed providers sit at the depth limit was not kept
    // up by redundancy; it is simply beyond the requested depth.
    if (a.healthy >= a.min_healthy) result.absorbed.push_back(a);
  }
  // Relations along which failure travels between impacted CIs, each once, in traversal
  // order. A two-way relation is listed under both of its ends; it is taken from its `from`.
  if (query.include_edges) {
    auto for_each_edge = [&](auto&& f) {
      for (const ImpactStep& r : queue) {
        const Index x = r.node;
        for (Index s = offsets[x]; s < offsets[x + 1]; ++s) {
          if (filtered && allowed[types[s]] == 0) continue;
          const Index e = edges[s];
          if (!w.Impacted(neighbours[s])) continue;
          if (type_propagation_[types[s]] == Propagation::kBoth && edge_from_[e] != x) continue;
          f(e, types[s]);
        }
      }
    };
    // Counted first: a million-CI closure has millions of relations, and growing the vector
    // step by step would copy them several times. Then the relations are listed, and only
    // then looked up, so that the look-ups (random reads over the whole graph) can be
    // prefetched a few relations ahead.
    std::size_t count = 0;
    for_each_edge([&](Index, std::uint16_t) { ++count; });
    std::vector<Index> found;
    found.reserve(count);
    for_each_edge([&](Index e, std::uint16_t) { found.push_back(e); });
    result.edges.reserve(count);
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (i + 16 < found.size()) {
        const Index ahead = found[i + 16];
        __builtin_prefetch(&edge_ids_[ahead]);
        __builtin_prefetch(&edge_from_[ahead]);
        __builtin_prefetch(&edge_to_[ahead]);
        __builtin_prefetch(&edge_types_[ahead]);
      }
      if (i + 8 < found.size()) {
        const Index ahead = found[i + 8];
        __builtin_prefetch(&ids_[edge_from_[ahead]]);
        __builtin_prefetch(&ids_[edge_to_[ahead]]);
      }
      const Index e = found[i];
      result.edges.push_back(
          {edge_ids_[e], ids_[edge_from_[e]], ids_[edge_to_[e]], type_names_[edge_types_[e]]});
    }
  }
  if (!in_order) {
    std::sort(result.absorbed.begin(), result.absorbed.end(),
              [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; });
  }
  scope.Finish();  // while `queue` still says which bits to clear
  return result;
}

}  // namespace cmdb::graph
