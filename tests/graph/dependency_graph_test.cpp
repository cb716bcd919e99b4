#include "graph/dependency_graph.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "model/error.hpp"

namespace cmdb::graph {
namespace {

using model::Error;
using model::ErrorCode;
using model::Propagation;
using model::RelationType;

std::vector<RelationType> Types() {
  return {{"depends_on", "", Propagation::kToFrom, true, {}},
          {"contains", "", Propagation::kFromTo, true, {}},
          {"connected_to", "", Propagation::kBoth, true, {}},
          {"member_of", "", Propagation::kFromTo, true, {}},
          {"documents", "", Propagation::kNone, true, {}}};
}

GraphNode Node(CiId id, std::int32_t min_healthy = 0, std::string type = "server") {
  return {id, std::move(type), "ci-" + std::to_string(id), "active", min_healthy};
}

ImpactQuery Q(CiId root, ImpactDirection direction, int max_depth = -1,
              std::vector<std::string> relation_types = {}, std::size_t max_nodes = 10000) {
  ImpactQuery q;
  q.root = root;
  q.direction = direction;
  q.max_depth = max_depth;
  q.relation_types = std::move(relation_types);
  q.max_nodes = max_nodes;
  return q;
}

std::vector<RelationId> ViaPath(const ImpactResult& r, std::size_t at) {
  std::vector<RelationId> path;
  r.nodes.ViaPath(at, path);
  return path;
}

std::set<CiId> Ids(const ImpactResult& r) {
  std::set<CiId> out;
  for (const auto& n : r.nodes) out.insert(n.id);
  return out;
}

TEST(DependencyGraph, FollowsEachRelationTypesPropagation) {
  // app depends_on db; rack contains db; db connected_to switch; wiki documents db.
  auto g = DependencyGraph::Build({Node(1), Node(2), Node(3), Node(4), Node(5)},
                                  {{10, 1, 2, "depends_on"},
                                   {11, 3, 2, "contains"},
                                   {12, 2, 4, "connected_to"},
                                   {13, 5, 2, "documents"}},
                                  Types());
  // db fails: app (depends on it) and switch (link) fail; not the rack, not the wiki.
  auto down = g.Impact(Q(2, ImpactDirection::kDown));
  EXPECT_EQ(Ids(down), (std::set<CiId>{2, 1, 4}));
  // The rack fails: what it contains fails, and from there the app and the switch.
  EXPECT_EQ(Ids(g.Impact(Q(3, ImpactDirection::kDown))), (std::set<CiId>{3, 2, 1, 4}));
  // What the app needs: the db, and through it the rack and the switch.
  EXPECT_EQ(Ids(g.Impact(Q(1, ImpactDirection::kUp))), (std::set<CiId>{1, 2, 3, 4}));
}

TEST(DependencyGraph, ReportsDistanceAndTheRelationPath) {
  auto g = DependencyGraph::Build({Node(1), Node(2), Node(3)},
                                  {{20, 1, 2, "depends_on"}, {21, 2, 3, "depends_on"}}, Types());
  auto r = g.Impact(Q(3, ImpactDirection::kDown));
  ASSERT_EQ(r.nodes.size(), 3U);
  EXPECT_EQ(r.nodes[0].id, 3);
  EXPECT_EQ(r.nodes[0].distance, 0);
  EXPECT_EQ(r.nodes[2].id, 1);
  EXPECT_EQ(r.nodes[2].distance, 2);
  EXPECT_EQ(ViaPath(r, 2), (std::vector<RelationId>{21, 20}));
  ASSERT_EQ(r.edges.size(), 2U);
  std::sort(r.edges.begin(), r.edges.end(),
            [](const ImpactEdge& a, const ImpactEdge& b) { return a.id < b.id; });
  EXPECT_EQ(r.edges[0].id, 20);
  EXPECT_EQ(r.edges[0].from, 1);
  EXPECT_EQ(r.edges[0].to, 2);
  EXPECT_EQ(r.edges[0].type, "depends_on");
  EXPECT_EQ(r.edges[1].id, 21);
}

TEST(DependencyGraph, HandlesCycles) {
  auto g = DependencyGraph::Build(
      {Node(1), Node(2), Node(3)},
      {{1, 1, 2, "depends_on"}, {2, 2, 3, "depends_on"}, {3, 3, 1, "depends_on"}}, Types());
  auto r = g.Impact(Q(1, ImpactDirection::kDown));
  EXPECT_EQ(Ids(r), (std::set<CiId>{1, 2, 3}));
  EXPECT_EQ(r.edges.size(), 3U);
}

TEST(DependencyGraph, RedundancyAbsorbsFailuresWhileEnoughProvidersStayUp) {
  // Cluster 10 needs 2 of its 3 members (member_of: a failed member reaches its cluster);
  // app 20 runs on the cluster.
  std::vector<GraphNode> nodes{Node(1), Node(2), Node(3), Node(10, 2, "cluster"), Node(20)};
  std::vector<GraphEdge> edges{{1, 1, 10, "member_of"},
                               {2, 2, 10, "member_of"},
                               {3, 3, 10, "member_of"},
                               {4, 20, 10, "depends_on"},
                               {5, 99, 1, "depends_on"}};
  nodes.push_back(Node(99));
  edges.push_back({6, 1, 2, "connected_to"});  // members 1 and 2 share a link
  auto g = DependencyGraph::Build(nodes, edges, Types());
  // Member 3 alone fails: 2 of 3 stay up, the cluster absorbs it.
  auto one = g.Impact(Q(3, ImpactDirection::kDown));
  EXPECT_EQ(Ids(one), (std::set<CiId>{3}));
  ASSERT_EQ(one.absorbed.size(), 1U);
  EXPECT_EQ(one.absorbed[0].id, 10);
  EXPECT_EQ(one.absorbed[0].providers, 3);
  EXPECT_EQ(one.absorbed[0].healthy, 2);
  EXPECT_EQ(one.absorbed[0].min_healthy, 2);
  // Member 1 fails and takes member 2 down over the link: 1 of 3 left, the cluster and the
  // app fail — whichever order the traversal met them in.
  auto two = g.Impact(Q(1, ImpactDirection::kDown));
  EXPECT_EQ(Ids(two), (std::set<CiId>{1, 2, 99, 10, 20}));
  EXPECT_TRUE(two.absorbed.empty());
  // Up direction ignores redundancy: the app needs all members.
  EXPECT_EQ(Ids(g.Impact(Q(20, ImpactDirection::kUp))), (std::set<CiId>{20, 10, 1, 2, 3}));
}

TEST(DependencyGraph, CisFailingTogetherCountAgainstRedundancyTogether) {
  // Cluster 10 needs 2 of 3 members; each member alone is absorbed, two together are not
  // (a change touching two members takes the cluster and its app down).
  std::vector<GraphNode> nodes{Node(1), Node(2), Node(3), Node(10, 2, "cluster"), Node(20)};
  std::vector<GraphEdge> edges{{1, 1, 10, "member_of"},
                               {2, 2, 10, "member_of"},
                               {3, 3, 10, "member_of"},
                               {4, 20, 10, "depends_on"}};
  auto g = DependencyGraph::Build(nodes, edges, Types());
  EXPECT_EQ(Ids(g.Impact(Q(2, ImpactDirection::kDown))), (std::set<CiId>{2}));
  ImpactQuery both = Q(2, ImpactDirection::kDown);
  both.also_failing = {3, 2};  // the root repeated is harmless
  ImpactResult r = g.Impact(both);
  EXPECT_EQ(Ids(r), (std::set<CiId>{2, 3, 10, 20}));
  EXPECT_TRUE(r.absorbed.empty());
  EXPECT_EQ(r.nodes[1].id, 3);
  EXPECT_EQ(r.nodes[1].distance, 0);
  EXPECT_EQ(r.nodes[1].parent, -1);
  both.also_failing = {404};
  EXPECT_THROW(g.Impact(both), Error);
}

TEST(DependencyGraph, AProviderWithTwoRelationsCountsOnce) {
  // Member 1 is tied to cluster 10 twice (member_of, and the cluster depends_on it).
  auto g = DependencyGraph::Build({Node(1), Node(2), Node(3), Node(10, 2, "cluster"), Node(20)},
                                  {{1, 1, 10, "member_of"},
                                   {2, 10, 1, "depends_on"},
                                   {3, 2, 10, "member_of"},
                                   {4, 3, 10, "member_of"},
                                   {5, 20, 10, "depends_on"}},
                                  Types());
  auto one = g.Impact(Q(1, ImpactDirection::kDown));
  EXPECT_EQ(Ids(one), (std::set<CiId>{1}));
  ASSERT_EQ(one.absorbed.size(), 1U);
  EXPECT_EQ(one.absorbed[0].providers, 3);
  EXPECT_EQ(one.absorbed[0].failed, 1);
  EXPECT_EQ(one.absorbed[0].healthy, 2);
  // With a type filter the counts come from the filtered relations only.
  auto members_only = g.Impact(Q(1, ImpactDirection::kDown, -1, {"member_of"}));
  ASSERT_EQ(members_only.absorbed.size(), 1U);
  EXPECT_EQ(members_only.absorbed[0].providers, 3);
}

TEST(DependencyGraph, DepthTypeFilterAndCap) {
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
  for (CiId i = 1; i <= 10; ++i) nodes.push_back(Node(i));
  for (CiId i = 2; i <= 10; ++i)
    edges.push_back({i, i, i - 1, i % 2 == 0 ? "depends_on" : "connected_to"});
  auto g = DependencyGraph::Build(nodes, edges, Types());
  EXPECT_EQ(g.Impact(Q(1, ImpactDirection::kDown, 3)).nodes.size(), 4U);
  EXPECT_EQ(g.Impact(Q(1, ImpactDirection::kDown, 0)).nodes.size(), 1U);
  auto filtered = g.Impact(Q(1, ImpactDirection::kDown, -1, {"depends_on"}));
  EXPECT_EQ(Ids(filtered), (std::set<CiId>{1, 2}));
  auto capped = g.Impact(Q(1, ImpactDirection::kDown, -1, {}, 5));
  EXPECT_EQ(capped.nodes.size(), 5U);
  EXPECT_TRUE(capped.truncated);
  EXPECT_FALSE(g.Impact(Q(1, ImpactDirection::kDown)).truncated);
  EXPECT_THROW(g.Impact(Q(1, ImpactDirection::kDown, -1, {"nope"})), Error);
  EXPECT_THROW(g.Impact(Q(42, ImpactDirection::kDown)), Error);
}

// The relation types the random graphs draw from, each propagation among them.
constexpr std::array<const char*, 5> kRandomTypes = {"depends_on", "contains", "connected_to",
                                                     "member_of", "documents"};

// The reference: breadth-first search straight over the edge list, no CSR, no redundancy.
std::map<CiId, int> Reference(const std::vector<GraphEdge>& edges, CiId root, bool down,
                              int max_depth) {
  std::map<std::string, Propagation> prop;
  for (const auto& t : Types()) prop[t.name] = t.propagation;
  std::map<CiId, int> dist{{root, 0}};
  std::vector<CiId> frontier{root};
  for (int d = 0; !frontier.empty() && (max_depth < 0 || d < max_depth); ++d) {
    std::vector<CiId> next;
    for (CiId x : frontier) {
      for (const auto& e : edges) {
        Propagation p = prop[e.type];
        bool fwd = p == Propagation::kFromTo || p == Propagation::kBoth;
        bool bwd = p == Propagation::kToFrom || p == Propagation::kBoth;
        CiId y = 0;
        if (e.from == x && (down ? fwd : bwd)) y = e.to;
        if (e.to == x && (down ? bwd : fwd)) y = e.from;
        if (y != 0 && !dist.contains(y)) {
          dist[y] = d + 1;
          next.push_back(y);
        }
      }
    }
    frontier = std::move(next);
  }
  return dist;
}

TEST(DependencyGraph, AgreesWithAReferenceTraversalOnRandomGraphsWithCycles) {
  std::mt19937 rng(20261127);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 40);
    const int m = static_cast<int>(rng() % (3UL * static_cast<unsigned long>(n)));
    std::vector<GraphNode> nodes;
    for (CiId i = 1; i <= n; ++i) {
      nodes.push_back(Node(i, 0, rng() % 4 == 0 ? "business_service" : "server"));
    }
    std::vector<GraphEdge> edges;
    for (int k = 0; k < m; ++k) {
      CiId a = 1 + static_cast<CiId>(rng() % n);
      CiId b = 1 + static_cast<CiId>(rng() % n);
      if (a != b) edges.push_back({k + 1, a, b, kRandomTypes.at(rng() % kRandomTypes.size())});
    }
    auto g = DependencyGraph::Build(nodes, edges, Types());
    CiId root = 1 + static_cast<CiId>(rng() % n);
    bool down = rng() % 2 == 0;
    int depth = static_cast<int>(rng() % 5) - 1;
    auto got = g.Impact(Q(root, down ? ImpactDirection::kDown : ImpactDirection::kUp, depth));
    auto want = Reference(edges, root, down, depth);
    std::map<CiId, int> got_dist;
    std::vector<std::size_t> services;
    for (std::size_t i = 0; i < got.nodes.size(); ++i) {
      const ImpactNode node = got.nodes[i];
      got_dist[node.id] = node.distance;
      // The node as the result resolves it agrees with the graph's own record of that CI.
      const NodeView view = got.nodes.View(i);
      EXPECT_EQ(view.id, node.id);
      EXPECT_EQ(view.name, "ci-" + std::to_string(node.id));
      EXPECT_EQ(view.type, g.Find(node.id)->type);
      EXPECT_EQ(got.nodes.Distance(i), node.distance);
      if (view.type == "business_service") services.push_back(i);
      // Its path ends with the relation it was reached over, one step from its parent.
      const std::vector<RelationId> path = ViaPath(got, i);
      ASSERT_EQ(path.size(), static_cast<std::size_t>(node.distance));
      if (node.parent >= 0) {
        EXPECT_EQ(path.back(), node.via_edge);
        EXPECT_EQ(got.nodes[static_cast<std::size_t>(node.parent)].distance, node.distance - 1);
        const auto& e = *std::find_if(edges.begin(), edges.end(),
                                      [&](const GraphEdge& x) { return x.id == node.via_edge; });
        const CiId parent_id = got.nodes[static_cast<std::size_t>(node.parent)].id;
        EXPECT_TRUE((e.from == parent_id && e.to == node.id) ||
                    (e.to == parent_id && e.from == node.id));
      } else {
        EXPECT_EQ(node.distance, 0);
      }
    }
    EXPECT_EQ(got.services, services) << "trial " << trial;
    ASSERT_EQ(got_dist, want) << "trial " << trial;
  }
}

// k-of-n redundancy as a fixed point, the way an operator would reason about it: a CI fails
// when a CI whose failure reaches it has failed, or, with redundancy, when fewer than
// min_healthy of its distinct providers are still up; repeated until nothing changes.
struct RedundancyReference {
  std::set<CiId> failed;
  std::map<CiId, std::pair<int, int>> absorbed;  // id -> (providers, failed providers)
};
RedundancyReference ReferenceWithRedundancy(const std::vector<GraphNode>& nodes,
                                            const std::vector<GraphEdge>& edges, CiId root,
                                            const std::set<std::string>& allowed) {
  std::map<CiId, std::set<CiId>> providers;
  for (const GraphEdge& e : edges) {
    if (!allowed.empty() && !allowed.contains(e.type)) continue;
    if (e.type == "depends_on" || e.type == "connected_to") providers[e.from].insert(e.to);
    if (e.type == "contains" || e.type == "member_of" || e.type == "connected_to") {
      providers[e.to].insert(e.from);
    }
  }
  RedundancyReference out;
  out.failed.insert(root);
  for (bool changed = true; changed;) {
    changed = false;
    for (const GraphNode& n : nodes) {
      if (out.failed.contains(n.id)) continue;
      int down = 0;
      for (CiId p : providers[n.id]) down += out.failed.contains(p) ? 1 : 0;
      const int up = static_cast<int>(providers[n.id].size()) - down;
      if (down > 0 && (n.min_healthy == 0 || up < n.min_healthy)) {
        out.failed.insert(n.id);
        changed = true;
      }
    }
  }
  for (const GraphNode& n : nodes) {
    if (out.failed.contains(n.id) || n.min_healthy == 0) continue;
    int down = 0;
    for (CiId p : providers[n.id]) down += out.failed.contains(p) ? 1 : 0;
    if (down > 0) out.absorbed[n.id] = {static_cast<int>(providers[n.id].size()), down};
  }
  return out;
}

TEST(DependencyGraph, RedundancyAgreesWithAFixedPointOnRandomGraphs) {
  std::mt19937 rng(20261128);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 30);
    std::vector<GraphNode> nodes;
    for (CiId i = 1; i <= n; ++i) {
      const bool redundant = rng() % 3 == 0;
      nodes.push_back(Node(i, redundant ? 1 + static_cast<std::int32_t>(rng() % 3) : 0,
                           redundant ? "cluster" : "server"));
    }
    std::vector<GraphEdge> edges;
    const int m = static_cast<int>(rng() % (3UL * static_cast<unsigned long>(n)));
    for (int k = 0; k < m; ++k) {
      const CiId a = 1 + static_cast<CiId>(rng() % n);
      const CiId b = 1 + static_cast<CiId>(rng() % n);
      if (a == b) continue;
      edges.push_back({k + 1, a, b, kRandomTypes.at(rng() % kRandomTypes.size())});
      // Parallel relations between the same two CIs: a provider still counts once.
      if (rng() % 5 == 0)
        edges.push_back({1000 + k, a, b, kRandomTypes.at(rng() % kRandomTypes.size())});
    }
    const auto g = DependencyGraph::Build(nodes, edges, Types());
    const CiId root = 1 + static_cast<CiId>(rng() % n);
    std::vector<std::string> filter;
    if (rng() % 3 == 0) filter = {"member_of", "depends_on", "connected_to"};
    const RedundancyReference want = ReferenceWithRedundancy(
        nodes, edges, root, std::set<std::string>(filter.begin(), filter.end()));
    const ImpactResult got = g.Impact(Q(root, ImpactDirection::kDown, -1, filter));
    ASSERT_EQ(Ids(got), want.failed) << "trial " << trial;
    std::map<CiId, std::pair<int, int>> absorbed;
    for (const AbsorbedNode& a : got.absorbed) {
      absorbed[a.id] = {a.providers, a.failed};
      EXPECT_EQ(a.healthy, a.providers - a.failed);
      EXPECT_EQ(a.min_healthy, g.Find(a.id)->min_healthy);
    }
    EXPECT_EQ(absorbed, want.absorbed) << "trial " << trial;
    EXPECT_TRUE(
        std::is_sorted(got.absorbed.begin(), got.absorbed.end(),
                       [](const AbsorbedNode& a, const AbsorbedNode& b) { return a.id < b.id; }));
  }
}

TEST(DependencyGraph, ManyAbsorbedCisAreListedInIdOrderHoweverTheGraphWasBuilt) {
  // A switch every VM is connected to; 600 clusters of two VMs each, needing one of two: the
  // switch failing takes every VM down and every cluster with it, except those whose second
  // member hangs off another switch. Built with ids ascending and in a shuffled order.
  std::vector<GraphNode> nodes{Node(1), Node(2)};
  std::vector<GraphEdge> edges;
  RelationId rel = 1;
  for (CiId c = 0; c < 600; ++c) {
    const CiId cluster = 10000 + c;
    const CiId a = 100 + 2 * c;
    const CiId b = a + 1;
    nodes.push_back(Node(cluster, 1, "cluster"));
    nodes.push_back(Node(a));
    nodes.push_back(Node(b));
    edges.push_back({rel++, a, 1, "connected_to"});
    edges.push_back({rel++, b, c % 3 == 0 ? 1 : 2, "connected_to"});
    edges.push_back({rel++, a, cluster, "member_of"});
    edges.push_back({rel++, b, cluster, "member_of"});
  }
  std::vector<GraphNode> ascending = nodes;
  std::sort(ascending.begin(), ascending.end(),
            [](const GraphNode& x, const GraphNode& y) { return x.id < y.id; });
  std::vector<GraphNode> shuffled = nodes;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  std::vector<std::vector<CiId>> lists;
  for (const auto& order : {ascending, shuffled}) {
    const auto g = DependencyGraph::Build(order, edges, Types());
    const ImpactResult r = g.Impact(Q(1, ImpactDirection::kDown));
    std::vector<CiId> ids;
    for (const AbsorbedNode& a : r.absorbed) ids.push_back(a.id);
    lists.push_back(ids);
    // Every third cluster has both members on switch 1 and fails; the others absorb it.
    EXPECT_EQ(ids.size(), 400U);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(Ids(r).count(10000), 1U);
    EXPECT_EQ(Ids(r).count(10001), 0U);
    // Running it again on the same thread starts from a clean workspace.
    EXPECT_EQ(g.Impact(Q(1, ImpactDirection::kDown)).absorbed.size(), 400U);
    EXPECT_EQ(g.Impact(Q(2, ImpactDirection::kDown)).absorbed.size(), 400U);
  }
  EXPECT_EQ(lists[0], lists[1]);
}

// Contents as sorted tuples, to compare two graphs whatever order they were built in.
std::pair<std::vector<std::tuple<CiId, std::string, std::string, std::string, int>>,
          std::vector<std::tuple<RelationId, CiId, CiId, std::string>>>
Sorted(const GraphContents& c) {
  std::vector<std::tuple<CiId, std::string, std::string, std::string, int>> nodes;
  for (const auto& n : c.nodes) nodes.emplace_back(n.id, n.type, n.name, n.status, n.min_healthy);
  std::vector<std::tuple<RelationId, CiId, CiId, std::string>> edges;
  for (const auto& e : c.edges) edges.emplace_back(e.id, e.from, e.to, e.type);
  std::sort(nodes.begin(), nodes.end());
  std::sort(edges.begin(), edges.end());
  return {nodes, edges};
}

GraphContents SampleContents() {
  GraphContents c;
  c.nodes = {Node(1), Node(2, 0, "application"), Node(3, 2, "cluster"), Node(4), Node(5)};
  c.nodes[1].name = "quote\" back\\slash <b>&amp; \xe6\x97\xa5\xe6\x9c\xac tab\t";
  c.nodes[4].status = "retired";
  c.edges = {{10, 2, 3, "depends_on"},
             {11, 4, 3, "member_of"},
             {12, 5, 3, "member_of"},
             {13, 1, 4, "connected_to"}};
  return c;
}

TEST(GraphSnapshot, SerialisedContentsReadBackExactly) {
  const GraphContents c = SampleContents();
  const std::string bytes = SerializeGraph(c);
  EXPECT_EQ(Sorted(DeserializeGraph(bytes)), Sorted(c));
  // A graph's contents are what it was built from (relations of unknown types are dropped).
  GraphContents with_unknown = c;
  with_unknown.edges.push_back({14, 1, 2, "no_such_type"});
  const DependencyGraph g = DependencyGraph::Build(with_unknown.nodes, with_unknown.edges, Types());
  EXPECT_EQ(Sorted(g.Contents()), Sorted(c));
  EXPECT_EQ(Sorted(DeserializeGraph(SerializeGraph(GraphContents{}))), Sorted(GraphContents{}));
}

TEST(GraphSnapshot, AnythingElseIsRefused) {
  const std::string bytes = SerializeGraph(SampleContents());
  EXPECT_THROW(DeserializeGraph(""), Error);
  EXPECT_THROW(DeserializeGraph("CMDBGRF0" + bytes.substr(8)), Error);  // another version
  for (std::size_t cut : {std::size_t{9}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THROW(DeserializeGraph(bytes.substr(0, cut)), Error) << cut;
  }
  EXPECT_THROW(DeserializeGraph(bytes + "x"), Error);
  // A node count far beyond what the bytes could hold is refused before anything is reserved.
  std::string huge = bytes;
  huge[8] = '\xff';
  huge[15] = '\x7f';
  EXPECT_THROW(DeserializeGraph(huge), Error);
}

TEST(GraphSnapshot, ChangesReplaceAddAndRemoveRows) {
  GraphContents c = SampleContents();
  GraphChanges changes;
  changes.ci_ids = {4, 6, 1};  // 4 renamed, 6 new, 1 deleted
  changes.cis = {{4, "server", "renamed", "maintenance", 0}, Node(6)};
  changes.relation_ids = {13, 11, 15};  // 13 deleted with CI 1, 11 re-pointed, 15 new
  changes.relations = {{11, 6, 3, "member_of"}, {15, 2, 6, "depends_on"}};
  ApplyChanges(c, changes);
  GraphContents expected;
  expected.nodes = {Node(2, 0, "application"),
                    Node(3, 2, "cluster"),
                    Node(5),
                    Node(6),
                    {4, "server", "renamed", "maintenance", 0}};
  expected.nodes[0].name = SampleContents().nodes[1].name;
  expected.nodes[2].status = "retired";
  expected.edges = {{10, 2, 3, "depends_on"},
                    {11, 6, 3, "member_of"},
                    {12, 5, 3, "member_of"},
                    {15, 2, 6, "depends_on"}};
  EXPECT_EQ(Sorted(c), Sorted(expected));
  // Rebuilt, the graph answers as if built from scratch: 6 now feeds the cluster.
  const DependencyGraph g = DependencyGraph::Build(c.nodes, c.edges, Types());
  EXPECT_EQ(g.node_count(), 5U);
  EXPECT_EQ(g.edge_count(), 4U);
  EXPECT_EQ(g.Find(4)->name, "renamed");
  EXPECT_FALSE(g.Find(1));
}

// What an impact answer says, in a form two graphs with the same contents must agree on
// whatever their slot order (BFS parents among equals may differ, the sets may not).
struct Answer {
  std::map<CiId, std::int32_t> distances;
  std::set<RelationId> edges;
  std::map<CiId, std::tuple<int, int, int>> absorbed;  // providers, failed, min_healthy
  std::set<CiId> services;
  bool truncated = false;
  bool operator==(const Answer&) const = default;
};

Answer AnswerOf(const DependencyGraph& g, const ImpactQuery& q) {
  Answer a;
  const ImpactResult r = g.Impact(q);
  for (const ImpactNode& n : r.nodes) a.distances[n.id] = n.distance;
  for (const ImpactEdge& e : r.edges) a.edges.insert(e.id);
  for (const AbsorbedNode& x : r.absorbed)
    a.absorbed[x.id] = {x.providers, x.failed, x.min_healthy};
  for (std::size_t at : r.services) a.services.insert(r.nodes[at].id);
  a.truncated = r.truncated;
  return a;
}

// Random writes (CIs created, changed, deleted with their relations; relations added and
// removed), applied one batch at a time as deltas on deltas: every answer is the answer of a
// graph built from scratch from the same rows, and so is the merged graph's.
TEST(DependencyGraph, ChangesAppliedBesideTheArraysAnswerAsARebuildDoes) {
  std::mt19937 rng(20261206);
  for (int trial = 0; trial < 150; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 25);
    GraphContents rows;
    CiId next_ci = 1;
    RelationId next_relation = 1;
    auto random_node = [&](CiId id) {
      const bool redundant = rng() % 4 == 0;
      const bool service = rng() % 5 == 0;
      GraphNode node = Node(id, redundant ? 1 + static_cast<std::int32_t>(rng() % 3) : 0,
                            service ? "business_service" : (redundant ? "cluster" : "server"));
      if (rng() % 3 == 0) node.status = "retired";
      return node;
    };
    for (int i = 0; i < n; ++i) rows.nodes.push_back(random_node(next_ci++));
    auto random_edge = [&]() -> std::optional<GraphEdge> {
      if (rows.nodes.size() < 2) return std::nullopt;
      const CiId a = rows.nodes[rng() % rows.nodes.size()].id;
      const CiId b = rows.nodes[rng() % rows.nodes.size()].id;
      if (a == b) return std::nullopt;
      return GraphEdge{next_relation++, a, b, kRandomTypes.at(rng() % kRandomTypes.size())};
    };
    for (int k = 0; k < 2 * n; ++k) {
      if (auto e = random_edge()) rows.edges.push_back(*e);
    }
    DependencyGraph g = DependencyGraph::Build(rows.nodes, rows.edges, Types());
    for (int batch = 0; batch < 6; ++batch) {
      GraphChanges changes;
      const int writes = 1 + static_cast<int>(rng() % 6);
      for (int w = 0; w < writes; ++w) {
        switch (rng() % 6) {
          case 0: {  // a new CI, maybe related at once
            GraphNode node = random_node(next_ci++);
            changes.ci_ids.push_back(node.id);
            changes.cis.push_back(node);
            rows.nodes.push_back(node);
            break;
          }
          case 1: {  // a CI changed: status, type, redundancy
            if (rows.nodes.empty()) break;
            GraphNode& node = rows.nodes[rng() % rows.nodes.size()];
            const GraphNode changed = random_node(node.id);
            node = changed;
            changes.ci_ids.push_back(node.id);
            changes.cis.push_back(node);
            break;
          }
          case 2: {  // a CI deleted with its relations
            if (rows.nodes.size() < 2) break;
            const std::size_t at = rng() % rows.nodes.size();
            const CiId id = rows.nodes[at].id;
            rows.nodes.erase(rows.nodes.begin() + static_cast<std::ptrdiff_t>(at));
            changes.ci_ids.push_back(id);
            std::erase_if(rows.edges, [&](const GraphEdge& e) {
              if (e.from != id && e.to != id) return false;
              changes.relation_ids.push_back(e.id);
              return true;
            });
            break;
          }
          case 3:
          case 4: {  // a relation added (parallel ones too)
            if (auto e = random_edge()) {
              changes.relation_ids.push_back(e->id);
              changes.relations.push_back(*e);
              rows.edges.push_back(*e);
            }
            break;
          }
          default: {  // a relation removed
            if (rows.edges.empty()) break;
            const std::size_t at = rng() % rows.edges.size();
            changes.relation_ids.push_back(rows.edges[at].id);
            rows.edges.erase(rows.edges.begin() + static_cast<std::ptrdiff_t>(at));
            break;
          }
        }
      }
      // As the change log says it: ids once each, the rows as they are now.
      for (auto* ids : {&changes.ci_ids, &changes.relation_ids}) {
        std::sort(ids->begin(), ids->end());
        ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
      }
      std::vector<GraphNode> current_cis;
      for (CiId id : changes.ci_ids) {
        for (const GraphNode& node : rows.nodes) {
          if (node.id == id) current_cis.push_back(node);
        }
      }
      changes.cis = current_cis;
      std::vector<GraphEdge> current_relations;
      for (RelationId id : changes.relation_ids) {
        for (const GraphEdge& e : rows.edges) {
          if (e.id == id) current_relations.push_back(e);
        }
      }
      changes.relations = current_relations;
      // Versions are immutable: readers of the previous one see it unchanged.
      const DependencyGraph previous = g;
      const auto previous_contents = Sorted(previous.Contents());
      g = g.WithChanges(changes, Types());
      EXPECT_EQ(Sorted(previous.Contents()), previous_contents) << "trial " << trial;
      const DependencyGraph rebuilt = DependencyGraph::Build(rows.nodes, rows.edges, Types());
      if (!changes.empty()) {
        ASSERT_GT(g.delta_size(), 0U);
      }
      EXPECT_EQ(Sorted(g.Contents()), Sorted(rebuilt.Contents())) << "trial " << trial;
      EXPECT_EQ(g.node_count(), rebuilt.node_count());
      EXPECT_EQ(g.edge_count(), rebuilt.edge_count());
      for (const GraphNode& node : rows.nodes) {
        ASSERT_TRUE(g.Find(node.id)) << node.id;
        EXPECT_EQ(g.Find(node.id)->status, node.status);
        EXPECT_EQ(g.Find(node.id)->min_healthy, node.min_healthy);
      }
      if (rows.nodes.empty()) continue;
      for (int query = 0; query < 6; ++query) {
        ImpactQuery q = Q(rows.nodes[rng() % rows.nodes.size()].id,
                          rng() % 2 == 0 ? ImpactDirection::kDown : ImpactDirection::kUp,
                          static_cast<int>(rng() % 4) - 1);
        if (rng() % 3 == 0) q.relation_types = {"member_of", "depends_on", "connected_to"};
        if (rng() % 4 == 0) q.also_failing = {rows.nodes[rng() % rows.nodes.size()].id};
        EXPECT_EQ(AnswerOf(g, q), AnswerOf(rebuilt, q))
            << "trial " << trial << " batch " << batch << " root " << q.root;
      }
    }
    const DependencyGraph merged = g.Merged();
    EXPECT_EQ(merged.delta_size(), 0U);
    EXPECT_EQ(Sorted(merged.Contents()), Sorted(g.Contents()));
  }
}

// The same on a graph large enough that the delta's shared buckets and bit blocks hold many
// CIs and relations each (keys far apart and close together), with earlier versions kept.
TEST(DependencyGraph, ManyChangesAcrossSharedBucketsAnswerAsARebuildDoes) {
  std::mt19937 rng(20261207);
  GraphContents rows;
  for (CiId id = 1; id <= 5000; ++id) {
    rows.nodes.push_back(
        Node(id, id % 50 == 0 ? 2 : 0, id % 97 == 0 ? "business_service" : "server"));
  }
  RelationId next_relation = 1;
  for (int k = 0; k < 8000; ++k) {
    const CiId a = 1 + static_cast<CiId>(rng() % 5000);
    const CiId b = 1 + static_cast<CiId>(rng() % 5000);
    if (a != b) rows.edges.push_back({next_relation++, a, b, kRandomTypes.at(rng() % 4)});
  }
  DependencyGraph g = DependencyGraph::Build(rows.nodes, rows.edges, Types());
  // Every version kept, with its contents when it was current.
  std::vector<std::pair<DependencyGraph, decltype(Sorted(rows))>> versions;
  CiId next_ci = 5001;
  for (int batch = 0; batch < 30; ++batch) {  // the delta's relations span chunks
    GraphChanges changes;
    for (int w = 0; w < 60; ++w) {
      if (rng() % 3 == 0 && !rows.edges.empty()) {  // a relation removed
        const std::size_t at = rng() % rows.edges.size();
        changes.relation_ids.push_back(rows.edges[at].id);
        rows.edges.erase(rows.edges.begin() + static_cast<std::ptrdiff_t>(at));
      } else if (rng() % 4 == 0) {  // a new CI, related at once
        const GraphNode node = Node(next_ci++, 0, "server");
        rows.nodes.push_back(node);
        changes.ci_ids.push_back(node.id);
        changes.cis.push_back(node);
        const GraphEdge e{next_relation++, node.id, 1 + static_cast<CiId>(rng() % 5000),
                          "depends_on"};
        rows.edges.push_back(e);
        changes.relation_ids.push_back(e.id);
        changes.relations.push_back(e);
      } else {  // a relation added
        const CiId a = rows.nodes[rng() % rows.nodes.size()].id;
        const CiId b = rows.nodes[rng() % rows.nodes.size()].id;
        if (a == b) continue;
        const GraphEdge e{next_relation++, a, b, kRandomTypes.at(rng() % 4)};
        rows.edges.push_back(e);
        changes.relation_ids.push_back(e.id);
        changes.relations.push_back(e);
      }
    }
    // As the change log says it: each id once, with its row as it is now (a relation added and
    // removed in the same batch has none).
    std::sort(changes.relation_ids.begin(), changes.relation_ids.end());
    changes.relation_ids.erase(
        std::unique(changes.relation_ids.begin(), changes.relation_ids.end()),
        changes.relation_ids.end());
    const std::set<RelationId> touched(changes.relation_ids.begin(), changes.relation_ids.end());
    changes.relations.clear();
    for (const GraphEdge& e : rows.edges) {
      if (touched.contains(e.id)) changes.relations.push_back(e);
    }
    versions.emplace_back(g, Sorted(g.Contents()));
    g = g.WithChanges(changes, Types());
    const DependencyGraph rebuilt = DependencyGraph::Build(rows.nodes, rows.edges, Types());
    ASSERT_EQ(Sorted(g.Contents()), Sorted(rebuilt.Contents())) << "batch " << batch;
    for (int query = 0; query < 3; ++query) {
      ImpactQuery q = Q(rows.nodes[rng() % rows.nodes.size()].id,
                        query == 0 ? ImpactDirection::kDown : ImpactDirection::kUp, 3);
      EXPECT_EQ(AnswerOf(g, q), AnswerOf(rebuilt, q)) << "batch " << batch;
    }
  }
  // Every earlier version still holds what it held when it was current.
  for (const auto& [version, contents] : versions) EXPECT_EQ(Sorted(version.Contents()), contents);
}

TEST(DependencyGraph, NewRelationTypesRebuildTheGraph) {
  const DependencyGraph g =
      DependencyGraph::Build({Node(1), Node(2)}, {{10, 1, 2, "depends_on"}}, Types());
  std::vector<RelationType> types = Types();
  types.push_back({"feeds", "", Propagation::kFromTo, true, {}});
  GraphChanges changes;
  changes.relation_ids = {11};
  changes.relations = {{11, 1, 2, "feeds"}};
  const DependencyGraph changed = g.WithChanges(changes, types);
  EXPECT_EQ(changed.delta_size(), 0U);  // rebuilt with the new type
  EXPECT_EQ(Ids(changed.Impact(Q(1, ImpactDirection::kDown))), (std::set<CiId>{1, 2}));
  EXPECT_EQ(changed.edge_count(), 2U);
}

}  // namespace
}  // namespace cmdb::graph
