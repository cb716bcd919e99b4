#include "discovery/sightings.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

#include <gtest/gtest.h>

namespace cmdb::discovery {
namespace {

// A source's sightings as the tables hold them, changed as the run executor writes them.
struct Tables {
  SightingBlocks blocks;
  std::map<std::int64_t, int> rows;  // closed streaks: CI -> the run that last saw it
  int latest = 0;                    // the source's latest writing run

  void Apply(const std::vector<std::int64_t>& seen, int run) {
    std::vector<std::int64_t> closed_rows;
    for (const auto& [ci, last] : rows) closed_rows.push_back(ci);
    const SightingChanges changes = DiffSightings(blocks, closed_rows, seen);
    for (std::int64_t ci : changes.closed) rows[ci] = latest;
    for (std::int64_t ci : changes.reopened) rows.erase(ci);
    for (std::int64_t block : changes.erase) blocks.erase(block);
    for (const auto& [block, bits] : changes.write) {
      EXPECT_TRUE(blocks.emplace(block, bits).second) << "block " << block << " written twice";
      EXPECT_TRUE(bits.any()) << "empty block " << block;
    }
    latest = run;
  }

  // The run that last saw `ci` according to the tables, 0 for never.
  int LastSeen(std::int64_t ci) const {
    auto b = blocks.find(ci >> kSightingBlockShift);
    const bool bit = b != blocks.end() &&
                     b->second.test(static_cast<std::size_t>(ci & (kSightingBlockSize - 1)));
    auto r = rows.find(ci);
    EXPECT_FALSE(bit && r != rows.end()) << "CI " << ci << " has a bit and a row";
    if (bit) return latest;
    return r == rows.end() ? 0 : r->second;
  }
};

TEST(Sightings, EveryCiIsLastSeenByTheLatestRunThatSawIt) {
  std::mt19937_64 random(20261128);
  // CI ids over four blocks, one of them far away, edges of blocks included.
  std::vector<std::int64_t> universe;
  for (std::int64_t ci = 1; ci < 3 * kSightingBlockSize; ci += 7) universe.push_back(ci);
  universe.push_back(kSightingBlockSize - 1);
  universe.push_back(kSightingBlockSize);
  universe.push_back(std::int64_t{1} << 40);
  std::sort(universe.begin(), universe.end());
  universe.erase(std::unique(universe.begin(), universe.end()), universe.end());

  Tables tables;
  std::map<std::int64_t, int> expected;  // CI -> the last run whose `seen` held it
  for (int run = 1; run <= 60; ++run) {
    // Runs that see everything, nothing, or a random share of the CIs.
    const double share = run % 10 == 0  ? 0.0
                         : run % 7 == 0 ? 1.0
                                        : static_cast<double>(random() % 100) / 100.0;
    std::vector<std::int64_t> seen;
    for (std::int64_t ci : universe) {
      if (std::uniform_real_distribution<double>(0, 1)(random) < share) seen.push_back(ci);
    }
    tables.Apply(seen, run);
    for (std::int64_t ci : seen) expected[ci] = run;
    for (std::int64_t ci : universe) {
      const auto e = expected.find(ci);
      ASSERT_EQ(tables.LastSeen(ci), e == expected.end() ? 0 : e->second)
          << "CI " << ci << " after run " << run;
    }
  }
}

TEST(Sightings, ARunWritesOnlyTheBlocksThatChange) {
  const std::vector<std::int64_t> seen = {1, 2, kSightingBlockSize + 5, 5 * kSightingBlockSize};
  SightingChanges first = DiffSightings({}, {}, seen);
  EXPECT_EQ(first.write.size(), 3U);  // three blocks, however many CIs in each
  EXPECT_TRUE(first.erase.empty());
  EXPECT_TRUE(first.closed.empty());
  EXPECT_TRUE(first.reopened.empty());

  // The same CIs again: nothing to write.
  SightingChanges again = DiffSightings(first.write, {}, seen);
  EXPECT_TRUE(again.write.empty());
  EXPECT_TRUE(again.erase.empty());
  EXPECT_TRUE(again.closed.empty());

  // CI 2 missed, a CI seen again that had a closed row: only block 0 is rewritten.
  SightingChanges next =
      DiffSightings(first.write, {3, 7}, {1, 3, kSightingBlockSize + 5, 5 * kSightingBlockSize});
  EXPECT_EQ(next.closed, std::vector<std::int64_t>{2});
  EXPECT_EQ(next.reopened, std::vector<std::int64_t>{3});
  EXPECT_EQ(next.erase, std::vector<std::int64_t>{0});
  ASSERT_EQ(next.write.size(), 1U);
  EXPECT_TRUE(next.write.at(0).test(1));
  EXPECT_TRUE(next.write.at(0).test(3));
  EXPECT_EQ(next.write.at(0).count(), 2U);

  // Nothing seen: every block goes, every CI of them is closed, in order.
  SightingChanges none = DiffSightings(first.write, {}, {});
  EXPECT_EQ(none.closed, seen);
  EXPECT_EQ(none.erase, (std::vector<std::int64_t>{0, 1, 5}));
  EXPECT_TRUE(none.write.empty());
}

}  // namespace
}  // namespace cmdb::discovery
