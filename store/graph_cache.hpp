#pragma once
// The in-memory dependency graph of one cmdb instance and what keeps it current. The graph is
// loaded from PostgreSQL at start (by the listener thread) or on first use, and brought up to
// date when it is out of date:
// - after this instance's own writes (Invalidate()), synchronously: the writer's next read
//   waits for the update and sees its write;
// - after writes committed by other instances (a LISTEN on channel cmdb_graph, see
//   0003_graph_notifications.sql), in the background on the listener thread: readers keep the
//   previous graph until the new one is ready. The echo of this instance's own writes finds
//   nothing new and costs one small query.
// An update re-reads only the CIs and relations changed since the graph's PostgreSQL snapshot
// (the change log of 0010_graph_changes_and_snapshots.sql) and applies them beside the arrays
// of the graph it has (DependencyGraph::WithChanges), in time proportional to the changes.
// Once GraphCacheOptions::merge_after changes are carried that way, a maintenance thread merges
// them into new arrays in the background (readers keep the graph meanwhile) and catches up with the
// writes made during the merge; while writes stream in, it waits for them to pause (see
// writes_pause). A start-up begins from the snapshot an earlier instance stored,
// plus the changes since. Both tables are read only when there is no such starting point.
// Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "graph/dependency_graph.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct GraphCacheOptions {
  // false: every update rebuilds the arrays (the benchmarks' baseline).
  bool incremental = true;
  // Changes carried beside the arrays before a merge into new ones (each merge rebuilds the
  // arrays: about a second of a core at 4M relations).
  std::size_t merge_after = 50000;
  // The graph is stored again for the next instance to start from once `store_after` changes
  // were applied since the stored one, and `store_interval` has passed since this instance
  // last stored it (a store writes the whole graph: ~150 MB at 4M relations); past
  // `store_after_at_most` changes it is stored whatever the interval (a start-up reads at most
  // 200,000 changes from the log before it reads the tables instead).
  std::size_t store_after = 20000;
  std::chrono::seconds store_interval{120};
  std::size_t store_after_at_most = 150000;
  // A merge or a store that falls due while writes stream in (one seen by this instance less
  // than `writes_pause` ago) waits for them to pause: a bulk import of a million relations
  // would otherwise merge after every batch of 50,000 and store the whole graph after every
  // 150,000, each seconds of a core taken from the import. A merge waits until the graph
  // carries `merge_after_at_most` changes (traversals read them beside the arrays meanwhile;
  // at 100,000 the arrays and the delta take 69 bytes per relation at 4.1M relations), a
  // store at most `store_wait_at_most` (a start-up meanwhile replays more of the log, or reads
  // the tables past 200,000 changes).
  std::chrono::milliseconds writes_pause{2000};
  std::size_t merge_after_at_most = 100000;
  std::chrono::seconds store_wait_at_most{60};
};

class GraphCache {
 public:
  // `listen_dsn`: a connection string for the notification listener; empty: no listener
  // (single instance; tests).
  GraphCache(DbPool& pool, std::string listen_dsn, GraphCacheOptions options = {});
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // The current graph: reloaded first when this instance wrote since it was loaded; writes of
  // other instances show once the background reload they trigger finishes (for a large
  // estate, seconds after their notification). Throws what the database throws.
  std::shared_ptr<const graph::DependencyGraph> Current();

  // The current graph including every write this instance has been notified of: waits for (or
  // does) the reload a notification asked for. For callers that must know exactly which
  // changes their graph holds (see changed_at()).
  std::shared_ptr<const graph::DependencyGraph> CurrentUpToDate();

  // A write this instance committed whose rows the writer knows (a relation created or
  // deleted, a CI created or changed): applied to the published graph at once, beside its
  // arrays, without reading the change log on the writer's request path. The next load reads
  // the same rows from the log again (applying them changes nothing), which also corrects the
  // graph should another instance have changed those rows in between.
  void Apply(graph::GraphChanges changes);

  // Marks the graph out of date (after this instance committed a write).
  void Invalidate() {
    changed_at_.store(model::Timestamp::Now().micros, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

  // When this instance last learnt of a write (or started). The graph CurrentUpToDate()
  // returns is the graph as of any later time, up to the notification latency of writes by
  // other instances; as-of queries for earlier times must read history.
  model::Timestamp changed_at() const {
    return model::Timestamp{changed_at_.load(std::memory_order_acquire)};
  }

  // Loads that produced a new graph so far, how many of them read both tables, and how long
  // the latest took (for /metrics).
  std::uint64_t loads() const { return loads_.load(std::memory_order_relaxed); }
  std::uint64_t full_loads() const { return full_loads_.load(std::memory_order_relaxed); }
  double last_load_seconds() const { return last_load_seconds_.load(std::memory_order_relaxed); }
  // Merges of the carried changes into new arrays so far (for /metrics).
  std::uint64_t merges() const { return merges_.load(std::memory_order_relaxed); }

 private:
  void Listen();
  // Merges carried changes and stores snapshots when due: seconds of work for a large estate,
  // on a thread of its own so that the listener keeps applying notifications meanwhile.
  void Maintain();
  // Loads the graph (load_mutex_ held) and publishes it with the generations it covers: the
  // published graph plus the changes since, or `base` (read under `base_snapshot`) plus the
  // changes since when given.
  void Load(DbSession& session, std::shared_ptr<const graph::DependencyGraph> base = nullptr,
            const std::string& base_snapshot = {});
  // The published graph and the snapshot it was read under.
  std::pair<std::shared_ptr<const graph::DependencyGraph>, std::string> PublishedWithSnapshot();
  // Whether no write was seen for options_.writes_pause.
  bool WritesPaused() const;
  // Merges the published graph's carried changes into new arrays, when a load asked for it
  // and the writes paused (or the graph carries options_.merge_after_at_most changes).
  void MergeIfDue();
  // Asks for the graph to be stored for the next instance to start from.
  void StoreSnapshotLater();
  // Stores the graph for the next instance to start from, when a load asked for it and the
  // writes paused (or it waited long enough).
  void StoreSnapshotIfDue();
  // The published graph when it covers `own` (and `remote`) generations, else null.
  std::shared_ptr<const graph::DependencyGraph> Published(std::uint64_t own, std::uint64_t remote);

  DbPool& pool_;
  std::string listen_dsn_;
  GraphCacheOptions options_;
  std::atomic<std::uint64_t> generation_{1};         // this instance's writes
  std::atomic<std::uint64_t> remote_generation_{0};  // notifications received
  std::atomic<std::int64_t> changed_at_{model::Timestamp::Now().micros};
  // Serialises loads and Apply. Taken with a session already leased, never the other way
  // round: a writer applies its write while its handler still holds its session, so a load
  // that held the mutex while waiting for a session could wait for that writer forever.
  std::mutex load_mutex_;
  std::mutex graph_mutex_;  // guards the three below; held only to read or swap them
  std::shared_ptr<const graph::DependencyGraph> graph_;
  std::string graph_snapshot_;  // the pg_snapshot graph_ was read under
  std::uint64_t graph_generation_ = 0;
  std::uint64_t graph_remote_generation_ = 0;
  std::atomic<std::uint64_t> loads_{0};
  std::atomic<std::uint64_t> full_loads_{0};
  std::atomic<bool> snapshot_due_{false};  // store graph_ for the next instance to start from
  std::atomic<std::int64_t> snapshot_due_since_{0};  // micros since the epoch
  std::atomic<bool> merge_due_{false};  // graph_ carries options_.merge_after changes or more
  std::atomic<std::uint64_t> merges_{0};
  // CIs and relations re-read since the graph was last stored (load_mutex_ held); past
  // options_.store_after the graph is stored again, and the log below the old one pruned.
  std::size_t changes_since_store_ = 0;
  std::chrono::steady_clock::time_point last_store_{};  // load_mutex_ held
  std::atomic<double> last_load_seconds_{0};
  std::atomic<bool> stopping_{false};
  std::thread listener_;
  std::thread maintainer_;
};

}  // namespace cmdb::store
