// Graphs of past instants: kept when their instant is final, shared while being built, and
// refused beyond the concurrent-build bound. The builder is replaced by one that counts and
// can be held; finality and sessions are a real PostgreSQL's.

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "model/error.hpp"
#include "store/ci_repository.hpp"
#include "store/db_pool.hpp"
#include "store/historical_graphs.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

using model::Timestamp;
using store::HistoricalGraphs;

// A one-node graph whose node id tells which build made it.
HistoricalGraphs::GraphPtr NumberedGraph(int build) {
  std::vector<graph::GraphNode> nodes{{build, "server", "n" + std::to_string(build), "active", 0}};
  return std::make_shared<const graph::DependencyGraph>(
      graph::DependencyGraph::Build(std::move(nodes), {}, {}));
}

// For requests that must not need a connection.
store::DbSession& NoSession() { throw std::logic_error("asked for a database session"); }

Timestamp SecondsAgo(int seconds) {
  return Timestamp{Timestamp::Now().micros - std::int64_t{seconds} * 1000000};
}

class HistoricalGraphsTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    pool_ = std::make_unique<store::DbPool>(dsn_, 4);
  }
  void TearDown() override {
    pool_.reset();
    PgTest::TearDown();
  }
  // A builder that counts its calls; while `hold_` is set, it waits for `release_`.
  HistoricalGraphs::Builder CountingBuilder() {
    return [this](store::DbSession&, Timestamp) {
      const int build = ++builds_;
      if (hold_) {
        entered_.set_value();
        release_.get_future().wait();
      }
      return NumberedGraph(build);
    };
  }
  std::unique_ptr<store::DbPool> pool_;
  std::atomic<int> builds_{0};
  bool hold_ = false;
  std::promise<void> entered_;
  std::promise<void> release_;
};

TEST_F(HistoricalGraphsTest, KeepsRecentFinalInstantsLeastRecentlyUsedOut) {
  HistoricalGraphs graphs({.capacity = 2, .max_builds = 2}, CountingBuilder());
  store::DbSession db = pool_->Lease();
  const Timestamp a = SecondsAgo(30);
  const Timestamp b = SecondsAgo(20);
  const Timestamp c = SecondsAgo(10);
  HistoricalGraphs::GraphPtr first = graphs.At(db, a);
  EXPECT_EQ(graphs.At(db, a), first);  // the same graph, not rebuilt
  EXPECT_EQ(graphs.builds(), 1U);
  EXPECT_EQ(graphs.hits(), 1U);
  graphs.At(db, b);
  graphs.At(db, a);  // a is now the most recently used
  graphs.At(db, c);  // evicts b
  EXPECT_EQ(graphs.builds(), 3U);
  EXPECT_EQ(graphs.At(db, a), first);
  graphs.At(db, b);
  EXPECT_EQ(graphs.builds(), 4U);
}

TEST_F(HistoricalGraphsTest, AnInstantIsNotKeptWhileATransactionBegunBeforeItIsOpen) {
  HistoricalGraphs graphs({.capacity = 4, .max_builds = 2}, CountingBuilder());
  store::DbSession db = pool_->Lease();
  store::DbSession writer = pool_->Lease();
  const Timestamp before = SecondsAgo(5);
  Query(writer, "BEGIN");
  Query(writer, "SELECT 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const Timestamp during = Timestamp::Now();
  // The open transaction may still commit history stamped before `during`, not before
  // `before`.
  EXPECT_TRUE(store::HistoryIsFinalAt(db, before));
  EXPECT_FALSE(store::HistoryIsFinalAt(db, during));
  graphs.At(db, during);
  graphs.At(db, during);
  EXPECT_EQ(graphs.builds(), 2U);
  Query(writer, "COMMIT");
  EXPECT_TRUE(store::HistoryIsFinalAt(db, during));
  graphs.At(db, during);
  graphs.At(db, during);
  EXPECT_EQ(graphs.builds(), 3U);
  EXPECT_EQ(graphs.hits(), 1U);
}

TEST_F(HistoricalGraphsTest, ConcurrentBuildsAreBoundedAndTheSameInstantWaits) {
  HistoricalGraphs graphs({.capacity = 4, .max_builds = 1, .retry_after = std::chrono::seconds{7}},
                          CountingBuilder());
  hold_ = true;
  const Timestamp a = SecondsAgo(30);
  const Timestamp b = SecondsAgo(20);
  std::future<HistoricalGraphs::GraphPtr> building = std::async(std::launch::async, [&] {
    store::DbSession db = pool_->Lease();
    return graphs.At(db, a);
  });
  entered_.get_future().wait();
  store::DbSession db = pool_->Lease();
  try {
    graphs.At(db, b);
    ADD_FAILURE() << "a second build was started beyond max_builds";
  } catch (const model::Error& e) {
    EXPECT_EQ(e.code(), model::ErrorCode::kUnavailable);
    EXPECT_EQ(e.retry_after(), std::chrono::seconds{7});
  }
  EXPECT_EQ(graphs.refusals(), 1U);
  // Waits for the running build, without a connection of its own.
  std::future<HistoricalGraphs::GraphPtr> waiting =
      std::async(std::launch::async, [&] { return graphs.At(a, NoSession); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release_.set_value();
  HistoricalGraphs::GraphPtr built = building.get();
  EXPECT_EQ(waiting.get(), built);
  EXPECT_EQ(graphs.builds(), 1U);
  EXPECT_EQ(graphs.At(a, NoSession), built);  // kept: no connection needed either
  hold_ = false;
  graphs.At(db, b);  // the bound is free again
  EXPECT_EQ(graphs.builds(), 2U);
}

TEST_F(HistoricalGraphsTest, AFailedBuildIsNeitherKeptNorBlocking) {
  int calls = 0;
  HistoricalGraphs graphs({.capacity = 4, .max_builds = 1},
                          [&calls](store::DbSession&, Timestamp) -> HistoricalGraphs::GraphPtr {
                            if (++calls == 1) {
                              throw model::Error(model::ErrorCode::kUnavailable, "lost it");
                            }
                            return NumberedGraph(calls);
                          });
  store::DbSession db = pool_->Lease();
  const Timestamp a = SecondsAgo(30);
  EXPECT_THROW(graphs.At(db, a), model::Error);
  HistoricalGraphs::GraphPtr second = graphs.At(db, a);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->Find(2).has_value());
  EXPECT_EQ(graphs.At(db, a), second);
}

TEST_F(HistoricalGraphsTest, TheRealBuilderReadsHistory) {
  HistoricalGraphs graphs({});
  store::DbSession db = pool_->Lease();
  const Timestamp empty = Timestamp::Now();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  model::ConfigurationItem draft;
  draft.type = "server";
  draft.name = "then-and-now";
  const model::ConfigurationItem ci = store::CiRepository(db).Create(draft, {});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const Timestamp after = Timestamp::Now();
  EXPECT_EQ(graphs.At(db, empty)->node_count(), 0U);
  HistoricalGraphs::GraphPtr now = graphs.At(db, after);
  ASSERT_TRUE(now->Find(ci.id).has_value());
  EXPECT_EQ(now->Find(ci.id)->name, "then-and-now");
}

}  // namespace
}  // namespace cmdb::testing
