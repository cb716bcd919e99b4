#pragma once
// The statements of a bulk import (import/): the identities of a type's CIs, the rows it
// updates, and set-based writes of CIs, their versions and relations with COPY. Used inside
// the importer's transaction; borrows one session; not thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "model/configuration_item.hpp"
#include "model/history.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// Every CI of a type with the JSON text of some of its attributes, column by column.
struct IdentityColumns {
  std::vector<model::CiId> ids;
  std::vector<std::string> names;
  // values[a][row]: attribute a of the request, as JSON text; nullopt when absent.
  std::vector<std::vector<std::optional<std::string>>> values;
};

// A CI an import changes: its new state (id, version and updated_at set) and the diff.
struct CiUpdate {
  const model::ConfigurationItem* next = nullptr;
  const boost::json::object* diff = nullptr;
};

// A relation an import creates.
struct NewRelation {
  std::string type;
  model::CiId from = 0;
  model::CiId to = 0;
  boost::json::object attributes;
};

class ImportStore {
 public:
  explicit ImportStore(DbSession& db) : db_(db) {}

  // Serialises imports (and discovery runs) writing CIs of `type` until the transaction ends:
  // two of them must not both create the same CI.
  void LockType(const std::string& type);
  // Every CI of `type` with the attributes `attributes`.
  IdentityColumns Identities(const std::string& type, const std::vector<std::string>& attributes);
  // Whether this transaction has written nothing yet (no transaction id assigned): then what
  // it reads is committed data only.
  bool WroteNothing();
  // The snapshot (pg_snapshot text) a statement starting now sees.
  std::string Snapshot();
  // This transaction's id (pg_current_xact_id() as text; assigned if it had none), as the
  // change log records it.
  std::string TransactionId();
  // Those of the CIs `ids` that exist and are of `type`.
  std::vector<model::CiId> OfType(const std::vector<model::CiId>& ids, const std::string& type);
  // How many CIs of `type` there are.
  std::int64_t CountOfType(const std::string& type);
  // Every CI of `type`, read whole without locks (ReadCurrent's unlocked read of a type).
  std::vector<model::ConfigurationItem> ReadType(const std::string& type);
  // ReadType's rows a part at a time, in no order: `each` is given every `part` CIs read (and
  // the rest at the end) and returns whether to go on. When it returns false the COPY is
  // abandoned, and the connection is left in the middle of it: only for one the caller closes
  // then.
  void ReadTypeInParts(const std::string& type, std::size_t part,
                       const std::function<bool(std::vector<model::ConfigurationItem>)>& each);
  // Records that this instance keeps identities of `types` (import_kept_types), now.
  void RecordKeptTypes(const std::vector<std::string>& types);
  // The types some instance kept identities of in the last `ago`, by name.
  std::vector<std::string> KeptTypesSince(std::chrono::hours ago);
  // The CIs `ids` (without last_seen_at), in id order: locked FOR UPDATE, or as read (`lock`
  // false: a re-import compares first and locks only the rows it changes).
  std::vector<model::ConfigurationItem> ReadCurrent(const std::vector<model::CiId>& ids, bool lock);
  // Locks the CIs `ids` FOR UPDATE; their versions, by id (a deleted CI is absent).
  std::unordered_map<model::CiId, std::int64_t> LockVersions(const std::vector<model::CiId>& ids);
  // The database's clock.
  model::Timestamp Now();
  // Draws `count` ids for new CIs.
  std::vector<model::CiId> NextCiIds(std::size_t count);

  // Writes new CIs (ids, versions and timestamps set), each its own first version written by
  // `ctx`, with COPY, encoding one part while the previous is at PostgreSQL. Returns the
  // seconds spent encoding (overlapped with the COPY).
  double InsertCis(const std::vector<const model::ConfigurationItem*>& cis,
                   const model::WriteContext& ctx);
  // Writes changed CIs at `now`, the version each had kept as ended. Returns the seconds
  // keeping those versions took.
  double UpdateCis(const std::vector<CiUpdate>& updates, model::Timestamp now,
                   const model::WriteContext& ctx);

  // The names of the relation types.
  std::set<std::string> RelationTypeNames();
  // The CIs of `ids` that exist now (InsertRelations locks the ends it writes).
  std::set<model::CiId> ExistingCis(const std::vector<model::CiId>& ids);
  // The CIs named by each (type, name) pair given (every one of a name used twice).
  std::vector<std::tuple<std::string, std::string, model::CiId>> CisByName(
      const std::vector<std::string>& types, const std::vector<std::string>& names);
  // Which of the (type, from, to) keys are recorded relations already.
  std::set<std::tuple<std::string, model::CiId, model::CiId>> ExistingRelations(
      const std::vector<const NewRelation*>& relations);
  // Writes new relations (each key once, none recorded yet) and their first versions at
  // `now`: their types and ends are locked FOR KEY SHARE then, and a missing one fails the
  // whole write with kFailedPrecondition (a CI deleted since ExistingCis).
  void InsertRelations(const std::vector<const NewRelation*>& relations, model::Timestamp now,
                       const model::WriteContext& ctx);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
