#include "model/graph_cache.hpp"

#include <charconv>
#include <chrono>

#include <libpq-fe.h>
#include <poll.h>

#include "model/ci_type_repository.hpp"
#include "model/db_errors.hpp"
#include "model/db_pool.hpp"
#include "model/db_query.hpp"

namespace cmdb::model {

DependencyGraph LoadDependencyGraph(soci::session& sql, std::optional<Timestamp> as_of) {
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
  if (as_of) {
    const PgParams t{P(as_of->micros)};
    PgResult ci = Query(sql,
                        "SELECT ci_id, type, name, status, coalesce(min_healthy, 0) FROM "
                        "ci_versions WHERE NOT deleted AND valid_from <= cmdb_ts($1) AND "
                        "(valid_to IS NULL OR valid_to > cmdb_ts($1))",
                        t);
    nodes.reserve(static_cast<std::size_t>(ci.rows()));
    for (int i = 0; i < ci.rows(); ++i) {
      nodes.push_back({ci.Int(i, 0), std::string(ci.Text(i, 1)), std::string(ci.Text(i, 2)),
                       std::string(ci.Text(i, 3)), static_cast<std::int32_t>(ci.Int(i, 4))});
    }
    PgResult rel = Query(sql,
                         "SELECT relation_id, from_ci, to_ci, type FROM relation_versions WHERE "
                         "NOT deleted AND valid_from <= cmdb_ts($1) AND (valid_to IS NULL OR "
                         "valid_to > cmdb_ts($1))",
                         t);
    for (int i = 0; i < rel.rows(); ++i) {
      edges.push_back({rel.Int(i, 0), rel.Int(i, 1), rel.Int(i, 2), std::string(rel.Text(i, 3))});
    }
  } else {
    // Streamed with COPY: a million CIs never sit in one result set.
    auto to_int = [](std::string_view text) {
      std::int64_t v = 0;
      std::from_chars(text.data(), text.data() + text.size(), v);
      return v;
    };
    CopyOut(sql, "SELECT id, type, name, status, coalesce(min_healthy, 0) FROM configuration_items",
            [&](const std::vector<std::string_view>& f) {
              nodes.push_back({to_int(f[0]), std::string(f[1]), std::string(f[2]),
                               std::string(f[3]), static_cast<std::int32_t>(to_int(f[4]))});
            });
    CopyOut(sql, "SELECT id, from_ci, to_ci, type FROM relations",
            [&](const std::vector<std::string_view>& f) {
              edges.push_back({to_int(f[0]), to_int(f[1]), to_int(f[2]), std::string(f[3])});
            });
  }
  // Relation types are not versioned; their propagation is read as it is now.
  return DependencyGraph::Build(std::move(nodes), edges, CiTypeRepository(sql).ListRelationTypes());
}

GraphCache::GraphCache(DbPool& pool, std::string listen_dsn)
    : pool_(pool), listen_dsn_(std::move(listen_dsn)) {
  if (!listen_dsn_.empty()) listener_ = std::thread([this] { Listen(); });
}

GraphCache::~GraphCache() {
  stopping_ = true;
  if (listener_.joinable()) listener_.join();
}

std::shared_ptr<const DependencyGraph> GraphCache::Published(std::uint64_t own,
                                                             std::uint64_t remote) {
  std::lock_guard lock(graph_mutex_);
  if (graph_ && graph_generation_ >= own && graph_remote_generation_ >= remote) return graph_;
  return nullptr;
}

void GraphCache::Load() {
  // The generations are read before the load's snapshot is taken, so the graph holds at least
  // every write they count (a write counted later may be in it too: one reload too many).
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  const std::uint64_t remote = remote_generation_.load(std::memory_order_acquire);
  const auto started = std::chrono::steady_clock::now();
  std::shared_ptr<const DependencyGraph> graph;
  {
    DbSession session = pool_.Lease();
    graph = std::make_shared<const DependencyGraph>(LoadDependencyGraph(session.sql()));
  }
  last_load_seconds_.store(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
      std::memory_order_relaxed);
  loads_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(graph_mutex_);
  graph_ = std::move(graph);
  graph_generation_ = own;
  graph_remote_generation_ = remote;
}

std::shared_ptr<const DependencyGraph> GraphCache::Current() {
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  if (auto graph = Published(own, 0)) return graph;
  std::lock_guard load(load_mutex_);
  if (auto graph = Published(own, 0)) return graph;  // loaded while this one waited
  Load();
  return Published(0, 0);
}

std::shared_ptr<const DependencyGraph> GraphCache::CurrentUpToDate() {
  const std::uint64_t own = generation_.load(std::memory_order_acquire);
  const std::uint64_t remote = remote_generation_.load(std::memory_order_acquire);
  if (auto graph = Published(own, remote)) return graph;
  std::lock_guard load(load_mutex_);
  if (auto graph = Published(own, remote)) return graph;
  Load();
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
        // Listening first, then loading: no write can fall between the two. On a reconnect,
        // anything may have changed while no listener was connected.
        if (!first) {
          remote_generation_.fetch_add(1, std::memory_order_acq_rel);
          changed_at_.store(Timestamp::Now().micros, std::memory_order_release);
        }
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
        // pause first lets a burst of writes end, and lets this instance's own write (whose
        // notification this may be) invalidate and reload for its reader, which then covers
        // the notification too. Notifications that arrive during the load are read after it
        // and coalesce into at most one more load.
        std::this_thread::sleep_for(50ms);
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

}  // namespace cmdb::model
