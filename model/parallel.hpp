#pragma once
// Data-parallel loops for the large, order-independent parts of a discovery run (candidate
// keys, draft decisions) and of a bulk import (reading, validating and keying its rows).
// Plain threads: a run or an import is one request among few, seconds long, so there is no
// pool to share.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <thread>
#include <vector>

namespace cmdb::model {

// Calls body(i) for every i < n, `chunk` indexes at a time, on up to hardware_concurrency
// threads (this one among them); progress(done), when set, is called on this thread only,
// every few thousand. The first exception thrown by `body` is rethrown here once every
// thread has stopped.
template <typename Body>
void ParallelChunks(std::size_t n, std::size_t chunk, const Body& body,
                    const std::function<void(std::size_t)>& progress) {
  const std::size_t step = std::max<std::size_t>(1, chunk);
  constexpr std::size_t kProgressEvery = 5000;
  const std::size_t chunks = (n + step - 1) / step;
  const auto threads =
      std::min<std::size_t>({std::max(1U, std::thread::hardware_concurrency()), 8, chunks});
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<bool> failed{false};
  auto work = [&](bool reports) {
    try {
      std::size_t reported = 0;
      for (std::size_t c = next++; c < chunks && !failed; c = next++) {
        const std::size_t begin = c * step;
        const std::size_t end = std::min(n, begin + step);
        for (std::size_t i = begin; i < end; ++i) body(i);
        const std::size_t now = done += end - begin;
        if (reports && progress && now - reported >= kProgressEvery) progress(reported = now);
      }
    } catch (...) {
      failed = true;
      throw;
    }
  };
  std::vector<std::future<void>> helpers;
  for (std::size_t t = 1; t < threads; ++t) {
    helpers.push_back(std::async(std::launch::async, work, false));
  }
  std::exception_ptr error;
  try {
    work(true);
  } catch (...) {
    error = std::current_exception();
  }
  for (auto& h : helpers) {
    try {
      h.get();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// ParallelChunks over many small, order-independent steps (rows, observations).
template <typename Body>
void ParallelFor(std::size_t n, const Body& body,
                 const std::function<void(std::size_t)>& progress) {
  ParallelChunks(n, 256, body, progress);
}

// A few large, independent tasks (one index each), handed out as threads become free.
template <typename Body>
void ParallelTasks(std::size_t n, const Body& body) {
  ParallelChunks(n, 1, body, {});
}

}  // namespace cmdb::model
