#pragma once
// A transaction on a session, or, when the session is already inside one, a savepoint in it,
// so the store's own transactions compose into a caller's: a discovery run registers CIs
// through the importer and fills records through the CI repository inside its single
// transaction. (soci::transaction cannot nest: its BEGIN inside a transaction is ignored and
// its COMMIT would end the caller's.) Rolls back unless Commit() was called. Not thread-safe.

#include "store/db_pool.hpp"

namespace cmdb::store {

class Transaction {
 public:
  explicit Transaction(DbSession& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Throws model::Error (kConflict for a serialization failure, kUnavailable, ...).
  void Commit();
  bool nested() const { return nested_; }
  // Makes the transaction just begun read-only REPEATABLE READ, so that every query in it sees
  // one instant (a resource read in two queries cannot straddle another's commit). Call first,
  // before any query; not for a nested transaction (kInternal).
  void ReadOnlySnapshot();

 private:
  DbSession& db_;
  bool nested_ = false;
  bool done_ = false;
};

}  // namespace cmdb::store
