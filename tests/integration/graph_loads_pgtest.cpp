// Incremental loads of the dependency graph: the change log, the stored snapshot and the
// fallbacks to a full read, against a real PostgreSQL. Every incremental result is compared
// with a full read of the same database.

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/db_pool.hpp"
#include "store/graph_cache.hpp"
#include "store/graph_store.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

using graph::GraphContents;
using store::LoadGraph;
using store::VersionedGraph;
using Kind = VersionedGraph::Kind;

std::pair<std::vector<std::tuple<model::CiId, std::string, std::string, std::string, int>>,
          std::vector<std::tuple<model::RelationId, model::CiId, model::CiId, std::string>>>
Sorted(const GraphContents& c) {
  std::vector<std::tuple<model::CiId, std::string, std::string, std::string, int>> nodes;
  for (const auto& n : c.nodes) nodes.emplace_back(n.id, n.type, n.name, n.status, n.min_healthy);
  std::vector<std::tuple<model::RelationId, model::CiId, model::CiId, std::string>> edges;
  for (const auto& e : c.edges) edges.emplace_back(e.id, e.from, e.to, e.type);
  std::sort(nodes.begin(), nodes.end());
  std::sort(edges.begin(), edges.end());
  return {nodes, edges};
}

class GraphLoads : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    pool_ = std::make_unique<store::DbPool>(dsn_, 3);
  }
  void TearDown() override {
    pool_.reset();
    PgTest::TearDown();
  }
  SqlResult Sql(const std::string& query, const SqlParams& params = {}) {
    store::DbSession session = pool_->Lease();
    return Query(session, query, params);
  }
  std::int64_t Ci(const std::string& name, const std::string& type = "server") {
    return Sql("INSERT INTO configuration_items (type, name) VALUES ($1, $2) RETURNING id",
               {P(type), P(name)})
        .Int(0, 0);
  }
  std::int64_t Relate(std::int64_t from, std::int64_t to, const std::string& type = "depends_on") {
    return Sql("INSERT INTO relations (type, from_ci, to_ci) VALUES ($1, $2, $3) RETURNING id",
               {P(type), P(from), P(to)})
        .Int(0, 0);
  }
  VersionedGraph Load(const VersionedGraph* base = nullptr, bool stored = false) {
    store::DbSession session = pool_->Lease();
    return LoadGraph(session, base != nullptr ? base->graph.get() : nullptr,
                     base != nullptr ? base->snapshot : "", stored);
  }
  // The graph a full read of the database gives now.
  GraphContents Truth() {
    VersionedGraph full = Load();
    EXPECT_EQ(full.kind, Kind::kFull);
    return full.graph->Contents();
  }
  std::unique_ptr<store::DbPool> pool_;
};

TEST_F(GraphLoads, AnUpdateReadsOnlyWhatChangedAndEqualsAFullRead) {
  std::vector<std::int64_t> cis;
  for (int i = 0; i < 12; ++i) cis.push_back(Ci("s" + std::to_string(i)));
  std::vector<std::int64_t> rels;
  for (int i = 1; i < 12; ++i) rels.push_back(Relate(cis[i], cis[i - 1]));
  // A transaction that wrote before the base graph was read and commits after it: its rows
  // are invisible to the base snapshot whatever their ids and timestamps say.
  store::DbPool other(dsn_, 1);
  store::DbSession open = other.Lease();
  Query(open, "BEGIN");
  const std::int64_t late = Query(open,
                                  "INSERT INTO configuration_items (type, name) VALUES "
                                  "('server', 'late') RETURNING id")
                                .Int(0, 0);
  Query(open, "INSERT INTO relations (type, from_ci, to_ci) VALUES ('runs_on', $1, $2)",
        {P(late), P(cis[0])});

  VersionedGraph base = Load();
  ASSERT_EQ(base.kind, Kind::kFull);
  EXPECT_FALSE(base.graph->Find(late));
  Query(open, "COMMIT");
  // Every kind of write the graph cares about.
  Sql("UPDATE configuration_items SET name = 'renamed', status = 'maintenance' WHERE id = $1",
      {P(cis[3])});
  Sql("UPDATE configuration_items SET min_healthy = 2 WHERE id = $1", {P(cis[4])});
  Sql("DELETE FROM relations WHERE id = $1", {P(rels[5])});
  Sql("UPDATE relations SET to_ci = $2 WHERE id = $1", {P(rels[6]), P(cis[0])});
  Sql("DELETE FROM relations WHERE from_ci = $1 OR to_ci = $1", {P(cis[11])});
  Sql("DELETE FROM configuration_items WHERE id = $1", {P(cis[11])});
  const std::int64_t fresh = Ci("fresh", "application");
  Relate(fresh, cis[2]);

  VersionedGraph updated = Load(&base);
  EXPECT_EQ(updated.kind, Kind::kUpdated);
  EXPECT_LE(updated.changes, 12U);  // the rows written since, not the estate
  ASSERT_TRUE(updated.graph);
  EXPECT_EQ(Sorted(updated.graph->Contents()), Sorted(Truth()));
  EXPECT_TRUE(updated.graph->Find(late));
  EXPECT_EQ(updated.graph->Find(cis[3])->name, "renamed");

  // Nothing the graph holds changed: no rebuild.
  Sql("UPDATE configuration_items SET attributes = '{\"memory_mb\": 4}' WHERE id = $1",
      {P(cis[1])});
  VersionedGraph again = Load(&updated);
  EXPECT_EQ(again.kind, Kind::kUnchanged);
  EXPECT_FALSE(again.graph);
}

TEST_F(GraphLoads, ANewInstanceStartsFromTheStoredSnapshot) {
  std::vector<std::int64_t> cis;
  for (int i = 0; i < 8; ++i) cis.push_back(Ci("n" + std::to_string(i)));
  for (int i = 1; i < 8; ++i) Relate(cis[i], cis[0], i % 2 == 0 ? "depends_on" : "runs_on");
  EXPECT_EQ(Load(nullptr, true).kind, Kind::kFull);  // nothing stored yet
  VersionedGraph zero = Load();
  Relate(Ci("between"), cis[5]);
  VersionedGraph first = Load();
  {
    store::DbSession session = pool_->Lease();
    ASSERT_TRUE(store::StoreGraphSnapshot(session, *first.graph, first.snapshot));
  }
  EXPECT_EQ(Sql("SELECT cis, relations FROM graph_snapshots").Int(0, 1), 8);
  Sql("UPDATE configuration_items SET name = 'after' WHERE id = $1", {P(cis[2])});
  Relate(Ci("later"), cis[1]);

  VersionedGraph started = Load(nullptr, true);
  EXPECT_EQ(started.kind, Kind::kStored);
  EXPECT_EQ(started.changes, 3U);  // the renamed CI, the new CI and its relation
  EXPECT_EQ(Sorted(started.graph->Contents()), Sorted(Truth()));

  // A second snapshot prunes the log below the first: a graph older than that cannot be
  // brought up to date from the log and is read in full, still right.
  Relate(Ci("more"), cis[3]);
  VersionedGraph second = Load();
  {
    store::DbSession session = pool_->Lease();
    ASSERT_TRUE(store::StoreGraphSnapshot(session, *second.graph, second.snapshot));
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM graph_snapshots").Int(0, 0), 1);
  {
    // An instance late to store an older graph leaves the newer one in place.
    store::DbSession session = pool_->Lease();
    EXPECT_FALSE(store::StoreGraphSnapshot(session, *first.graph, first.snapshot));
    EXPECT_EQ(Sql("SELECT snapshot FROM graph_snapshots").Text(0, 0), second.snapshot);
  }
  Relate(Ci("last"), cis[4]);
  VersionedGraph stale = Load(&started);
  EXPECT_EQ(stale.kind, Kind::kUpdated);  // `started` is not older than the first snapshot
  VersionedGraph ancient = Load(&zero);
  EXPECT_EQ(ancient.kind, Kind::kFull);
  EXPECT_EQ(Sorted(ancient.graph->Contents()), Sorted(Truth()));
  EXPECT_EQ(Load(&first).kind, Kind::kUpdated);  // the log above the first snapshot is kept
  VersionedGraph from_second = Load(&second);
  EXPECT_EQ(from_second.kind, Kind::kUpdated);
  EXPECT_EQ(Sorted(from_second.graph->Contents()), Sorted(Truth()));

  // A snapshot that is not one this version wrote is ignored.
  Sql("UPDATE graph_snapshots SET data = '\\x00'");
  EXPECT_EQ(Load(nullptr, true).kind, Kind::kFull);
  // So is the log after a TRUNCATE.
  VersionedGraph before_truncate = Load();
  Sql("TRUNCATE relations");
  VersionedGraph truncated = Load(&before_truncate);
  EXPECT_EQ(truncated.kind, Kind::kFull);
  EXPECT_EQ(truncated.graph->edge_count(), 0U);
}

TEST_F(GraphLoads, ARunningInstanceStoresItsGraphAgainAfterManyChangesAndPrunesTheLog) {
  const std::int64_t hub = Ci("hub");
  store::GraphCacheOptions options;  // the defaults, but no interval between stores
  options.store_interval = std::chrono::seconds(0);
  options.merge_after = 10000;
  store::GraphCache cache(*pool_, dsn_, options);  // with its listener, which stores graphs
  ASSERT_TRUE(cache.Current()->Find(hub));
  auto stored = [&] {
    SqlResult r = Sql("SELECT snapshot FROM graph_snapshots");
    return r.rows() == 1 ? std::string(r.Text(0, 0)) : std::string();
  };
  auto wait_for = [&](auto&& done) {
    for (int i = 0; i < 400 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return !stored().empty(); })) << "the first full read was not stored";
  const std::string first = stored();
  // A few small writes: applied to the graph, not worth storing it again.
  Relate(Ci("a"), hub);
  cache.Invalidate();
  EXPECT_EQ(cache.Current()->node_count(), 2U);
  EXPECT_EQ(cache.full_loads(), 1U);
  // 25,000 new CIs in one statement: past the threshold, the graph is stored again and the log
  // below the first stored graph is pruned.
  Sql("INSERT INTO configuration_items (type, name) SELECT 'server', 'bulk-' || g FROM "
      "generate_series(1, 25000) g");
  cache.Invalidate();
  EXPECT_EQ(cache.Current()->node_count(), 25002U);
  EXPECT_EQ(cache.full_loads(), 1U);  // updated, not read again
  ASSERT_TRUE(wait_for([&] { return stored() != first && !stored().empty(); }))
      << "the graph was not stored again";
  EXPECT_EQ(Sql("SELECT cis FROM graph_snapshots").Int(0, 0), 25002);
  // The 25,000 changes carried beside the arrays are merged into new ones in the background,
  // and the graph still equals a full read; a write after that is carried again.
  ASSERT_TRUE(wait_for([&] { return cache.merges() >= 1; })) << "the changes were not merged";
  EXPECT_EQ(cache.Current()->delta_size(), 0U);
  EXPECT_EQ(Sorted(cache.Current()->Contents()), Sorted(Truth()));
  const std::int64_t late = Ci("late");
  Relate(late, hub);
  cache.Invalidate();
  EXPECT_TRUE(cache.Current()->Find(late));
  EXPECT_EQ(cache.Current()->delta_size(), 2U);
  graph::ImpactQuery down;
  down.root = hub;
  EXPECT_EQ(cache.Current()->Impact(down).nodes.size(), 3U);  // hub, a, late
  EXPECT_TRUE(Sql("SELECT pruned_below > '0'::xid8 FROM graph_change_horizon").Bool(0, 0));
  EXPECT_EQ(Sql("SELECT count(*) FROM graph_changes WHERE xid < (SELECT pruned_below FROM "
                "graph_change_horizon)")
                .Int(0, 0),
            0);
}

// A bulk import commits batch after batch: a merge or a store that falls due meanwhile waits
// for the writes to pause instead of running after every batch, and runs once they have;
// writes that never pause are merged past merge_after_at_most changes and stored after
// store_wait_at_most all the same.
TEST_F(GraphLoads, AMergeOrAStoreThatFallsDueDuringABurstOfWritesWaitsForThemToPause) {
  const std::int64_t hub = Ci("hub");
  auto stored_cis = [&] {
    SqlResult r = Sql("SELECT cis FROM graph_snapshots");
    return r.rows() == 1 ? r.Int(0, 0) : std::int64_t{-1};
  };
  auto wait_for = [&](auto&& done, std::chrono::milliseconds limit) {
    for (auto end = std::chrono::steady_clock::now() + limit;
         !done() && std::chrono::steady_clock::now() < end;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return done();
  };
  // Writes every 150 ms for `how_long`: a CI related to the hub, each a notification and a
  // load with changes, so a merge and a store are due after each.
  int written = 0;
  auto burst = [&](std::chrono::milliseconds how_long, auto&& during) {
    for (auto end = std::chrono::steady_clock::now() + how_long;
         std::chrono::steady_clock::now() < end;) {
      Relate(Ci("burst-" + std::to_string(++written)), hub);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      during();
    }
  };
  store::GraphCacheOptions options;
  options.store_after = 1;
  options.store_interval = std::chrono::seconds(0);
  options.writes_pause = std::chrono::milliseconds(1500);
  options.store_wait_at_most = std::chrono::seconds(60);
  options.merge_after = 1;
  options.merge_after_at_most = 100000;
  {
    store::GraphCache cache(*pool_, dsn_, options);
    ASSERT_TRUE(cache.Current()->Find(hub));
    ASSERT_TRUE(wait_for([&] { return stored_cis() == 1; }, std::chrono::seconds(15)))
        << "the first full read was not stored once the writes (none) paused";
    bool stored_during = false;
    burst(std::chrono::milliseconds(3000), [&] { stored_during |= stored_cis() != 1; });
    EXPECT_FALSE(stored_during) << "stored while the writes streamed in";
    EXPECT_EQ(stored_cis(), 1);
    EXPECT_EQ(cache.merges(), 0U) << "merged while the writes streamed in";
    EXPECT_GE(cache.Current()->delta_size(), static_cast<std::size_t>(written));
    // The writes paused: the graph as it is now is stored.
    EXPECT_TRUE(wait_for([&] { return stored_cis() == 1 + written; }, std::chrono::seconds(15)))
        << "stored " << stored_cis() << " CIs, not " << 1 + written;
    EXPECT_TRUE(wait_for([&] { return cache.merges() >= 1; }, std::chrono::seconds(15)))
        << "the carried changes were not merged once the writes paused";
    EXPECT_EQ(cache.Current()->delta_size(), 0U);
    EXPECT_EQ(Sorted(cache.Current()->Contents()), Sorted(Truth()));
  }
  // Writes that never pause: stored after store_wait_at_most, merged once the graph carries
  // merge_after_at_most changes.
  options.store_wait_at_most = std::chrono::seconds(1);
  options.merge_after_at_most = 6;
  store::GraphCache cache(*pool_, dsn_, options);
  ASSERT_TRUE(cache.Current()->Find(hub));
  const int before = written;
  bool stored_during = false;
  burst(std::chrono::milliseconds(4000), [&] { stored_during |= stored_cis() > 1 + before; });
  EXPECT_TRUE(stored_during) << "writes that never pause kept the graph from being stored";
  EXPECT_GE(cache.merges(), 1U) << "writes that never pause kept the changes from being merged";
}

// A write whose rows the writer knows is in the graph at once, without a load; when the rows
// change again elsewhere, the notification's load corrects the graph.
TEST_F(GraphLoads, AKnownWriteIsAppliedAtOnceAndCorrectedByTheLog) {
  const std::int64_t a = Ci("a");
  const std::int64_t b = Ci("b");
  graph::ImpactQuery down;
  down.root = b;
  {
    // Without a listener nothing loads in the background: the write is in the graph with no
    // load at all.
    store::GraphCache quiet(*pool_, "");
    ASSERT_TRUE(quiet.Current()->Find(b));
    const std::uint64_t loads = quiet.loads();
    const std::int64_t again = Relate(a, b);  // after the graph above was read
    graph::GraphChanges known;
    known.relation_ids = {again};
    known.relations = {{again, a, b, "depends_on"}};
    quiet.Apply(known);
    EXPECT_EQ(quiet.Current()->Impact(down).nodes.size(), 2U);  // b, and a which needs it
    EXPECT_EQ(quiet.loads(), loads);
    Sql("DELETE FROM relations WHERE id = $1", {P(again)});
  }
  // With its listener: a row applied from the writer and changed since by another writer is
  // brought back in line by the notification's load.
  const std::int64_t r2 = Relate(a, b);
  store::GraphCache cache(*pool_, dsn_);
  graph::GraphChanges applied;
  applied.relation_ids = {r2};
  applied.relations = {{r2, a, b, "depends_on"}};
  cache.Apply(applied);
  EXPECT_EQ(cache.Current()->Impact(down).nodes.size(), 2U);
  Sql("DELETE FROM relations WHERE id = $1", {P(r2)});
  bool gone = false;
  for (int i = 0; i < 400 && !gone; ++i) {
    gone = cache.Current()->Impact(down).nodes.size() == 1;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(gone) << "the deletion never reached the graph";
  EXPECT_EQ(Sorted(cache.CurrentUpToDate()->Contents()), Sorted(Truth()));
}

}  // namespace
}  // namespace cmdb::testing
