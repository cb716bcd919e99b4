#include "store/database_supervisor.hpp"

#include <gtest/gtest.h>

namespace cmdb::store {
namespace {

using std::chrono::seconds;

TEST(RestartBackoff, RestartsAtOnceThenDoublesUpToTheCap) {
  RestartBackoff backoff(seconds{1}, seconds{8}, seconds{300});
  const auto t0 = RestartBackoff::Clock::time_point{} + seconds{1000};
  EXPECT_EQ(backoff.NextDelay(t0), seconds{0});  // the first crash: restarted at once
  // Failed attempts, or crashes soon after each restart, wait longer each time.
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{1}), seconds{1});
  backoff.Recovered(t0 + seconds{2});
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{60}), seconds{2});  // healthy only 58 s
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{61}), seconds{4});
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{62}), seconds{8});
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{63}), seconds{8});  // capped
  EXPECT_EQ(backoff.streak(), 6);
}

TEST(RestartBackoff, AStableStretchStartsOver) {
  RestartBackoff backoff(seconds{1}, seconds{60}, seconds{300});
  const auto t0 = RestartBackoff::Clock::time_point{} + seconds{1000};
  EXPECT_EQ(backoff.NextDelay(t0), seconds{0});
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{1}), seconds{1});
  backoff.Recovered(t0 + seconds{3});
  // Up for five minutes and more: the next crash is a first crash again.
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{303}), seconds{0});
  EXPECT_EQ(backoff.streak(), 1);
  // A recovery that is not followed by a healthy stretch does not reset it: attempts without a
  // Recovered() in between keep counting.
  EXPECT_EQ(backoff.NextDelay(t0 + seconds{2000}), seconds{1});
}

TEST(DatabaseHealth, NamesAreTheReadyEndpointsWords) {
  EXPECT_STREQ(HealthName(DatabaseHealth::kUp), "ok");
  EXPECT_STREQ(HealthName(DatabaseHealth::kDown), "down");
  EXPECT_STREQ(HealthName(DatabaseHealth::kRestarting), "restarting");
}

}  // namespace
}  // namespace cmdb::store
