#include "store/graph_store.hpp"

#include <algorithm>
#include <charconv>

#include "graph/graph_contents.hpp"
#include "store/pg.hpp"
#include "store/relation_type_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::store {

using graph::DependencyGraph;
using graph::GraphChanges;
using graph::GraphContents;
using model::Error;
using model::Timestamp;

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

// The columns read are NOT NULL.
graph::GraphNode NodeFromFields(const pg::Fields& f) {
  return {ToInt(*f[0]), std::string(*f[1]), std::string(*f[2]), std::string(*f[3]),
          static_cast<std::int32_t>(ToInt(*f[4]))};
}

graph::GraphEdge EdgeFromFields(const pg::Fields& f) {
  return {ToInt(*f[0]), ToInt(*f[1]), ToInt(*f[2]), std::string(*f[3])};
}

// Every CI and relation `nodes_query` and `edges_query` select (columns as kNodeColumns and
// kEdgeColumns), streamed with COPY: a million CIs never sit in one result set.
GraphContents StreamContents(DbSession& db, const std::string& nodes_query,
                             const std::string& edges_query) {
  GraphContents c;
  pg::CopyOut(db, nodes_query, [&](const pg::Fields& f) { c.nodes.push_back(NodeFromFields(f)); });
  pg::CopyOut(db, edges_query, [&](const pg::Fields& f) { c.edges.push_back(EdgeFromFields(f)); });
  return c;
}

GraphContents ReadContents(DbSession& db) {
  return StreamContents(db, std::string("SELECT ") + kNodeColumns + " FROM configuration_items",
                        std::string("SELECT ") + kEdgeColumns + " FROM relations");
}

// The snapshot of a read-only REPEATABLE READ transaction: everything read in it, and the
// text returned, describe one instant.
std::string BeginSnapshot(DbSession& db, Transaction& tr) {
  tr.ReadOnlySnapshot();
  std::string snapshot;
  sql::Run(db, "SELECT pg_current_snapshot()::text", soci::into(snapshot));
  return snapshot;
}

// The CIs and relations changed by transactions `snapshot` could not see, read as they are
// now; nullopt when the log cannot say (pruned, a TRUNCATE) or there are too many.
std::optional<GraphChanges> ChangesSince(DbSession& db, const std::string& snapshot) {
  std::optional<LoggedChanges> logged =
      ReadChangeLog(db, snapshot, /*audit_kinds=*/false, kMaxChanges);
  if (!logged) return std::nullopt;
  GraphChanges changes;
  changes.ci_ids = std::move(logged->ci_ids);
  changes.relation_ids = std::move(logged->relation_ids);
  // Streamed with COPY like a full read (a bulk import's 50,000 relations per statement took
  // about twice as long through SOCI's rows); the ids, numbers, are written into the query.
  auto ids_in = [](const std::vector<std::int64_t>& ids) {
    return " WHERE id = ANY ('" + sql::IdArray(ids) + "'::bigint[])";
  };
  if (!changes.ci_ids.empty()) {
    pg::CopyOut(db,
                std::string("SELECT ") + kNodeColumns + " FROM configuration_items" +
                    ids_in(changes.ci_ids),
                [&](const pg::Fields& f) { changes.cis.push_back(NodeFromFields(f)); });
  }
  if (!changes.relation_ids.empty()) {
    pg::CopyOut(
        db,
        std::string("SELECT ") + kEdgeColumns + " FROM relations" + ids_in(changes.relation_ids),
        [&](const pg::Fields& f) { changes.relations.push_back(EdgeFromFields(f)); });
  }
  return changes;
}

// The newest stored snapshot: its pg_snapshot text and serialised contents, read in binary
// (a hex bytea would double 100+ MB on the wire).
std::optional<std::pair<std::string, std::string>> ReadStoredSnapshot(DbSession& db) {
  std::optional<std::vector<std::string>> row = pg::ReadBinaryRow(
      db, "SELECT snapshot, data FROM graph_snapshots ORDER BY id DESC LIMIT 1", {});
  if (!row) return std::nullopt;
  return std::make_pair(std::move((*row)[0]), std::move((*row)[1]));
}

}  // namespace

std::optional<LoggedChanges> ReadChangeLog(DbSession& db, const std::string& snapshot,
                                           bool audit_kinds, std::size_t max_ids,
                                           const std::string& skip_xid) {
  // One round trip: the log's rows, and a 'pruned' row when the log no longer reaches back to
  // the snapshot (it is read on every load of the graph, on every instance).
  LoggedChanges changes;
  bool unknown = false;
  sql::ForEachRow(
      db,
      std::string("SELECT kind, ids::text FROM graph_changes WHERE xid >= "
                  "pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, "
                  "$1::pg_snapshot) AND xid IS DISTINCT FROM NULLIF($2, '')::xid8") +
          (audit_kinds ? "" : " AND kind IN ('ci', 'relation', 'all')") +
          " UNION ALL SELECT 'pruned', NULL FROM graph_change_horizon WHERE "
          "pg_snapshot_xmin($1::pg_snapshot) < pruned_below",
      [&](const soci::row& r) {
        if (unknown) return;
        const std::string kind = sql::Text(r, 0);
        if (kind == "all" || kind == "pruned") {
          unknown = true;
        } else if (kind == "sighting") {
          changes.sightings = true;
        } else {
          std::vector<std::int64_t> ids = sql::Ids(r, 1);
          auto& into = kind == "relation" ? changes.relation_ids : changes.ci_ids;
          into.insert(into.end(), ids.begin(), ids.end());
          unknown = changes.ci_ids.size() + changes.relation_ids.size() > 2 * max_ids;
        }
      },
      soci::use(snapshot), soci::use(skip_xid));
  if (unknown) return std::nullopt;
  for (auto* ids : {&changes.ci_ids, &changes.relation_ids}) {
    std::sort(ids->begin(), ids->end());
    ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  }
  if (changes.ci_ids.size() + changes.relation_ids.size() > max_ids) return std::nullopt;
  return changes;
}

DependencyGraph LoadDependencyGraph(DbSession& db, std::optional<Timestamp> as_of) {
  GraphContents c;
  if (!as_of) {
    c = ReadContents(db);
  } else {
    // Streamed like the current graph: a million versions never sit in one result set. The
    // instant is a number, written into the COPY's query (COPY takes no parameters).
    const std::string t = "cmdb_ts(" + std::to_string(as_of->micros) + ")";
    const std::string valid =
        " NOT deleted AND valid_from <= " + t + " AND (valid_to IS NULL OR valid_to > " + t + ")";
    c = StreamContents(
        db,
        "SELECT ci_id, type, name, status, coalesce(min_healthy, 0) FROM ci_history WHERE" + valid,
        "SELECT relation_id, from_ci, to_ci, type FROM relation_history WHERE" + valid);
  }
  // Relation types are not versioned; their propagation is read as it is now.
  return DependencyGraph::Build(std::move(c.nodes), c.edges, RelationTypeRepository(db).List());
}

VersionedGraph LoadGraph(DbSession& db, const DependencyGraph* base,
                         const std::string& base_snapshot, bool use_stored_snapshot,
                         bool incremental) {
  Transaction tr(db);
  VersionedGraph out;
  out.snapshot = BeginSnapshot(db, tr);
  std::optional<GraphContents> contents;
  std::optional<GraphChanges> changes;
  if (base != nullptr && !base_snapshot.empty()) {
    changes = ChangesSince(db, base_snapshot);
    if (changes && changes->empty()) {
      out.kind = VersionedGraph::Kind::kUnchanged;
      tr.Commit();
      return out;
    }
    if (changes && !incremental) contents = base->Contents();  // rebuilt (a baseline)
  } else if (use_stored_snapshot) {
    if (auto stored = ReadStoredSnapshot(db)) {
      changes = ChangesSince(db, stored->first);
      if (changes) {
        try {
          contents = graph::DeserializeGraph(stored->second);
        } catch (const Error&) {
          changes.reset();  // written by another version: read the tables instead
        }
      }
    }
  }
  if (base != nullptr && changes && incremental) {
    // The changes go beside the previous graph's arrays, in time proportional to them.
    out.kind = VersionedGraph::Kind::kUpdated;
    out.changes = changes->ci_ids.size() + changes->relation_ids.size();
    std::vector<model::RelationType> types = RelationTypeRepository(db).List();
    tr.Commit();
    out.graph =
        std::make_shared<const DependencyGraph>(base->WithChanges(std::move(*changes), types));
    return out;
  }
  if (contents) {
    out.kind = base != nullptr ? VersionedGraph::Kind::kUpdated : VersionedGraph::Kind::kStored;
    out.changes = changes->ci_ids.size() + changes->relation_ids.size();
    graph::ApplyChanges(*contents, std::move(*changes));
  } else {
    out.kind = VersionedGraph::Kind::kFull;
    contents = ReadContents(db);
  }
  std::vector<model::RelationType> types = RelationTypeRepository(db).List();
  tr.Commit();
  out.graph = std::make_shared<const DependencyGraph>(
      DependencyGraph::Build(std::move(contents->nodes), contents->edges, types));
  return out;
}

bool StoreGraphSnapshot(DbSession& db, const DependencyGraph& graph, const std::string& snapshot) {
  const std::string data = graph::SerializeGraph(graph.Contents());
  constexpr std::size_t kMaxBytea = std::size_t{1} << 30;  // PostgreSQL's limit for one value
  if (data.size() >= kMaxBytea) return false;
  Transaction tr(db);
  // One writer at a time; another instance storing one right now makes this one redundant.
  bool locked = false;
  sql::Run(db, "SELECT pg_try_advisory_xact_lock(x'436d6447'::bigint)", soci::into(locked));
  if (!locked) return false;
  // Another instance stored a newer graph meanwhile: keep it.
  bool newer = false;
  sql::Run(db,
           "SELECT EXISTS (SELECT 1 FROM graph_snapshots WHERE pg_snapshot_xmin(snapshot::"
           "pg_snapshot) > pg_snapshot_xmin($1::pg_snapshot))",
           soci::into(newer), soci::use(snapshot));
  if (newer) return false;
  // The log below the replaced snapshot's horizon is no longer needed by a new instance; an
  // instance whose own graph is older than that loads in full once.
  sql::Execute(db,
               "WITH old AS (SELECT max(pg_snapshot_xmin(snapshot::pg_snapshot)) AS xmin FROM "
               "graph_snapshots), gone AS (DELETE FROM graph_changes WHERE xid < (SELECT xmin "
               "FROM old)) UPDATE graph_change_horizon SET pruned_below = greatest(pruned_below, "
               "(SELECT xmin FROM old)) WHERE (SELECT xmin FROM old) IS NOT NULL");
  sql::Execute(db, "DELETE FROM graph_snapshots");
  pg::WriteWithBytes(
      db,
      "INSERT INTO graph_snapshots (snapshot, cis, relations, data) VALUES ($1, "
      "$2, $3, $4)",
      {snapshot, std::to_string(graph.node_count()), std::to_string(graph.edge_count()), data}, 3);
  tr.Commit();
  return true;
}

}  // namespace cmdb::store
