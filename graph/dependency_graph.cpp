#include "graph/dependency_graph.hpp"

#include <algorithm>
#include <array>
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

// What Build makes: the CIs column by column and the failure adjacency in CSR arrays.
struct DependencyGraph::Core {
  void AddNodes(std::vector<GraphNode>& nodes);
  void IndexIds();
  void AddEdges(const std::vector<GraphEdge>& edges, const std::vector<RelationType>& types);
  void BuildAdjacency();
  void MarkServicesAndRedundancy();
  void IndexEdges();
  std::optional<Index> IndexOf(CiId id) const;
  std::optional<Index> EdgeIndexOf(RelationId id) const;

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
  std::vector<Redundancy> redundancy_;
  // CI id -> index: a direct table when ids are dense (the usual case: one identity
  // sequence), else a sorted list searched by bisection. The same for relation ids.
  std::vector<Index> dense_index_;
  std::vector<std::pair<CiId, Index>> sparse_index_;
  std::vector<Index> dense_edge_index_;
  std::vector<std::pair<RelationId, Index>> sparse_edge_index_;
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

// A bit set shared between versions of a delta in blocks of 4,096 bits, each copied on write:
// a new version copies a pointer per block, not the bits (a million CIs: 245 pointers).
class CowBits {
 public:
  bool Test(std::size_t i) const {
    const std::size_t b = i >> 12U;
    return b < blocks_.size() && blocks_[b] != nullptr &&
           (((*blocks_[b])[(i >> 6U) & 63U] >> (i & 63U)) & 1U) != 0;
  }
  void Set(std::size_t i) {
    const std::size_t b = i >> 12U;
    if (b >= blocks_.size()) blocks_.resize(b + 1);
    std::shared_ptr<Block>& block = blocks_[b];
    if (block == nullptr) {
      block = std::make_shared<Block>();
    } else if (block.use_count() > 1) {
      block = std::make_shared<Block>(*block);  // shared with an earlier version: its own now
    }
    (*block)[(i >> 6U) & 63U] |= std::uint64_t{1} << (i & 63U);
  }

 private:
  using Block = std::array<std::uint64_t, 64>;
  std::vector<std::shared_ptr<Block>> blocks_;
};

// A map from integer keys, in buckets shared between versions of a delta, each bucket copied
// on write: a new version copies a pointer per bucket, an edit clones the buckets it changes.
template <typename Key, typename Value>
class CowMap {
 public:
  CowMap() : buckets_(kBuckets) {}

  const Value* Find(Key key) const {
    const auto& bucket = buckets_[BucketOf(key)];
    if (bucket == nullptr) return nullptr;
    for (const auto& [k, v] : *bucket) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  // The entry for `key` in this version (its bucket cloned when shared); `added` says whether
  // it was made (default-constructed) now.
  Value& At(Key key, bool& added) {
    Bucket& bucket = Own(BucketOf(key));
    for (auto& [k, v] : bucket) {
      if (k == key) {
        added = false;
        return v;
      }
    }
    added = true;
    ++size_;
    return bucket.emplace_back(key, Value{}).second;
  }
  void Erase(Key key) {
    if (Find(key) == nullptr) return;
    Bucket& bucket = Own(BucketOf(key));
    std::erase_if(bucket, [&](const auto& entry) { return entry.first == key; });
    --size_;
  }
  std::size_t size() const { return size_; }
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& bucket : buckets_) {
      if (bucket == nullptr) continue;
      for (const auto& [k, v] : *bucket) f(k, v);
    }
  }

 private:
  static constexpr std::size_t kBuckets = 1024;
  using Bucket = std::vector<std::pair<Key, Value>>;
  static std::size_t BucketOf(Key key) { return static_cast<std::size_t>(key) % kBuckets; }
  Bucket& Own(std::size_t b) {
    std::shared_ptr<Bucket>& bucket = buckets_[b];
    if (bucket == nullptr) {
      bucket = std::make_shared<Bucket>();
    } else if (bucket.use_count() > 1) {
      bucket = std::make_shared<Bucket>(*bucket);
    }
    return *bucket;
  }

  std::vector<std::shared_ptr<Bucket>> buckets_;
  std::size_t size_ = 0;
};

// One slot of a CI's adjacency kept in the delta.
struct DeltaSlot {
  std::uint32_t neighbour = 0;
  std::uint32_t edge = 0;
  std::uint16_t type = 0;
};

// A CI as the delta holds it: its state (when changed or new) and the relations added to it.
struct DeltaNode {
  CiId id = 0;
  bool state = false;  // name..min_healthy below replace the arrays' (always for a new CI)
  bool deleted = false;
  std::string name;
  std::string type;
  std::string status;
  std::int32_t min_healthy = 0;
  std::int32_t providers = 0;  // distinct providers over every type, when min_healthy > 0
  bool repeats = false;        // some provider has parallel relations
  std::vector<DeltaSlot> down;
  std::vector<DeltaSlot> up;
};

struct DeltaEdge {
  RelationId id = 0;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::uint16_t type = 0;
  bool removed = false;
};

// A vector in chunks shared between versions of a delta, each chunk copied on write: a new
// version copies a pointer per chunk (not the 50,000 relations a full delta holds: 1.2 MB per
// write), an edit clones the chunk it changes.
template <typename T>
class CowVector {
 public:
  std::size_t size() const { return size_; }
  const T& operator[](std::size_t i) const { return (*chunks_[i / kChunk])[i % kChunk]; }
  T& Mut(std::size_t i) { return Own(i / kChunk)[i % kChunk]; }
  void push_back(T value) {
    if (size_ % kChunk == 0) {
      chunks_.push_back(std::make_shared<std::vector<T>>());
      chunks_.back()->reserve(kChunk);
    }
    Own(chunks_.size() - 1).push_back(std::move(value));
    ++size_;
  }

 private:
  static constexpr std::size_t kChunk = 1024;  // the clone of a write: 24 KB at most
  std::vector<T>& Own(std::size_t c) {
    std::shared_ptr<std::vector<T>>& chunk = chunks_[c];
    if (chunk.use_count() > 1) {
      auto copy = std::make_shared<std::vector<T>>();
      copy->reserve(kChunk);
      copy->assign(chunk->begin(), chunk->end());
      chunk = std::move(copy);  // shared with an earlier version: its own now
    }
    return *chunk;
  }

  std::vector<std::shared_ptr<std::vector<T>>> chunks_;
  std::size_t size_ = 0;
};

// The changes since the Build, beside its arrays. Copied (then changed) by each WithChanges:
// its size is that of the changes, plus one bit per CI and per relation of the arrays; a copy
// shares their chunks, buckets and blocks (a pointer each) and clones those it changes.
struct DependencyGraph::Delta {
  std::size_t base_nodes = 0;
  std::size_t base_edges = 0;
  CowBits touched;  // per CI (arrays' and new): it has a DeltaNode
  // Each CI's record is shared too, and cloned by the edit that changes it.
  CowMap<Index, std::shared_ptr<DeltaNode>> nodes;
  std::vector<CiId> new_ids;  // CI index base_nodes + k
  CowMap<CiId, Index> new_index;
  CowBits removed;  // per relation of the arrays: removed since
  std::size_t removed_count = 0;
  CowVector<DeltaEdge> edges;            // relation index base_edges + k
  CowMap<RelationId, Index> edge_index;  // the delta's live relations
  bool ids_ascending = true;
  std::size_t changes = 0;  // CIs and relations changed, for Merged()'s threshold

  const DeltaNode* Node(Index i) const {
    const std::shared_ptr<DeltaNode>* node = nodes.Find(i);
    return node == nullptr ? nullptr : node->get();
  }
};

ImpactNode ImpactNodes::operator[](std::size_t at) const {
  const ImpactStep& r = steps_[at];
  ImpactNode node;
  node.id = graph_->IdAt(r.node);
  node.distance = r.distance;
  if (r.parent != ImpactStep::kNone) {
    node.parent = static_cast<std::int32_t>(r.parent);
    node.via_edge = graph_->EdgeIdAt(r.via);
  }
  return node;
}

NodeView ImpactNodes::View(std::size_t at) const { return graph_->View(steps_[at].node); }

void ImpactNodes::Prefetch(std::size_t at) const {
  const std::uint32_t i = steps_[at].node;
  const auto& c = *graph_->core_;
  if (i >= c.ids_.size()) return;
  __builtin_prefetch(&c.ids_[i]);
  __builtin_prefetch(&c.name_offsets_[i]);
  __builtin_prefetch(&c.node_types_[i]);
  __builtin_prefetch(&c.statuses_[i]);
  __builtin_prefetch(&c.redundancy_[i]);
}

void ImpactNodes::ViaPath(std::size_t at, std::vector<RelationId>& path) const {
  path.clear();
  for (const ImpactStep* r = &steps_[at]; r->parent != ImpactStep::kNone; r = &steps_[r->parent]) {
    path.push_back(graph_->EdgeIdAt(r->via));
  }
  std::reverse(path.begin(), path.end());  // collected from the CI back to the root
}

DependencyGraph::DependencyGraph() : core_(std::make_shared<const Core>()) {}

DependencyGraph DependencyGraph::Build(std::vector<GraphNode> nodes,
                                       const std::vector<GraphEdge>& edges,
                                       const std::vector<RelationType>& types) {
  auto c = std::make_shared<Core>();
  c->AddNodes(nodes);
  nodes.clear();
  nodes.shrink_to_fit();
  c->IndexIds();
  c->AddEdges(edges, types);
  c->BuildAdjacency();
  c->MarkServicesAndRedundancy();
  c->IndexEdges();
  DependencyGraph g;
  g.core_ = std::move(c);
  return g;
}

void DependencyGraph::Core::AddNodes(std::vector<GraphNode>& nodes) {
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

namespace {

// id -> index: a direct table when the ids are dense, else sorted pairs.
template <typename Id, typename Index>
void IndexDenseOrSparse(const std::vector<Id>& ids, std::vector<Index>& dense,
                        std::vector<std::pair<Id, Index>>& sparse, Index none) {
  const std::size_t n = ids.size();
  Id max_id = 0;
  for (Id id : ids) max_id = std::max(max_id, id);
  if (static_cast<std::size_t>(max_id) <= 4 * n + 1024) {
    dense.assign(static_cast<std::size_t>(max_id) + 1, none);
    for (std::size_t i = 0; i < n; ++i)
      dense[static_cast<std::size_t>(ids[i])] = static_cast<Index>(i);
  } else {
    sparse.reserve(n);
    for (std::size_t i = 0; i < n; ++i) sparse.emplace_back(ids[i], static_cast<Index>(i));
    std::sort(sparse.begin(), sparse.end());
  }
}

template <typename Id, typename Index>
std::optional<Index> LookUp(const std::vector<Index>& dense,
                            const std::vector<std::pair<Id, Index>>& sparse, Id id, Index none) {
  if (!dense.empty() || sparse.empty()) {
    if (id < 0 || static_cast<std::size_t>(id) >= dense.size()) return std::nullopt;
    const Index i = dense[static_cast<std::size_t>(id)];
    if (i == none) return std::nullopt;
    return i;
  }
  auto it = std::lower_bound(sparse.begin(), sparse.end(), std::make_pair(id, Index{0}));
  if (it == sparse.end() || it->first != id) return std::nullopt;
  return it->second;
}

}  // namespace

void DependencyGraph::Core::IndexIds() {
  IndexDenseOrSparse(ids_, dense_index_, sparse_index_, kNoIndex);
}

void DependencyGraph::Core::IndexEdges() {
  IndexDenseOrSparse(edge_ids_, dense_edge_index_, sparse_edge_index_, kNoIndex);
}

std::optional<DependencyGraph::Index> DependencyGraph::Core::IndexOf(CiId id) const {
  return LookUp(dense_index_, sparse_index_, id, kNoIndex);
}

std::optional<DependencyGraph::Index> DependencyGraph::Core::EdgeIndexOf(RelationId id) const {
  return LookUp(dense_edge_index_, sparse_edge_index_, id, kNoIndex);
}

void DependencyGraph::Core::AddEdges(const std::vector<GraphEdge>& edges,
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

void DependencyGraph::Core::BuildAdjacency() {
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

void DependencyGraph::Core::MarkServicesAndRedundancy() {
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

// --- reading through the delta ---

inline bool DependencyGraph::Touched(Index i) const {
  return delta_ != nullptr && (i >= delta_->base_nodes || delta_->touched.Test(i));
}

std::optional<DependencyGraph::Index> DependencyGraph::IndexOf(CiId id) const {
  std::optional<Index> i = core_->IndexOf(id);
  if (delta_ == nullptr) return i;
  if (!i) {
    const Index* added = delta_->new_index.Find(id);
    if (added == nullptr) return std::nullopt;
    i = *added;
  }
  if (Touched(*i)) {
    const DeltaNode* d = delta_->Node(*i);
    if (d != nullptr && d->deleted) return std::nullopt;
  }
  return i;
}

CiId DependencyGraph::IdAt(Index i) const {
  return i < core_->ids_.size() ? core_->ids_[i] : delta_->new_ids[i - core_->ids_.size()];
}

RelationId DependencyGraph::EdgeIdAt(Index e) const {
  return e < core_->edge_ids_.size() ? core_->edge_ids_[e]
                                     : delta_->edges[e - core_->edge_ids_.size()].id;
}

NodeView DependencyGraph::View(Index i) const {
  if (Touched(i)) {
    const DeltaNode* d = delta_->Node(i);
    if (d != nullptr && d->state) return {d->id, d->name, d->type, d->status, d->min_healthy};
  }
  const Core& c = *core_;
  NodeView v;
  v.id = c.ids_[i];
  v.name = std::string_view(c.names_).substr(c.name_offsets_[i],
                                             c.name_offsets_[i + 1] - c.name_offsets_[i]);
  v.type = c.node_type_names_[c.node_types_[i]];
  v.status = c.status_names_[c.statuses_[i]];
  v.min_healthy = c.redundancy_[i].min_healthy;
  return v;
}

inline bool DependencyGraph::IsService(Index i) const {
  if (Touched(i)) {
    const DeltaNode* d = delta_->Node(i);
    if (d != nullptr && d->state) return d->type == "business_service";
  }
  return TestBit(core_->service_bits_, i);
}

inline bool DependencyGraph::IsRedundant(Index i) const {
  if (Touched(i)) {
    const DeltaNode* d = delta_->Node(i);
    if (d != nullptr && d->state) return d->min_healthy > 0;
  }
  return TestBit(core_->redundant_bits_, i);
}

DependencyGraph::Redundancy DependencyGraph::RedundancyOf(Index i) const {
  if (Touched(i)) {
    const DeltaNode* d = delta_->Node(i);
    if (d != nullptr) {
      // A touched redundant CI has its providers counted again in the delta.
      const std::int32_t min_healthy =
          d->state ? d->min_healthy : core_->redundancy_[i].min_healthy;
      return {min_healthy, d->providers};
    }
  }
  return core_->redundancy_[i];
}

bool DependencyGraph::ProviderRepeats(Index i) const {
  if (Touched(i)) {
    const DeltaNode* d = delta_->Node(i);
    if (d != nullptr) return d->repeats;
  }
  return core_->provider_repeats_[i] != 0;
}

template <typename F>
void DependencyGraph::ForEachSlot(Index x, bool down, F&& f) const {
  const Core& c = *core_;
  const DeltaNode* d = Touched(x) ? delta_->Node(x) : nullptr;
  if (x < c.ids_.size()) {
    const std::vector<Index>& offsets = down ? c.down_offsets_ : c.up_offsets_;
    const std::vector<Index>& neighbours = down ? c.down_neighbours_ : c.up_neighbours_;
    const std::vector<Index>& edges = down ? c.down_edges_ : c.up_edges_;
    const std::vector<std::uint16_t>& types = down ? c.down_types_ : c.up_types_;
    const bool check = d != nullptr && delta_->removed_count > 0;
    for (Index s = offsets[x]; s < offsets[x + 1]; ++s) {
      if (check && delta_->removed.Test(edges[s])) continue;
      if (!f(neighbours[s], edges[s], types[s])) return;
    }
  }
  if (d == nullptr) return;
  for (const DeltaSlot& slot : down ? d->down : d->up) {
    if (delta_->edges[slot.edge - c.edge_ids_.size()].removed) continue;
    if (!f(slot.neighbour, slot.edge, slot.type)) return;
  }
}

std::size_t DependencyGraph::node_count() const {
  if (delta_ == nullptr) return core_->ids_.size();
  std::size_t deleted = 0;
  delta_->nodes.ForEach(
      [&](Index, const std::shared_ptr<DeltaNode>& d) { deleted += d->deleted ? 1 : 0; });
  return core_->ids_.size() + delta_->new_ids.size() - deleted;
}

std::size_t DependencyGraph::edge_count() const {
  if (delta_ == nullptr) return core_->edge_ids_.size();
  return core_->edge_ids_.size() - delta_->removed_count + delta_->edge_index.size();
}

std::size_t DependencyGraph::delta_size() const { return delta_ == nullptr ? 0 : delta_->changes; }

GraphContents DependencyGraph::Contents() const {
  GraphContents c;
  const std::size_t n = core_->ids_.size() + (delta_ != nullptr ? delta_->new_ids.size() : 0);
  c.nodes.reserve(n);
  for (Index i = 0; i < n; ++i) {
    if (Touched(i)) {
      const DeltaNode* d = delta_->Node(i);
      if (d != nullptr && d->deleted) continue;
    }
    const NodeView v = View(i);
    c.nodes.push_back(
        {v.id, std::string(v.type), std::string(v.name), std::string(v.status), v.min_healthy});
  }
  const Core& core = *core_;
  c.edges.reserve(edge_count());
  for (std::size_t e = 0; e < core.edge_ids_.size(); ++e) {
    if (delta_ != nullptr && delta_->removed_count > 0 && delta_->removed.Test(e)) {
      continue;
    }
    c.edges.push_back({core.edge_ids_[e], core.ids_[core.edge_from_[e]],
                       core.ids_[core.edge_to_[e]], core.type_names_[core.edge_types_[e]]});
  }
  if (delta_ != nullptr) {
    for (std::size_t k = 0; k < delta_->edges.size(); ++k) {
      const DeltaEdge& e = delta_->edges[k];
      if (e.removed) continue;
      c.edges.push_back({e.id, IdAt(e.from), IdAt(e.to), core.type_names_[e.type]});
    }
  }
  return c;
}

std::optional<NodeView> DependencyGraph::Find(CiId id) const {
  std::optional<Index> i = IndexOf(id);
  if (!i) return std::nullopt;
  return View(*i);
}

std::vector<RelationType> DependencyGraph::relation_types() const {
  std::vector<RelationType> types;
  for (std::size_t t = 0; t < core_->type_names_.size(); ++t) {
    types.push_back({core_->type_names_[t], "", core_->type_propagation_[t], true, {}});
  }
  return types;
}

bool DependencyGraph::HasRelationType(std::string_view name) const {
  return std::find(core_->type_names_.begin(), core_->type_names_.end(), name) !=
         core_->type_names_.end();
}

DependencyGraph DependencyGraph::Merged() const {
  if (delta_ == nullptr) return *this;
  GraphContents c = Contents();
  return Build(std::move(c.nodes), c.edges, relation_types());
}

// --- applying changes ---

// Builds the delta of a WithChanges: a copy of the graph's delta (or a new one), changed one
// CI and one relation at a time, then the providers of the redundant CIs it touched counted
// again.
class DependencyGraph::Editor {
 public:
  explicit Editor(const DependencyGraph& g) : c_(*g.core_) {
    if (g.delta_ != nullptr) {
      d_ = *g.delta_;
    } else {
      d_.base_nodes = c_.ids_.size();
      d_.base_edges = c_.edge_ids_.size();
      d_.ids_ascending = c_.ids_ascending_;
    }
  }

  void SetCi(CiId id, const GraphNode* row) {
    ++d_.changes;
    std::optional<Index> i = c_.IndexOf(id);
    if (!i) {
      if (const Index* added = d_.new_index.Find(id)) i = *added;
    }
    if (!i) {
      if (row == nullptr) return;  // created and deleted since: nothing to do
      const auto index = static_cast<Index>(c_.ids_.size() + d_.new_ids.size());
      const CiId last =
          d_.new_ids.empty() ? (c_.ids_.empty() ? 0 : c_.ids_.back()) : d_.new_ids.back();
      if (id < last) d_.ids_ascending = false;
      d_.new_ids.push_back(id);
      bool added = false;
      d_.new_index.At(id, added) = index;
      i = index;
    }
    DeltaNode& n = Node(*i);
    if (row == nullptr) {
      // Deleted: its relations go with it (the database deletes them too).
      std::vector<Index> edges;
      for (bool down : {true, false}) {
        Scan(*i, down, [&](Index, Index e) { edges.push_back(e); });
      }
      for (Index e : edges) RemoveEdge(e);
      Node(*i).deleted = true;
      Node(*i).state = false;
      return;
    }
    n.deleted = false;
    n.state = true;
    n.name = row->name;
    n.type = row->type;
    n.status = row->status;
    n.min_healthy = row->min_healthy;
    recount_.push_back(*i);
  }

  void SetRelation(RelationId id, const GraphEdge* row) {
    ++d_.changes;
    std::optional<Index> e = c_.EdgeIndexOf(id);
    if (e && d_.removed.Test(*e)) e.reset();
    if (!e) {
      if (const Index* added = d_.edge_index.Find(id)) e = *added;
    }
    if (e) {
      // A relation's ends and type do not change; a row that says otherwise replaces it.
      if (row != nullptr && Same(*e, *row)) return;
      RemoveEdge(*e);
    }
    if (row != nullptr) AddEdge(*row);
  }

  std::shared_ptr<const Delta> Finish() {
    std::vector<Index> providers;
    std::sort(recount_.begin(), recount_.end());
    recount_.erase(std::unique(recount_.begin(), recount_.end()), recount_.end());
    for (Index y : recount_) {
      DeltaNode& n = Node(y);
      if (n.deleted || n.min_healthy <= 0) continue;  // providers matter with redundancy only
      providers.clear();
      Scan(y, false, [&](Index p, Index) { providers.push_back(p); });
      std::sort(providers.begin(), providers.end());
      const std::size_t all = providers.size();
      n.providers = static_cast<std::int32_t>(std::unique(providers.begin(), providers.end()) -
                                              providers.begin());
      n.repeats = static_cast<std::size_t>(n.providers) != all;
    }
    return std::make_shared<const Delta>(std::move(d_));
  }

 private:
  // The CI's DeltaNode, this edit's own: made (from the arrays' row) when it has none yet,
  // cloned when an earlier version shares it.
  DeltaNode& Node(Index i) {
    bool added = false;
    std::shared_ptr<DeltaNode>& node = d_.nodes.At(i, added);
    if (added) {
      d_.touched.Set(i);
      node = std::make_shared<DeltaNode>();
      node->id = IdOf(i);
      if (i < c_.ids_.size()) {
        node->min_healthy = c_.redundancy_[i].min_healthy;
        node->providers = c_.redundancy_[i].providers;
        node->repeats = c_.provider_repeats_[i] != 0;
      }
    } else if (node.use_count() > 1) {
      node = std::make_shared<DeltaNode>(*node);  // an earlier version keeps its own
    }
    return *node;
  }

  // Calls f(neighbour, edge) for each live slot of CI i in the adjacency `down` or up.
  template <typename F>
  void Scan(Index i, bool down, F&& f) {
    if (i < c_.ids_.size()) {
      const auto& offsets = down ? c_.down_offsets_ : c_.up_offsets_;
      const auto& neighbours = down ? c_.down_neighbours_ : c_.up_neighbours_;
      const auto& edges = down ? c_.down_edges_ : c_.up_edges_;
      for (Index s = offsets[i]; s < offsets[i + 1]; ++s) {
        if (!d_.removed.Test(edges[s])) f(neighbours[s], edges[s]);
      }
    }
    const std::shared_ptr<DeltaNode>* node = d_.nodes.Find(i);
    if (node == nullptr) return;
    for (const DeltaSlot& s : down ? (*node)->down : (*node)->up) {
      if (!d_.edges[s.edge - c_.edge_ids_.size()].removed) f(s.neighbour, s.edge);
    }
  }

  bool Same(Index e, const GraphEdge& row) const {
    CiId from = 0;
    CiId to = 0;
    std::uint16_t type = 0;
    if (e < c_.edge_ids_.size()) {
      from = c_.ids_[c_.edge_from_[e]];
      to = c_.ids_[c_.edge_to_[e]];
      type = c_.edge_types_[e];
    } else {
      const DeltaEdge& x = d_.edges[e - c_.edge_ids_.size()];
      from = IdOf(x.from);
      to = IdOf(x.to);
      type = x.type;
    }
    return from == row.from && to == row.to && c_.type_names_[type] == row.type;
  }

  CiId IdOf(Index i) const {
    return i < c_.ids_.size() ? c_.ids_[i] : d_.new_ids[i - c_.ids_.size()];
  }

  // Marks CI i's relations changed: its providers are counted again when it is redundant.
  void TouchEnd(Index i) {
    Node(i);
    recount_.push_back(i);
  }

  void RemoveEdge(Index e) {
    Index from = 0;
    Index to = 0;
    if (e < c_.edge_ids_.size()) {
      if (d_.removed.Test(e)) return;
      d_.removed.Set(e);
      ++d_.removed_count;
      from = c_.edge_from_[e];
      to = c_.edge_to_[e];
    } else {
      if (d_.edges[e - c_.edge_ids_.size()].removed) return;
      DeltaEdge& x = d_.edges.Mut(e - c_.edge_ids_.size());
      x.removed = true;
      d_.edge_index.Erase(x.id);
      from = x.from;
      to = x.to;
    }
    TouchEnd(from);
    TouchEnd(to);
  }

  void AddEdge(const GraphEdge& row) {
    // Only between CIs the graph holds, of a type it knows (as Build does).
    auto type = std::find(c_.type_names_.begin(), c_.type_names_.end(), row.type);
    if (type == c_.type_names_.end()) return;
    std::optional<Index> from = Live(row.from);
    std::optional<Index> to = Live(row.to);
    if (!from || !to) return;
    const auto t = static_cast<std::uint16_t>(type - c_.type_names_.begin());
    const auto e = static_cast<Index>(c_.edge_ids_.size() + d_.edges.size());
    d_.edges.push_back({row.id, *from, *to, t, false});
    bool added = false;
    d_.edge_index.At(row.id, added) = e;
    TouchEnd(*from);
    TouchEnd(*to);
    if (*from == *to) return;
    const Propagation p = c_.type_propagation_[t];
    if (SpreadsForward(p)) {
      Node(*from).down.push_back({*to, e, t});
      Node(*to).up.push_back({*from, e, t});
    }
    if (SpreadsBackward(p)) {
      Node(*to).down.push_back({*from, e, t});
      Node(*from).up.push_back({*to, e, t});
    }
  }

  std::optional<Index> Live(CiId id) {
    std::optional<Index> i = c_.IndexOf(id);
    if (!i) {
      const Index* added = d_.new_index.Find(id);
      if (added == nullptr) return std::nullopt;
      i = *added;
    }
    const std::shared_ptr<DeltaNode>* node = d_.nodes.Find(*i);
    if (node != nullptr && (*node)->deleted) return std::nullopt;
    return i;
  }

  const Core& c_;
  Delta d_;
  std::vector<Index> recount_;
};

DependencyGraph DependencyGraph::WithChanges(GraphChanges changes,
                                             const std::vector<RelationType>& types) const {
  bool same_types = types.size() == core_->type_names_.size();
  for (std::size_t t = 0; same_types && t < types.size(); ++t) {
    same_types = types[t].name == core_->type_names_[t] &&
                 types[t].propagation == core_->type_propagation_[t];
  }
  if (!same_types) {
    GraphContents c = Contents();
    ApplyChanges(c, std::move(changes));
    return Build(std::move(c.nodes), c.edges, types);
  }
  return WithChanges(std::move(changes));
}

DependencyGraph DependencyGraph::WithChanges(GraphChanges changes) const {
  Editor editor(*this);
  // CIs first (a new relation may name a new CI), then relations, in the order of the rows.
  std::unordered_map<CiId, const GraphNode*> cis;
  for (const GraphNode& n : changes.cis) cis[n.id] = &n;
  for (CiId id : changes.ci_ids) {
    auto it = cis.find(id);
    editor.SetCi(id, it == cis.end() ? nullptr : it->second);
  }
  std::unordered_map<RelationId, const GraphEdge*> relations;
  for (const GraphEdge& e : changes.relations) relations[e.id] = &e;
  for (RelationId id : changes.relation_ids) {
    auto it = relations.find(id);
    editor.SetRelation(id, it == relations.end() ? nullptr : it->second);
  }
  DependencyGraph g;
  g.core_ = core_;
  g.delta_ = editor.Finish();
  return g;
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
  const std::size_t base_nodes_;       // CIs in the arrays (Touched() below them is a bit)
  const std::size_t nodes_;            // and with the CIs the delta added
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
      allowed_(g.core_->type_names_.size(), filtered_ ? 0 : 1),
      base_nodes_(g.core_->ids_.size()),
      nodes_(base_nodes_ + (g.delta_ != nullptr ? g.delta_->new_ids.size() : 0)),
      offsets_(down_ ? g.core_->down_offsets_.data() : g.core_->up_offsets_.data()),
      neighbours_(down_ ? g.core_->down_neighbours_.data() : g.core_->up_neighbours_.data()),
      edges_(down_ ? g.core_->down_edges_.data() : g.core_->up_edges_.data()),
      types_(down_ ? g.core_->down_types_.data() : g.core_->up_types_.data()),
      cap_(std::max<std::size_t>(1, query.max_nodes)),
      queue_(result_.nodes.steps_),
      w_(ThreadWorkspace()),
      scope_(w_, nodes_, queue_) {
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
  const std::vector<std::string>& type_names = g.core_->type_names_;
  for (const std::string& name : query.relation_types) {
    auto it = std::find(type_names.begin(), type_names.end(), name);
    if (it == type_names.end()) {
      throw Error(ErrorCode::kInvalidArgument, "unknown relation type '" + name + "'");
    }
    allowed_[static_cast<std::size_t>(it - type_names.begin())] = 1;
  }
  result_.nodes.graph_ = &g;
  // Reserved for every CI the queue may hold (untouched pages cost nothing), so it never
  // moves while it grows.
  queue_.reserve(std::min(cap_, nodes_) + also.size() + 1);
  Admit(*root, 0, kNoIndex, kNoIndex);
  for (Index x : also) {
    if (!TestBit(w_.reached, x)) Admit(x, 0, kNoIndex, kNoIndex);
  }
}

std::vector<DependencyGraph::Index> DependencyGraph::Traversal::ProvidersOf(Index y) const {
  std::vector<Index> providers;
  g_.ForEachSlot(y, false, [&](Index p, Index, std::uint16_t type) {
    if (!filtered_ || allowed_[type] != 0) providers.push_back(p);
    return true;
  });
  std::sort(providers.begin(), providers.end());
  providers.erase(std::unique(providers.begin(), providers.end()), providers.end());
  return providers;
}

bool DependencyGraph::Traversal::StillAbsorbed(Index y) const {
  std::int32_t healthy = 0;
  for (Index p : ProvidersOf(y)) {
    if (!w_.Impacted(p)) ++healthy;
  }
  return healthy >= g_.RedundancyOf(y).min_healthy;
}

inline void DependencyGraph::Traversal::Admit(Index y, std::int32_t distance, Index parent,
                                              Index edge) {
  if (g_.IsService(y)) result_.services.push_back(queue_.size());
  queue_.push_back({y, parent, edge, distance});
  SetBit(w_.reached, y);
}

inline bool DependencyGraph::Traversal::Reach(Index y, Index edge, std::int32_t distance,
                                              Index parent) {
  if (TestBit(w_.reached, y)) {
    if (!TestBit(w_.pending, y)) return true;  // already impacted
    --w_.slack[y];
  } else if (down_ && g_.IsRedundant(y)) {
    // Redundant CIs wait until enough of their providers have failed. `slack` counts down
    // the failed providers they can still absorb, once per relation met; parallel relations
    // can only make it run out early, so running out is confirmed by an exact count.
    w_.pending_list.push_back(y);
    SetBit(w_.reached, y);
    SetBit(w_.pending, y);
    const Redundancy r = g_.RedundancyOf(y);
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
  const bool exact = !filtered_ && !g_.ProviderRepeats(y);
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
    if (head + 16 < queue_.size() && queue_[head + 16].node < base_nodes_) {
      __builtin_prefetch(&offsets[queue_[head + 16].node]);
    }
    if (head + 8 < queue_.size() && queue_[head + 8].node < base_nodes_) {
      const Index ahead = queue_[head + 8].node;
      __builtin_prefetch(&neighbours[offsets[ahead]]);
    }
    const Index x = queue_[head].node;
    const std::int32_t distance = queue_[head].distance + 1;
    if (max_depth >= 0 && distance > max_depth) continue;
    const auto parent = static_cast<Index>(head);
    if (g_.Touched(x)) {
      // A CI with changes since the Build: its relations less the removed, then the added.
      g_.ForEachSlot(x, down_, [&](Index y, Index edge, std::uint16_t type) {
        if (filtered && allowed_[type] == 0) return true;
        return Reach(y, edge, distance, parent);
      });
      continue;
    }
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
  const bool ascending =
      g_.core_->ids_ascending_ && (g_.delta_ == nullptr || g_.delta_->ids_ascending);
  if (ascending && pending.size() > 256) {
    std::size_t kept = 0;
    for (std::size_t word = 0; word < w_.pending.size() && kept < pending.size(); ++word) {
      for (std::uint64_t bits = w_.pending[word]; bits != 0; bits &= bits - 1) {
        pending[kept++] =
            static_cast<Index>(word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
      }
    }
    pending.resize(kept);  // only the still-pending CIs; their bits are cleared at End
  } else if (ascending) {
    std::sort(pending.begin(), pending.end());
  }
  for (Index y : pending) {
    if (!TestBit(w_.pending, y)) continue;
    AbsorbedNode a;
    a.id = g_.IdAt(y);
    const Redundancy r = g_.RedundancyOf(y);
    a.min_healthy = r.min_healthy;
    if (!filtered_ && !g_.ProviderRepeats(y) && query_.max_depth < 0) {
      a.providers = r.providers;  // the running count is exact here
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
  if (!ascending) {
    std::sort(result_.absorbed.begin(), result_.absorbed.end(),
              [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; });
  }
}

template <typename F>
void DependencyGraph::Traversal::ForEachImpactedEdge(F&& f) const {
  const Core& c = *g_.core_;
  for (const ImpactStep& r : queue_) {
    const Index x = r.node;
    g_.ForEachSlot(x, down_, [&](Index y, Index e, std::uint16_t type) {
      if (filtered_ && allowed_[type] == 0) return true;
      if (!w_.Impacted(y)) return true;
      if (c.type_propagation_[type] == Propagation::kBoth) {
        const Index from = e < c.edge_from_.size() ? c.edge_from_[e]
                                                   : g_.delta_->edges[e - c.edge_from_.size()].from;
        if (from != x) return true;
      }
      f(e);
      return true;
    });
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
  const Core& c = *g_.core_;
  const std::size_t base_edges = c.edge_ids_.size();
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (i + 16 < found.size() && found[i + 16] < base_edges) {
      const Index ahead = found[i + 16];
      __builtin_prefetch(&c.edge_ids_[ahead]);
      __builtin_prefetch(&c.edge_from_[ahead]);
      __builtin_prefetch(&c.edge_to_[ahead]);
      __builtin_prefetch(&c.edge_types_[ahead]);
    }
    if (i + 8 < found.size() && found[i + 8] < base_edges) {
      const Index ahead = found[i + 8];
      __builtin_prefetch(&c.ids_[c.edge_from_[ahead]]);
      __builtin_prefetch(&c.ids_[c.edge_to_[ahead]]);
    }
    const Index e = found[i];
    if (e < base_edges) {
      out.push_back({c.edge_ids_[e], g_.IdAt(c.edge_from_[e]), g_.IdAt(c.edge_to_[e]),
                     c.type_names_[c.edge_types_[e]]});
    } else {
      const DeltaEdge& x = g_.delta_->edges[e - base_edges];
      out.push_back({x.id, g_.IdAt(x.from), g_.IdAt(x.to), c.type_names_[x.type]});
    }
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
