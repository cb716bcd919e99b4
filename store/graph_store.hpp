#pragma once
// Reading the dependency graph from PostgreSQL (the current one, or as it was at an instant,
// from history) and storing a read graph for the next instance to start from
// (0010_graph_changes_and_snapshots.sql). Borrows one session; not thread-safe.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/dependency_graph.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// What the change log (graph_changes) records for the transactions `snapshot` could not see:
// the ids of CIs and relations written, sorted and unique. With `audit_kinds`, CI ids include
// every CI an UPDATE wrote ('ci_data', 0021_audit_change_log.sql) and `sightings` says
// whether discovery sightings changed; else only what the graph holds ('ci': CIs inserted,
// deleted or changed in a graph column). nullopt when the log cannot say: pruned past the
// snapshot, a TRUNCATE, or more than `max_ids` ids. The rows written by transaction
// `skip_xid` (pg_current_xact_id() as text; empty: none) are left out: for a reader that
// already holds what that transaction wrote.
struct LoggedChanges {
  std::vector<std::int64_t> ci_ids;
  std::vector<std::int64_t> relation_ids;
  bool sightings = false;
};
std::optional<LoggedChanges> ReadChangeLog(DbSession& db, const std::string& snapshot,
                                           bool audit_kinds, std::size_t max_ids,
                                           const std::string& skip_xid = {});

// Loads every CI and relation (or those valid at `as_of`, from history) into a graph.
graph::DependencyGraph LoadDependencyGraph(DbSession& db,
                                           std::optional<model::Timestamp> as_of = {});

// A graph and the PostgreSQL snapshot (pg_snapshot text) its contents were read under.
struct VersionedGraph {
  enum class Kind {
    kFull,       // read both tables
    kStored,     // the stored snapshot plus the changes since
    kUpdated,    // the previous graph plus the changes since, beside its arrays
    kUnchanged,  // nothing changed since the previous graph: `graph` is null, keep it
  };
  std::shared_ptr<const graph::DependencyGraph> graph;
  std::string snapshot;
  Kind kind = Kind::kFull;
  std::size_t changes = 0;  // CIs and relations re-read (kStored, kUpdated)
};

// Loads the current graph in one read-only REPEATABLE READ transaction. With a `base` graph
// read under `base_snapshot`, re-reads only the CIs and relations changed since (see
// 0010_graph_changes_and_snapshots.sql) and applies them beside the base's arrays
// (DependencyGraph::WithChanges, in time proportional to the changes); else, when
// `use_stored_snapshot`, starts from the snapshot StoreGraphSnapshot left; reads both tables
// when neither applies (no base, no snapshot, a TRUNCATE, a pruned log, 200k changes or more).
// `incremental` false rebuilds the arrays from the base's contents and the changes instead
// (what every update did before; kept as the benchmarks' baseline).
VersionedGraph LoadGraph(DbSession& db, const graph::DependencyGraph* base,
                         const std::string& base_snapshot, bool use_stored_snapshot,
                         bool incremental = true);

// Stores `graph`, read under `snapshot`, for the next instance to start from, replacing the
// previous one and pruning the change log below it. Returns false, doing nothing, when
// another instance is storing one at the same moment or has stored a newer one.
bool StoreGraphSnapshot(DbSession& db, const graph::DependencyGraph& graph,
                        const std::string& snapshot);

}  // namespace cmdb::store
