#include "graph/graph_contents.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "model/error.hpp"

namespace cmdb::graph {

using model::Error;
using model::ErrorCode;

namespace {

// Removes the elements whose id is in `ids` (sorted), then appends `rows`.
template <typename Row, typename Id>
void Replace(std::vector<Row>& items, std::vector<Id> ids, std::vector<Row> rows) {
  if (ids.empty()) return;
  std::sort(ids.begin(), ids.end());
  std::erase_if(items,
                [&](const Row& r) { return std::binary_search(ids.begin(), ids.end(), r.id); });
  for (Row& r : rows) {
    if (std::binary_search(ids.begin(), ids.end(), r.id)) items.push_back(std::move(r));
  }
}

constexpr std::string_view kSnapshotMagic = "CMDBGRF1";

class ByteWriter {
 public:
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);  // NOLINT: bytes of a number
  }
  void Text(std::string_view s) {
    Put(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void Raw(std::string_view s) { out_.append(s); }
  std::string Take() { return std::move(out_); }
  void Reserve(std::size_t n) { out_.reserve(n); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  template <typename T>
  T Get() {
    Need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string_view Text() {
    const auto size = Get<std::uint32_t>();
    Need(size);
    std::string_view s = in_.substr(at_, size);
    at_ += size;
    return s;
  }
  std::string_view Raw(std::size_t size) {
    Need(size);
    std::string_view s = in_.substr(at_, size);
    at_ += size;
    return s;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  void Need(std::size_t size) const {
    if (in_.size() - at_ < size) throw Error(ErrorCode::kInternal, "graph snapshot is truncated");
  }
  std::string_view in_;
  std::size_t at_ = 0;
};

// Interns strings as small indexes for the snapshot's tables.
class StringTable {
 public:
  std::uint16_t Index(const std::string& s) {
    auto [it, added] = index_.try_emplace(s, static_cast<std::uint16_t>(names_.size()));
    if (added) {
      if (names_.size() >= 0xFFFF) throw Error(ErrorCode::kInternal, "too many distinct names");
      names_.push_back(s);
    }
    return it->second;
  }
  void Write(ByteWriter& w) const {
    w.Put(static_cast<std::uint32_t>(names_.size()));
    for (const std::string& n : names_) w.Text(n);
  }

 private:
  std::unordered_map<std::string, std::uint16_t> index_;
  std::vector<std::string> names_;
};

std::vector<std::string> ReadTable(ByteReader& r) {
  const auto count = r.Get<std::uint32_t>();
  std::vector<std::string> names;
  for (std::uint32_t i = 0; i < count; ++i) names.emplace_back(r.Text());
  return names;
}

const std::string& Named(const std::vector<std::string>& table, std::uint16_t index) {
  if (index >= table.size()) throw Error(ErrorCode::kInternal, "graph snapshot is corrupt");
  return table[index];
}

}  // namespace

void ApplyChanges(GraphContents& contents, GraphChanges changes) {
  Replace(contents.nodes, std::move(changes.ci_ids), std::move(changes.cis));
  Replace(contents.edges, std::move(changes.relation_ids), std::move(changes.relations));
}

std::string SerializeGraph(const GraphContents& c) {
  // Rows first into their own buffer while the tables of type and status names fill up.
  StringTable node_types;
  StringTable statuses;
  StringTable edge_types;
  ByteWriter rows;
  rows.Reserve(c.nodes.size() * 32 + c.edges.size() * 26);
  for (const GraphNode& n : c.nodes) {
    rows.Put(n.id);
    rows.Put(node_types.Index(n.type));
    rows.Put(statuses.Index(n.status));
    rows.Put(n.min_healthy);
    rows.Text(n.name);
  }
  for (const GraphEdge& e : c.edges) {
    rows.Put(e.id);
    rows.Put(e.from);
    rows.Put(e.to);
    rows.Put(edge_types.Index(e.type));
  }
  ByteWriter w;
  w.Raw(kSnapshotMagic);
  w.Put(static_cast<std::uint64_t>(c.nodes.size()));
  w.Put(static_cast<std::uint64_t>(c.edges.size()));
  node_types.Write(w);
  statuses.Write(w);
  edge_types.Write(w);
  std::string header = w.Take();
  std::string body = rows.Take();
  header.reserve(header.size() + body.size());
  header += body;
  return header;
}

GraphContents DeserializeGraph(std::string_view bytes) {
  ByteReader r(bytes);
  if (r.Raw(kSnapshotMagic.size()) != kSnapshotMagic) {
    throw Error(ErrorCode::kInternal, "not a graph snapshot of this version");
  }
  const auto n = r.Get<std::uint64_t>();
  const auto m = r.Get<std::uint64_t>();
  // Every node takes at least 18 bytes and every edge 26: bound the counts before reserving.
  if (n > bytes.size() / 18 || m > bytes.size() / 26) {
    throw Error(ErrorCode::kInternal, "graph snapshot is corrupt");
  }
  const std::vector<std::string> node_types = ReadTable(r);
  const std::vector<std::string> statuses = ReadTable(r);
  const std::vector<std::string> edge_types = ReadTable(r);
  GraphContents c;
  c.nodes.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    GraphNode node;
    node.id = r.Get<CiId>();
    node.type = Named(node_types, r.Get<std::uint16_t>());
    node.status = Named(statuses, r.Get<std::uint16_t>());
    node.min_healthy = r.Get<std::int32_t>();
    node.name = std::string(r.Text());
    c.nodes.push_back(std::move(node));
  }
  c.edges.reserve(m);
  for (std::uint64_t i = 0; i < m; ++i) {
    GraphEdge edge;
    edge.id = r.Get<RelationId>();
    edge.from = r.Get<CiId>();
    edge.to = r.Get<CiId>();
    edge.type = Named(edge_types, r.Get<std::uint16_t>());
    c.edges.push_back(std::move(edge));
  }
  if (!r.done()) throw Error(ErrorCode::kInternal, "graph snapshot has trailing bytes");
  return c;
}

}  // namespace cmdb::graph
