#pragma once
// Reads of one CI by id for many concurrent requests at once (GET /api/v1/cis/{id} of the
// present). While a query is at PostgreSQL, the reads that arrive queue up and go together in
// the next one (`WHERE id = ANY($1)`), so a burst of N reads costs one round trip, and one
// wake-up of each side, instead of N: on this kind of machine a wake-up costs more than the
// lookup (docs/benchmarks.md, "GET by id"). A lone read goes out at once; nothing waits for
// a batch to fill.
//
// Thread-safe. Each read is an autocommit query that starts after Read() was called, so it
// sees every write committed before the request arrived, as a blocking read would.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/configuration_item.hpp"

namespace cmdb::store {

class DbPool;

class BatchedCiReader {
 public:
  // The CI, nullopt when no CI has that id, or the failure (a model::Error) of the query.
  using Done =
      std::function<void(std::optional<model::ConfigurationItem> ci, std::exception_ptr error)>;

  // Opens `threads` connections to `connection_string`, one per reader thread (so a batch can
  // be built while another is at PostgreSQL). Throws Error{kUnavailable} when the database
  // cannot be reached. At most `max_batch` ids go in one query.
  BatchedCiReader(const std::string& connection_string, std::size_t threads,
                  std::size_t max_batch = 256);
  ~BatchedCiReader();
  BatchedCiReader(const BatchedCiReader&) = delete;
  BatchedCiReader& operator=(const BatchedCiReader&) = delete;

  // Queues a read; `done` runs once, on a reader thread. false (and `done` never runs) once
  // Stop() was called.
  bool Read(model::CiId id, Done done);

  // Answers what is queued, then stops the threads. Idempotent.
  void Stop();

  // Queries sent and reads answered since the start (their ratio is the mean batch size).
  std::size_t batches() const;
  std::size_t reads() const;

  // Its own sessions (for the DatabaseSupervisor, which marks them down and up).
  DbPool& pool() { return *pool_; }

 private:
  struct Pending {
    model::CiId id;
    Done done;
  };
  void Run();
  void Answer(std::vector<Pending>& batch);

  std::unique_ptr<DbPool> pool_;
  std::size_t max_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::size_t batches_ = 0;    // guarded by mutex_
  std::size_t reads_ = 0;      // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace cmdb::store
