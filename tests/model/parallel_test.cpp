#include "model/parallel.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

TEST(Parallel, EveryIndexRunsExactlyOnceWhateverTheChunk) {
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{256}}) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{10'001}}) {
      std::vector<std::atomic<int>> seen(n);
      ParallelChunks(n, chunk, [&](std::size_t i) { ++seen[i]; }, {});
      for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << chunk << " " << n;
    }
  }
}

// A few long tasks are spread over the threads instead of running as one chunk.
TEST(Parallel, FewTasksRunOnSeveralThreads) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one core";
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::atomic<int> running{0};
  std::atomic<int> overlapped{0};
  ParallelTasks(4, [&](std::size_t) {
    if (++running > 1) ++overlapped;
    {
      std::lock_guard<std::mutex> lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    --running;
  });
  EXPECT_GE(threads.size(), 2U);
  EXPECT_GT(overlapped.load(), 0);
}

TEST(Parallel, TheFirstFailureIsRethrownAfterEveryThreadStopped) {
  std::atomic<int> finished{0};
  EXPECT_THROW(ParallelTasks(8,
                             [&](std::size_t t) {
                               if (t == 2) throw std::runtime_error("task 2");
                               std::this_thread::sleep_for(std::chrono::milliseconds(5));
                               ++finished;
                             }),
               std::runtime_error);
  // Nothing runs after the call returned.
  const int at_return = finished.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(finished.load(), at_return);
}

}  // namespace
}  // namespace cmdb::model
