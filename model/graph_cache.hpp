#pragma once
// The in-memory dependency graph of one cmdb instance and what keeps it current. The graph is
// loaded from PostgreSQL at start (by the listener thread) or on first use, and reloaded when
// it is out of date: Invalidate() after
// this instance's own writes (synchronously, so the writer's next read sees its write), and
// a LISTEN on channel cmdb_graph (see 0003_graph_notifications.sql) for writes committed by
// other instances. Thread-safe.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "model/dependency_graph.hpp"
#include "model/timestamp.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

class DbPool;

// Loads every CI and relation (or those valid at `as_of`, from history) into a graph.
DependencyGraph LoadDependencyGraph(soci::session& sql, std::optional<Timestamp> as_of = {});

class GraphCache {
 public:
  // `listen_dsn`: a connection string for the notification listener; empty: no listener
  // (single instance; tests).
  GraphCache(DbPool& pool, std::string listen_dsn);
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // The current graph, reloading it first when a write happened since it was loaded.
  // Throws what the database throws.
  std::shared_ptr<const DependencyGraph> Current();

  // Marks the graph out of date (after this instance committed a write).
  void Invalidate() {
    changed_at_.store(Timestamp::Now().micros, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

  // When this instance last learnt of a write (or started). The current graph is the graph as
  // of any later time, up to the notification latency of writes by other instances; as-of
  // queries for earlier times must read history.
  Timestamp changed_at() const { return Timestamp{changed_at_.load(std::memory_order_acquire)}; }

 private:
  void Listen();

  DbPool& pool_;
  std::string listen_dsn_;
  std::atomic<std::uint64_t> generation_{1};
  std::atomic<std::int64_t> changed_at_{Timestamp::Now().micros};
  std::mutex mutex_;                              // serialises reloads
  std::shared_ptr<const DependencyGraph> graph_;  // guarded by mutex_
  std::uint64_t graph_generation_ = 0;            // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread listener_;
};

}  // namespace cmdb::model
