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
  g.AddNodes(nodes);
  nodes.clear();
  nodes.shrink_to_fit();
  g.IndexIds();
  g.AddEdges(edges, types);
  g.BuildAdjacency();
  g.MarkServicesAndRedundancy();
  return g;
}

void DependencyGraph::AddNodes(std::vector<GraphNode>& nodes) {
  const std::size_t n = nodes.size();
  ids_.reserve(n);
  name_offsets_.reserve(n + 1);
  node_types_.reserve(n);
  statuses_.reserve(n);
  redundancy_.reserve(n);
  std::unordered_map<std::string, std::uint16_t> type_ids;
  std::unordered_map<std::string, std::uint8_t> status_ids;
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
    ids_.push_back(node.id);
    name_offsets_.push_back(static_cast<std::uint32_t>(names_.size()));
    names_ += node.name;
    intern(type_ids, node_type_names_, node_types_, node.type,
           previous != nullptr && previous->type == node.type);
    intern(status_ids, status_names_, statuses_, node.status,
           previous != nullptr && previous->status == node.status);
    redundancy_.push_back({node.min_healthy, 0});
    previous = &node;
  }
  name_offsets_.push_back(static_cast<std::uint32_t>(names_.size()));
  if (auto it = type_ids.find("business_service"); it != type_ids.end()) {
    service_type_ = it->second;
  }
}

void DependencyGraph::IndexIds() {
  const std::size_t n = ids_.size();
  CiId max_id = 0;
  for (CiId id : ids_) max_id = std::max(max_id, id);
  if (static_cast<std::size_t>(max_id) <= 4 * n + 1024) {
    dense_index_.assign(static_cast<std::size_t>(max_id) + 1, kNoIndex);
    for (Index i = 0; i < n; ++i) dense_index_[static_cast<std::size_t>(ids_[i])] = i;
  } else {
    sparse_index_.reserve(n);
    for (Index i = 0; i < n; ++i) sparse_index_.emplace_back(ids_[i], i);
    std::sort(sparse_index_.begin(), sparse_index_.end());
  }
}

void DependencyGraph::AddEdges(const std::vector<GraphEdge>& edges,
                               const std::vector<RelationType>& types) {
  std::unordered_map<std::string, std::uint16_t> type_index;
  for (const RelationType& t : types) {
    type_index.emplace(t.name, static_cast<std::uint16_t>(type_names_.size()));
    type_names_.push_back(t.name);
    type_propagation_.push_back(t.propagation);
  }
  edge_ids_.reserve(edges.size());
  edge_types_.reserve(edges.size());
  edge_from_.reserve(edges.size());
  edge_to_.reserve(edges.size());
  const std::string* last_type = nullptr;  // the previous edge's type, when known
  std::uint16_t last_type_index = 0;
  for (const GraphEdge& e : edges) {
    std::optional<Index> from = IndexOf(e.from);
    std::optional<Index> to = IndexOf(e.to);
    if (last_type == nullptr || *last_type != e.type) {
      auto type = type_index.find(e.type);
      last_type = type == type_index.end() ? nullptr : &type->first;
      last_type_index = type == type_index.end() ? 0 : type->second;
      if (last_type == nullptr) continue;
    }
    if (!from || !to) continue;
    edge_ids_.push_back(e.id);
    edge_types_.push_back(last_type_index);
    edge_from_.push_back(*from);
    edge_to_.push_back(*to);
  }
}

void DependencyGraph::BuildAdjacency() {
  const std::size_t n = ids_.size();
  const std::size_t m = edge_ids_.size();
  // Calls f(down_key, down_neighbour, edge) for every direction in which failure travels
  // along a relation; the up lists are the same pairs reversed.
  auto for_each_spread = [&](auto&& f) {
    for (std::size_t e = 0; e < m; ++e) {
      const Propagation p = type_propagation_[edge_types_[e]];
      const Index from = edge_from_[e];
      const Index to = edge_to_[e];
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
      types_of[slot] = edge_types_[e];
    });
  };
  fill(true, down_offsets_, down_neighbours_, down_edges_, down_types_);
  fill(false, up_offsets_, up_neighbours_, up_edges_, up_types_);
}

void DependencyGraph::MarkServicesAndRedundancy() {
  const std::size_t n = ids_.size();
  redundant_bits_.assign((n + 63) / 64, 0);
  service_bits_.assign((n + 63) / 64, 0);
  for (Index i = 0; i < n; ++i) {
    if (node_types_[i] == service_type_) SetBit(service_bits_, i);
    if (i > 0 && ids_[i] < ids_[i - 1]) ids_ascending_ = false;
  }
  provider_repeats_.assign(n, 0);
  std::vector<Index> providers;
  for (Index y = 0; y < n; ++y) {
    if (redundancy_[y].min_healthy <= 0) continue;
    SetBit(redundant_bits_, y);
    providers.assign(up_neighbours_.begin() + up_offsets_[y],
                     up_neighbours_.begin() + up_offsets_[y + 1]);
    std::sort(providers.begin(), providers.end());
    const std::size_t all = providers.size();
    redundancy_[y].providers = static_cast<std::int32_t>(
        std::unique(providers.begin(), providers.end()) - providers.begin());
    provider_repeats_[y] = static_cast<std::size_t>(redundancy_[y].providers) != all ? 1 : 0;
  }
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

// One impact query: resolves it, spreads the failure breadth-first from the root, then lists
// the CIs redundancy kept up and the relations failure travelled along. The traversal's queue
// is the result, and the per-thread workspace's bits are cleared however it ends.
class DependencyGraph::Traversal {
 public:
  Traversal(const DependencyGraph& g, const ImpactQuery& query);
  void Spread();
  void ListAbsorbed();
  void ListEdges();
  ImpactResult Take();

 private:
  // The distinct CIs whose failure reaches `y` over the allowed types (parallel relations to
  // one provider count once). Only downward traversals ask.
  std::vector<Index> ProvidersOf(Index y) const;
  // Whether enough of redundant CI y's providers are still healthy.
  bool StillAbsorbed(Index y) const;
  // Appends y to the queue (and so to the result).
  [[gnu::always_inline]] void Admit(Index y, std::int32_t distance, Index parent, Index edge);
  // Failure reaches y along `edge` from the CI at queue position `parent`: y fails (joins the
  // queue), waits on its redundancy, or was reached before. False when the cap is hit.
  [[gnu::always_inline]] bool Reach(Index y, Index edge, std::int32_t distance, Index parent);
  // Calls f(relation index, type) for each relation failure travels along between impacted
  // CIs, once each, in traversal order (a two-way relation is taken from its `from`).
  template <typename F>
  void ForEachImpactedEdge(F&& f) const;

  const DependencyGraph& g_;
  const ImpactQuery& query_;
  const bool down_;
  const bool filtered_;
  std::vector<std::uint8_t> allowed_;  // per relation type, when filtered
  // The lists failure travels along in the requested direction.
  const Index* offsets_;
  const Index* neighbours_;
  const Index* edges_;
  const std::uint16_t* types_;
  const std::size_t cap_;
  ImpactResult result_;
  std::vector<ImpactStep>& queue_;  // result_.nodes' steps
  Workspace& w_;
  WorkspaceScope scope_;
};

DependencyGraph::Traversal::Traversal(const DependencyGraph& g, const ImpactQuery& query)
    : g_(g),
      query_(query),
      down_(query.direction == ImpactDirection::kDown),
      filtered_(!query.relation_types.empty()),
      allowed_(g.type_names_.size(), filtered_ ? 0 : 1),
      offsets_(down_ ? g.down_offsets_.data() : g.up_offsets_.data()),
      neighbours_(down_ ? g.down_neighbours_.data() : g.up_neighbours_.data()),
      edges_(down_ ? g.down_edges_.data() : g.up_edges_.data()),
      types_(down_ ? g.down_types_.data() : g.up_types_.data()),
      cap_(std::max<std::size_t>(1, query.max_nodes)),
      queue_(result_.nodes.steps_),
      w_(ThreadWorkspace()),
      scope_(w_, g.ids_.size(), queue_) {
  std::optional<Index> root = g.IndexOf(query.root);
  if (!root) {
    throw Error(ErrorCode::kNotFound, "CI " + std::to_string(query.root) + " does not exist");
  }
  std::vector<Index> also;
  also.reserve(query.also_failing.size());
  for (CiId id : query.also_failing) {
    std::optional<Index> x = g.IndexOf(id);
    if (!x) throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
    also.push_back(*x);
  }
  for (const std::string& name : query.relation_types) {
    auto it = std::find(g.type_names_.begin(), g.type_names_.end(), name);
    if (it == g.type_names_.end()) {
      throw Error(ErrorCode::kInvalidArgument, "unknown relation type '" + name + "'");
    }
    allowed_[static_cast<std::size_t>(it - g.type_names_.begin())] = 1;
  }
  result_.nodes.graph_ = &g;
  // Reserved for every CI the queue may hold (untouched pages cost nothing), so it never
  // moves while it grows.
  queue_.reserve(std::min(cap_, g.ids_.size()) + also.size() + 1);
  Admit(*root, 0, kNoIndex, kNoIndex);
  for (Index x : also) {
    if (!TestBit(w_.reached, x)) Admit(x, 0, kNoIndex, kNoIndex);
  }
}

std::vector<DependencyGraph::Index> DependencyGraph::Traversal::ProvidersOf(Index y) const {
  std::vector<Index> providers;
  for (Index s = g_.up_offsets_[y]; s < g_.up_offsets_[y + 1]; ++s) {
    if (!filtered_ || allowed_[g_.up_types_[s]] != 0) providers.push_back(g_.up_neighbours_[s]);
  }
  std::sort(providers.begin(), providers.end());
  providers.erase(std::unique(providers.begin(), providers.end()), providers.end());
  return providers;
}

bool DependencyGraph::Traversal::StillAbsorbed(Index y) const {
  std::int32_t healthy = 0;
  for (Index p : ProvidersOf(y)) {
    if (!w_.Impacted(p)) ++healthy;
  }
  return healthy >= g_.redundancy_[y].min_healthy;
}

inline void DependencyGraph::Traversal::Admit(Index y, std::int32_t distance, Index parent,
                                              Index edge) {
  if (TestBit(g_.service_bits_, y)) result_.services.push_back(queue_.size());
  queue_.push_back({y, parent, edge, distance});
  SetBit(w_.reached, y);
}

inline bool DependencyGraph::Traversal::Reach(Index y, Index edge, std::int32_t distance,
                                              Index parent) {
  if (TestBit(w_.reached, y)) {
    if (!TestBit(w_.pending, y)) return true;  // already impacted
    --w_.slack[y];
  } else if (down_ && TestBit(g_.redundant_bits_, y)) {
    // Redundant CIs wait until enough of their providers have failed. `slack` counts down
    // the failed providers they can still absorb, once per relation met; parallel relations
    // can only make it run out early, so running out is confirmed by an exact count.
    w_.pending_list.push_back(y);
    SetBit(w_.reached, y);
    SetBit(w_.pending, y);
    const Redundancy r = g_.redundancy_[y];
    const std::int32_t providers =
        filtered_ ? static_cast<std::int32_t>(ProvidersOf(y).size()) : r.providers;
    w_.slack[y] = providers - r.min_healthy - 1;
  } else {
    if (queue_.size() >= cap_) {
      result_.truncated = true;
      return false;
    }
    Admit(y, distance, parent, edge);
    return true;
  }
  if (w_.slack[y] >= 0) return true;
  // Without parallel relations the running count is exact; otherwise count again.
  const bool exact = !filtered_ && g_.provider_repeats_[y] == 0;
  if (!exact && StillAbsorbed(y)) return true;
  if (queue_.size() >= cap_) {
    result_.truncated = true;
    return false;
  }
  ClearBit(w_.pending, y);  // decided: it fails (still listed in pending_list for End)
  Admit(y, distance, parent, edge);
  return true;
}

void DependencyGraph::Traversal::Spread() {
  // In locals, so the compiler need not reload them after every write to the queue.
  const Index* const offsets = offsets_;
  const Index* const neighbours = neighbours_;
  const Index* const edges = edges_;
  const std::uint16_t* const types = types_;
  const bool filtered = filtered_;
  const std::int32_t max_depth = query_.max_depth;
  for (std::size_t head = 0; head < queue_.size() && !result_.truncated; ++head) {
    // The queue says which CIs come next: fetch their adjacency ahead of time, the offsets
    // further ahead than the lists they point to (a cold closure is bound by memory latency).
    if (head + 16 < queue_.size()) __builtin_prefetch(&offsets[queue_[head + 16].node]);
    if (head + 8 < queue_.size()) {
      const Index ahead = queue_[head + 8].node;
      __builtin_prefetch(&neighbours[offsets[ahead]]);
    }
    const Index x = queue_[head].node;
    const std::int32_t distance = queue_[head].distance + 1;
    if (max_depth >= 0 && distance > max_depth) continue;
    const auto parent = static_cast<Index>(head);
    for (Index s = offsets[x]; s < offsets[x + 1]; ++s) {
      if (filtered && allowed_[types[s]] == 0) continue;
      if (!Reach(neighbours[s], edges[s], distance, parent)) break;
    }
  }
}

void DependencyGraph::Traversal::ListAbsorbed() {
  // In id order. When the ids ascend with the index, a long list is read off the pending
  // bits in order (thousands of clusters each absorbing one VM: sorting them cost a seventh
  // of a core switch's closure), a short one is sorted; otherwise the result is sorted.
  std::vector<std::uint32_t>& pending = w_.pending_list;
  if (g_.ids_ascending_ && pending.size() > 256) {
    std::size_t kept = 0;
    for (std::size_t word = 0; word < w_.pending.size() && kept < pending.size(); ++word) {
      for (std::uint64_t bits = w_.pending[word]; bits != 0; bits &= bits - 1) {
        pending[kept++] =
            static_cast<Index>(word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
      }
    }
    pending.resize(kept);  // only the still-pending CIs; their bits are cleared at End
  } else if (g_.ids_ascending_) {
    std::sort(pending.begin(), pending.end());
  }
  for (Index y : pending) {
    if (!TestBit(w_.pending, y)) continue;
    AbsorbedNode a;
    a.id = g_.ids_[y];
    a.min_healthy = g_.redundancy_[y].min_healthy;
    if (!filtered_ && g_.provider_repeats_[y] == 0 && query_.max_depth < 0) {
      a.providers = g_.redundancy_[y].providers;  // the running count is exact here
      a.failed = a.providers - a.min_healthy - w_.slack[y];
    } else {
      for (Index p : ProvidersOf(y)) {
        ++a.providers;
        if (w_.Impacted(p)) ++a.failed;
      }
    }
    a.healthy = a.providers - a.failed;
    // A CI left out only because its failed providers sit at the depth limit was not kept
    // up by redundancy; it is simply beyond the requested depth.
    if (a.healthy >= a.min_healthy) result_.absorbed.push_back(a);
  }
  if (!g_.ids_ascending_) {
    std::sort(result_.absorbed.begin(), result_.absorbed.end(),
              [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; });
  }
}

template <typename F>
void DependencyGraph::Traversal::ForEachImpactedEdge(F&& f) const {
  for (const ImpactStep& r : queue_) {
    const Index x = r.node;
    for (Index s = offsets_[x]; s < offsets_[x + 1]; ++s) {
      if (filtered_ && allowed_[types_[s]] == 0) continue;
      const Index e = edges_[s];
      if (!w_.Impacted(neighbours_[s])) continue;
      if (g_.type_propagation_[types_[s]] == Propagation::kBoth && g_.edge_from_[e] != x) continue;
      f(e);
    }
  }
}

void DependencyGraph::Traversal::ListEdges() {
  // Counted first: a million-CI closure has millions of relations, and growing the vector
  // step by step would copy them several times. Then the relations are listed, and only then
  // looked up, so that the look-ups (random reads over the whole graph) can be prefetched a
  // few relations ahead.
  std::size_t count = 0;
  ForEachImpactedEdge([&](Index) { ++count; });
  std::vector<Index> found;
  found.reserve(count);
  ForEachImpactedEdge([&](Index e) { found.push_back(e); });
  std::vector<ImpactEdge>& out = result_.edges;
  out.reserve(count);
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (i + 16 < found.size()) {
      const Index ahead = found[i + 16];
      __builtin_prefetch(&g_.edge_ids_[ahead]);
      __builtin_prefetch(&g_.edge_from_[ahead]);
      __builtin_prefetch(&g_.edge_to_[ahead]);
      __builtin_prefetch(&g_.edge_types_[ahead]);
    }
    if (i + 8 < found.size()) {
      const Index ahead = found[i + 8];
      __builtin_prefetch(&g_.ids_[g_.edge_from_[ahead]]);
      __builtin_prefetch(&g_.ids_[g_.edge_to_[ahead]]);
    }
    const Index e = found[i];
    out.push_back({g_.edge_ids_[e], g_.ids_[g_.edge_from_[e]], g_.ids_[g_.edge_to_[e]],
                   g_.type_names_[g_.edge_types_[e]]});
  }
}

ImpactResult DependencyGraph::Traversal::Take() {
  scope_.Finish();  // while the queue still says which bits to clear
  return std::move(result_);
}

ImpactResult DependencyGraph::Impact(const ImpactQuery& query) const {
  Traversal traversal(*this, query);
  traversal.Spread();
  traversal.ListAbsorbed();
  if (query.include_edges) traversal.ListEdges();
  return traversal.Take();
}

}  // namespace cmdb::graph
