#pragma once
// The server's audit log lines, written in the background: a request hands its line over
// (Append) and answers without waiting for a second round trip and commit; a thread of the
// writer's own writes whatever has queued up, as one statement per batch, in the order the
// lines were appended. At 1,000 writes per second that halves the statements PostgreSQL runs
// for them (docs/benchmarks.md, "The graph follows writes").
//
// What this changes for an auditor: a line reaches the table a round trip after its request
// answered instead of before (readers of the log through this instance never notice: the
// audit-log route calls Flush() first); a cmdb crash loses the lines still queued — as a
// crash between a write and its line did before — and a stop writes them first. While
// PostgreSQL is away the writer keeps its batch and retries for a while (the supervisor
// restarts an embedded one meanwhile); past that the batch is dropped, logged and counted.
// Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "model/access.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct AuditLogWriterOptions {
  std::size_t max_queued = 20000;  // Append waits while this many lines are queued
  std::size_t max_batch = 1000;    // lines per statement
  int attempts = 25;  // per batch, 200 ms apart, before it is dropped (2 once stopping)
};

class AuditLogWriter {
 public:
  explicit AuditLogWriter(DbPool& pool, AuditLogWriterOptions options = {});
  ~AuditLogWriter();  // writes the lines queued (within the attempts), then returns
  AuditLogWriter(const AuditLogWriter&) = delete;
  AuditLogWriter& operator=(const AuditLogWriter&) = delete;

  // Queues the line; waits only while max_queued lines are queued already.
  void Append(model::AuditEntry entry);
  // Returns once every line appended before the call is written (or dropped).
  void Flush();

  std::uint64_t written() const;
  std::uint64_t dropped() const;

 private:
  void Run();
  // Writes the batch, trying `attempts` times 200 ms apart while PostgreSQL is away; returns
  // how many lines it wrote.
  std::size_t Write(const std::vector<model::AuditEntry>& batch, int attempts);

  DbPool& pool_;
  AuditLogWriterOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // lines queued, or stopping
  std::condition_variable done_;  // a batch finished, or room in the queue
  std::deque<model::AuditEntry> queue_;
  std::uint64_t appended_ = 0;  // lines ever appended
  std::uint64_t finished_ = 0;  // lines written or dropped, in order
  std::uint64_t written_ = 0;
  std::uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cmdb::store
