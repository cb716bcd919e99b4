#include "store/graph_cache.hpp"

#include <chrono>
#include <cstdio>
#include <tuple>

#include <libpq-fe.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model/log.hpp"
#include "store/db_pool.hpp"
#include "store/graph_store.hpp"

namespace cmdb::store {

using model::Timestamp;

GraphCache::GraphCache(DbPool& pool, std::string listen_dsn, GraphCacheOptions options)
    : pool_(pool), listen_dsn_(std::move(listen_dsn)), options_(options) {
  if (!listen_dsn_.empty()) {
    listener_ = std::thread([this] { Listen(); });
    maintainer_ = std::thread([this] { Maintain(); });
  }
}

GraphCache::~GraphCache() {
  stopping_ = true;
  if (listener_.joinable()) listener_.join();
  if (maintainer_.joinable()) maintainer_.join();
}

void GraphCache::Maintain() {
  using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
  // A merge or a store is a second or more of a core at 4M relations: this thread runs at a
  // lower CPU priority (Linux: per thread), so that on a busy machine requests — and writers'
  // next reads — come first. Not fatal when refused.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10) != 0) {
    model::Log(model::LogLevel::kDebug, "the graph's maintenance thread keeps its priority");
  }
  while (!stopping_) {
    MergeIfDue();
    StoreSnapshotIfDue();
    std::this_thread::sleep_for(100ms);
  }
}

std::shared_ptr<const graph::DependencyGraph> GraphCache::Published(std::uint64_t own,
                                                                    std::uint64_t remote) {
  std::lock_guard lock(graph_mutex_);
  if (graph_ && graph_generation_ >= own && graph_remote_generation_ >= remote) return graph_;
  return nullptr;
}

void GraphCache::Load(DbSession& session, std::shared_ptr<const graph::DependencyGraph> base,
                      const std::string& base_snapshot) {
  // The generations are read before the load's snapshot is taken, so the graph holds at least
  // every write they count (a write counted later may be in it too: one reload too many).
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  const std::uint64_t remote = remote_generation_.load(std::memory_order_acquire);
  const auto started = std::chrono::steady_clock::now();
  const bool given = base != nullptr;
  std::string snapshot = base_snapshot;
  if (!given) std::tie(base, snapshot) = PublishedWithSnapshot();
  VersionedGraph loaded = LoadGraph(session, base.get(), snapshot, true, options_.incremental);
  if (given && !loaded.graph) loaded.graph = base;  // nothing changed since the given graph
  if (loaded.kind != VersionedGraph::Kind::kUnchanged) {
    last_load_seconds_.store(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        std::memory_order_relaxed);
    loads_.fetch_add(1, std::memory_order_relaxed);
  }
  // A full read is worth keeping for the next instance to start from, and so is a graph that
  // has taken many changes since the stored one (which also lets the change log be pruned).
  if (loaded.kind == VersionedGraph::Kind::kFull) {
    full_loads_.fetch_add(1, std::memory_order_relaxed);
    changes_since_store_ = 0;
    last_store_ = std::chrono::steady_clock::now();
    StoreSnapshotLater();
  } else if (loaded.kind == VersionedGraph::Kind::kStored ||
             loaded.kind == VersionedGraph::Kind::kUpdated) {
    changes_since_store_ += loaded.changes;
    const bool interval_passed =
        std::chrono::steady_clock::now() - last_store_ >= options_.store_interval;
    if ((changes_since_store_ >= options_.store_after && interval_passed) ||
        changes_since_store_ >= options_.store_after_at_most) {
      changes_since_store_ = 0;
      last_store_ = std::chrono::steady_clock::now();
      StoreSnapshotLater();
    }
  }
  std::lock_guard lock(graph_mutex_);
  if (loaded.graph) graph_ = std::move(loaded.graph);
  graph_snapshot_ = std::move(loaded.snapshot);
  graph_generation_ = own;
  graph_remote_generation_ = remote;
  if (graph_ && graph_->delta_size() >= options_.merge_after)
    merge_due_.store(true, std::memory_order_release);
}

void GraphCache::Apply(graph::GraphChanges changes) {
  if (!options_.incremental) {  // the baseline: every update rebuilds, from the log
    Invalidate();
    return;
  }
  changed_at_.store(Timestamp::Now().micros, std::memory_order_release);
  std::lock_guard load(load_mutex_);  // no load publishes meanwhile
  const std::shared_ptr<const graph::DependencyGraph> graph = PublishedWithSnapshot().first;
  if (!graph) {
    // Nothing loaded yet: the first load reads the write.
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  for (const graph::GraphEdge& e : changes.relations) {
    if (!graph->HasRelationType(e.type)) {
      // A type created since the graph was loaded (by another instance; this one's creations
      // mark the graph out of date): the next read loads it, with the types as they are now.
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
  }
  auto next =
      std::make_shared<const graph::DependencyGraph>(graph->WithChanges(std::move(changes)));
  std::lock_guard lock(graph_mutex_);
  graph_ = std::move(next);
  if (graph_->delta_size() >= options_.merge_after)
    merge_due_.store(true, std::memory_order_release);
}

std::pair<std::shared_ptr<const graph::DependencyGraph>, std::string>
GraphCache::PublishedWithSnapshot() {
  std::lock_guard lock(graph_mutex_);
  return {graph_, graph_snapshot_};
}

bool GraphCache::WritesPaused() const {
  const std::int64_t since = Timestamp::Now().micros - changed_at_.load(std::memory_order_acquire);
  return since >=
         std::chrono::duration_cast<std::chrono::microseconds>(options_.writes_pause).count();
}

void GraphCache::MergeIfDue() {
  if (!merge_due_.load(std::memory_order_acquire)) return;
  auto [graph, snapshot] = PublishedWithSnapshot();
  if (graph && graph->delta_size() < options_.merge_after_at_most && !WritesPaused()) {
    return;  // writes are streaming in: asked again on the next turn
  }
  if (!merge_due_.exchange(false, std::memory_order_acq_rel)) return;
  if (!graph || graph->delta_size() == 0 || snapshot.empty()) return;
  // Seconds for a large estate, with no lock held: readers and writers go on with the graph
  // carrying the changes; the merged one then takes the changes made meanwhile.
  auto merged = std::make_shared<const graph::DependencyGraph>(graph->Merged());
  try {
    DbSession session = pool_.Lease();  // before the mutex: see load_mutex_
    std::lock_guard load(load_mutex_);
    Load(session, std::move(merged), snapshot);
    merges_.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    merge_due_.store(true, std::memory_order_release);  // tried again on the next turn
    model::Log(model::LogLevel::kWarn, "merging the graph's changes failed", {{"error", e.what()}});
  }
}

void GraphCache::StoreSnapshotLater() {
  if (!snapshot_due_.load(std::memory_order_acquire)) {
    snapshot_due_since_.store(Timestamp::Now().micros, std::memory_order_release);
  }
  snapshot_due_.store(true, std::memory_order_release);
}

void GraphCache::StoreSnapshotIfDue() {
  if (!snapshot_due_.load(std::memory_order_acquire)) return;
  const std::int64_t waited =
      Timestamp::Now().micros - snapshot_due_since_.load(std::memory_order_acquire);
  if (!WritesPaused() &&
      waited < std::chrono::duration_cast<std::chrono::microseconds>(options_.store_wait_at_most)
                   .count()) {
    return;  // writes are streaming in: asked again on the next turn
  }
  if (!snapshot_due_.exchange(false, std::memory_order_acq_rel)) return;
  auto [graph, snapshot] = PublishedWithSnapshot();
  if (!graph || snapshot.empty()) return;
  try {
    DbSession session = pool_.Lease();
    StoreGraphSnapshot(session, *graph, snapshot);
  } catch (const std::exception& e) {
    // The next instance reads the tables instead; nothing else depends on the snapshot.
    model::Log(model::LogLevel::kWarn, "storing the graph snapshot failed", {{"error", e.what()}});
  }
}

std::shared_ptr<const graph::DependencyGraph> GraphCache::Current() {
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  if (auto graph = Published(own, 0)) return graph;
  {
    DbSession session = pool_.Lease();  // before the mutex: see load_mutex_
    std::lock_guard load(load_mutex_);
    if (auto graph = Published(own, 0)) return graph;  // loaded while this one waited
    Load(session);
  }
  if (listen_dsn_.empty()) MergeIfDue();  // no listener thread to do it in the background
  return Published(0, 0);
}

std::shared_ptr<const graph::DependencyGraph> GraphCache::CurrentUpToDate() {
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  const std::uint64_t remote = remote_generation_.load(std::memory_order_acquire);
  if (auto graph = Published(own, remote)) return graph;
  DbSession session = pool_.Lease();  // before the mutex: see load_mutex_
  std::lock_guard load(load_mutex_);
  if (auto graph = Published(own, remote)) return graph;
  Load(session);
  return Published(0, 0);
}

void GraphCache::Listen() {
  using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
  bool first = true;
  while (!stopping_) {
    PGconn* conn = PQconnectdb(listen_dsn_.c_str());
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, "LISTEN cmdb_graph");
      const bool listening = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
      if (listening) {
        // Listening first, then loading: no write can fall between the two. A graph loaded
        // before the LISTEN (a first read that came before this thread got here) and one
        // held across a reconnect may both have missed notifications: the load below brings
        // either up to date from the change log (nothing at all to read when nothing was
        // missed).
        remote_generation_.fetch_add(1, std::memory_order_acq_rel);
        if (!first) changed_at_.store(Timestamp::Now().micros, std::memory_order_release);
        first = false;
        try {
          CurrentUpToDate();  // at start: off the request path, so the first query finds it
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): readers retry
        }
      }
      while (listening && !stopping_) {
        pollfd fd{PQsocket(conn), POLLIN, 0};
        int ready = poll(&fd, 1, 200);
        if (ready < 0) break;
        if (ready == 0) continue;
        if (PQconsumeInput(conn) == 0) break;  // connection lost: reconnect
        bool changed = false;
        while (PGnotify* notify = PQnotifies(conn)) {
          changed = true;
          PQfreemem(notify);
        }
        if (!changed) continue;
        changed_at_.store(Timestamp::Now().micros, std::memory_order_release);
        remote_generation_.fetch_add(1, std::memory_order_acq_rel);
        // Reloaded here, in the background: readers keep the previous graph meanwhile. A short
        // pause first lets a burst of writes end (an update applies beside the arrays in
        // milliseconds, so the pause is what other instances' writes wait for most).
        // Notifications that arrive during the load are read after it and coalesce into at
        // most one more load.
        std::this_thread::sleep_for(10ms);
        try {
          CurrentUpToDate();
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): retried by readers
        }
      }
    }
    PQfinish(conn);
    for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(100ms);
  }
}

}  // namespace cmdb::store
