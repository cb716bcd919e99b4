#include "model/graph_cache.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>

#include <libpq-fe.h>
#include <poll.h>

#include "model/ci_type_repository.hpp"
#include "model/db_errors.hpp"
#include "model/db_pool.hpp"
#include "model/db_query.hpp"

namespace cmdb::model {

namespace {

// How many changed CIs and relations a load applies to the graph it has before reading
// everything is cheaper (a rebuild from memory costs about as much as reading 5% of the rows).
constexpr std::size_t kMaxChanges = 200000;

std::int64_t ToInt(std::string_view text) {
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// What the graph holds of a CI and of a relation: a full read and an update read the same.
const char* const kNodeColumns = "id, type, name, status, coalesce(min_healthy, 0)";
const char* const kEdgeColumns = "id, from_ci, to_ci, type";

// Every CI and relation as the transaction sees them, streamed with COPY: a million CIs never
// sit in one result set.
GraphContents ReadContents(soci::session& sql) {
  GraphContents c;
  CopyOut(sql, std::string("SELECT ") + kNodeColumns + " FROM configuration_items",
          [&](const std::vector<std::string_view>& f) {
            c.nodes.push_back({ToInt(f[0]), std::string(f[1]), std::string(f[2]), std::string(f[3]),
                               static_cast<std::int32_t>(ToInt(f[4]))});
          });
  CopyOut(sql, std::string("SELECT ") + kEdgeColumns + " FROM relations",
          [&](const std::vector<std::string_view>& f) {
            c.edges.push_back({ToInt(f[0]), ToInt(f[1]), ToInt(f[2]), std::string(f[3])});
          });
  return c;
}

// The snapshot of a read-only REPEATABLE READ transaction: everything read in it, and the
// text returned, describe one instant.
std::string BeginSnapshot(soci::session& sql, Transaction& tr) {
  tr.ReadOnlySnapshot();
  return std::string(Query(sql, "SELECT pg_current_snapshot()::text").Text(0, 0));
}

// The CIs and relations changed by transactions `snapshot` could not see, read as they are
// now; nullopt when the log cannot say (pruned, a TRUNCATE) or there are too many.
std::optional<GraphChanges> ChangesSince(soci::session& sql, const std::string& snapshot) {
  const PgParams s{P(snapshot)};
  if (Query(sql,
            "SELECT pg_snapshot_xmin($1::pg_snapshot) < pruned_below FROM graph_change_horizon", s)
          .Bool(0, 0)) {
    return std::nullopt;
  }
  PgResult log = Query(sql,
                       "SELECT kind, ids::text FROM graph_changes WHERE xid >= "
                       "pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, "
                       "$1::pg_snapshot)",
                       s);
  GraphChanges changes;
  for (int i = 0; i < log.rows(); ++i) {
    const std::string_view kind = log.Text(i, 0);
    if (kind == "all") return std::nullopt;
    std::vector<std::int64_t> ids = IdsFromArrayText(log.Text(i, 1));
    auto& into = kind == "ci" ? changes.ci_ids : changes.relation_ids;
    into.insert(into.end(), ids.begin(), ids.end());
    if (changes.ci_ids.size() + changes.relation_ids.size() > 2 * kMaxChanges) return std::nullopt;
  }
  for (auto* ids : {&changes.ci_ids, &changes.relation_ids}) {
    std::sort(ids->begin(), ids->end());
    ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  }
  if (changes.ci_ids.size() + changes.relation_ids.size() > kMaxChanges) return std::nullopt;
  if (!changes.ci_ids.empty()) {
    PgResult r = Query(sql,
                       std::string("SELECT ") + kNodeColumns +
                           " FROM configuration_items WHERE id IN (SELECT unnest($1::bigint[]))",
                       {P(IdArrayLiteral(changes.ci_ids))});
    for (int i = 0; i < r.rows(); ++i) {
      changes.cis.push_back({r.Int(i, 0), std::string(r.Text(i, 1)), std::string(r.Text(i, 2)),
                             std::string(r.Text(i, 3)), static_cast<std::int32_t>(r.Int(i, 4))});
    }
  }
  if (!changes.relation_ids.empty()) {
    PgResult r = Query(sql,
                       std::string("SELECT ") + kEdgeColumns +
                           " FROM relations WHERE id IN (SELECT unnest($1::bigint[]))",
                       {P(IdArrayLiteral(changes.relation_ids))});
    for (int i = 0; i < r.rows(); ++i) {
      changes.relations.push_back(
          {r.Int(i, 0), r.Int(i, 1), r.Int(i, 2), std::string(r.Text(i, 3))});
    }
  }
  return changes;
}

[[noreturn]] void ThrowResult(PGconn* conn, PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  std::string sqlstate = state != nullptr ? state : "XX000";
  std::string message = PQerrorMessage(conn);
  PQclear(result);
  ThrowDbError(sqlstate, message);
}

// The newest stored snapshot: its pg_snapshot text and serialised contents, read in binary
// (a hex bytea would double 100+ MB on the wire).
std::optional<std::pair<std::string, std::string>> ReadStoredSnapshot(soci::session& sql) {
  PGconn* conn = NativeConnection(sql);
  PGresult* r =
      PQexecParams(conn, "SELECT snapshot, data FROM graph_snapshots ORDER BY id DESC LIMIT 1", 0,
                   nullptr, nullptr, nullptr, nullptr, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) ThrowResult(conn, r);
  std::optional<std::pair<std::string, std::string>> out;
  if (PQntuples(r) == 1) {
    out.emplace(std::string(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0))),
                std::string(PQgetvalue(r, 0, 1), static_cast<std::size_t>(PQgetlength(r, 0, 1))));
  }
  PQclear(r);
  return out;
}

}  // namespace

DependencyGraph LoadDependencyGraph(soci::session& sql, std::optional<Timestamp> as_of) {
  if (!as_of) {
    GraphContents c = ReadContents(sql);
    // Relation types are not versioned; their propagation is read as it is now.
    return DependencyGraph::Build(std::move(c.nodes), c.edges,
                                  CiTypeRepository(sql).ListRelationTypes());
  }
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
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
  edges.reserve(static_cast<std::size_t>(rel.rows()));
  for (int i = 0; i < rel.rows(); ++i) {
    edges.push_back({rel.Int(i, 0), rel.Int(i, 1), rel.Int(i, 2), std::string(rel.Text(i, 3))});
  }
  return DependencyGraph::Build(std::move(nodes), edges, CiTypeRepository(sql).ListRelationTypes());
}

VersionedGraph LoadGraph(soci::session& sql, const DependencyGraph* base,
                         const std::string& base_snapshot, bool use_stored_snapshot) {
  Transaction tr(sql);
  VersionedGraph out;
  out.snapshot = BeginSnapshot(sql, tr);
  std::optional<GraphContents> contents;
  std::optional<GraphChanges> changes;
  if (base != nullptr && !base_snapshot.empty()) {
    changes = ChangesSince(sql, base_snapshot);
    if (changes && changes->empty()) {
      out.kind = VersionedGraph::Kind::kUnchanged;
      tr.Commit();
      return out;
    }
    if (changes) contents = base->Contents();
  } else if (use_stored_snapshot) {
    if (auto stored = ReadStoredSnapshot(sql)) {
      changes = ChangesSince(sql, stored->first);
      if (changes) {
        try {
          contents = DeserializeGraph(stored->second);
        } catch (const Error&) {
          changes.reset();  // written by another version: read the tables instead
        }
      }
    }
  }
  if (contents) {
    out.kind = base != nullptr ? VersionedGraph::Kind::kUpdated : VersionedGraph::Kind::kStored;
    out.changes = changes->ci_ids.size() + changes->relation_ids.size();
    ApplyChanges(*contents, std::move(*changes));
  } else {
    out.kind = VersionedGraph::Kind::kFull;
    contents = ReadContents(sql);
  }
  std::vector<RelationType> types = CiTypeRepository(sql).ListRelationTypes();
  tr.Commit();
  out.graph = std::make_shared<const DependencyGraph>(
      DependencyGraph::Build(std::move(contents->nodes), contents->edges, types));
  return out;
}

bool StoreGraphSnapshot(soci::session& sql, const DependencyGraph& graph,
                        const std::string& snapshot) {
  const std::string data = SerializeGraph(graph.Contents());
  constexpr std::size_t kMaxBytea = std::size_t{1} << 30;  // PostgreSQL's limit for one value
  if (data.size() >= kMaxBytea) return false;
  Transaction tr(sql);
  // One writer at a time; another instance storing one right now makes this one redundant.
  if (!Query(sql, "SELECT pg_try_advisory_xact_lock(x'436d6447'::bigint)").Bool(0, 0)) {
    return false;
  }
  // Another instance stored a newer graph meanwhile: keep it.
  if (Query(sql,
            "SELECT EXISTS (SELECT 1 FROM graph_snapshots WHERE pg_snapshot_xmin(snapshot::"
            "pg_snapshot) > pg_snapshot_xmin($1::pg_snapshot))",
            {P(snapshot)})
          .Bool(0, 0)) {
    return false;
  }
  // The log below the replaced snapshot's horizon is no longer needed by a new instance; an
  // instance whose own graph is older than that loads in full once.
  Query(sql,
        "WITH old AS (SELECT max(pg_snapshot_xmin(snapshot::pg_snapshot)) AS xmin FROM "
        "graph_snapshots), gone AS (DELETE FROM graph_changes WHERE xid < (SELECT xmin FROM "
        "old)) UPDATE graph_change_horizon SET pruned_below = greatest(pruned_below, (SELECT "
        "xmin FROM old)) WHERE (SELECT xmin FROM old) IS NOT NULL");
  Query(sql, "DELETE FROM graph_snapshots");
  PGconn* conn = NativeConnection(sql);
  const std::string cis = std::to_string(graph.node_count());
  const std::string relations = std::to_string(graph.edge_count());
  const std::array<const char*, 4> values{snapshot.c_str(), cis.c_str(), relations.c_str(),
                                          data.data()};
  const std::array<int, 4> lengths{0, 0, 0, static_cast<int>(data.size())};
  const std::array<int, 4> formats{0, 0, 0, 1};
  PGresult* r = PQexecParams(conn,
                             "INSERT INTO graph_snapshots (snapshot, cis, relations, data) VALUES "
                             "($1, $2, $3, $4)",
                             4, nullptr, values.data(), lengths.data(), formats.data(), 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) ThrowResult(conn, r);
  PQclear(r);
  tr.Commit();
  return true;
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
  std::shared_ptr<const DependencyGraph> base;
  std::string base_snapshot;
  {
    std::lock_guard lock(graph_mutex_);
    base = graph_;
    base_snapshot = graph_snapshot_;
  }
  VersionedGraph loaded;
  {
    DbSession session = pool_.Lease();
    loaded = LoadGraph(session.sql(), base.get(), base_snapshot, true);
  }
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
    snapshot_due_.store(true, std::memory_order_release);
  } else if (loaded.kind == VersionedGraph::Kind::kStored ||
             loaded.kind == VersionedGraph::Kind::kUpdated) {
    changes_since_store_ += loaded.changes;
    if (changes_since_store_ >= kStoreAfterChanges) {
      changes_since_store_ = 0;
      snapshot_due_.store(true, std::memory_order_release);
    }
  }
  std::lock_guard lock(graph_mutex_);
  if (loaded.graph) graph_ = std::move(loaded.graph);
  graph_snapshot_ = std::move(loaded.snapshot);
  graph_generation_ = own;
  graph_remote_generation_ = remote;
}

void GraphCache::StoreSnapshotIfDue() {
  if (!snapshot_due_.exchange(false, std::memory_order_acq_rel)) return;
  std::shared_ptr<const DependencyGraph> graph;
  std::string snapshot;
  {
    std::lock_guard lock(graph_mutex_);
    graph = graph_;
    snapshot = graph_snapshot_;
  }
  if (!graph || snapshot.empty()) return;
  try {
    DbSession session = pool_.Lease();
    StoreGraphSnapshot(session.sql(), *graph, snapshot);
  } catch (const std::exception&) {
    // The next instance reads the tables instead; nothing else depends on the snapshot.
    std::fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"storing the graph snapshot failed\"}\n");
  }
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
        StoreSnapshotIfDue();  // here, off the request path
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
