#pragma once
// Discovery runs in PostgreSQL: queued with their payload, executed by any instance (see
// jobs/discovery_executor.hpp), with progress, counts, timings and the decision log in blocks.
// A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "model/discovery_run.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// What executing a run starts from.
struct RunInput {
  std::int64_t source_id = 0;
  bool dry_run = false;
  std::string content_type;      // "" when the run has no body
  model::Timestamp observed_at;  // when the run started: the observations' time
  std::string payload;           // the body's bytes
};

class DiscoveryRunRepository {
 public:
  explicit DiscoveryRunRepository(DbSession& db) : db_(db) {}

  // Queues a run of `source_id` with its body (kept as bytes). kNotFound when the source
  // does not exist.
  model::DiscoveryRun Enqueue(std::int64_t source_id, bool dry_run, const std::string& content_type,
                              const std::string& payload);
  std::optional<model::DiscoveryRun> Find(std::int64_t id);
  // Runs with id > `after`, optionally of one source, oldest first, at most `limit`.
  std::vector<model::DiscoveryRun> List(std::optional<std::int64_t> source_id, std::int64_t after,
                                        int limit);
  // Up to `max_blocks` blocks of the run's decision log holding observations after
  // `after_seq`, of one outcome when given, in order.
  std::vector<model::DecisionBlock> DecisionBlocks(std::int64_t run_id, std::int64_t after_seq,
                                                   const std::optional<std::string>& outcome,
                                                   int max_blocks);

  // Queues a run of every source whose interval has come round and that has none waiting.
  void QueueScheduled();

  // --- while a run executes ---
  // The run's source, mode, content type, start time and payload. kNotFound when it vanished.
  RunInput Input(std::int64_t run_id);
  void ReportProgress(std::int64_t run_id, std::int64_t done, std::int64_t total);
  void WriteDecisionBlocks(std::int64_t run_id, const std::vector<model::DecisionBlock>& blocks);
  // Marks the run succeeded with its counts; the payload is dropped.
  void Succeed(std::int64_t run_id, const boost::json::object& counts, std::int64_t observed);
  void SetTimings(std::int64_t run_id, const boost::json::object& timings);
  // Marks the run failed with `error`; the payload is dropped.
  void Fail(std::int64_t run_id, const std::string& error);
  // How many CIs the run registered (0 for a dry run or one not finished).
  std::int64_t CreatedCis(std::int64_t run_id);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
