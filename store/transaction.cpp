#include "store/transaction.hpp"

#include "model/error.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

Transaction::Transaction(DbSession& db) : db_(db) {
  nested_ = pg::InTransaction(db.sql());
  // Savepoints nest strictly, so one name serves every level: ROLLBACK TO and RELEASE act on
  // the most recent savepoint of that name.
  sql::Execute(db_, nested_ ? "SAVEPOINT cmdb_nested" : "BEGIN");
}

void Transaction::ReadOnlySnapshot() {
  if (nested_) {
    throw model::Error(model::ErrorCode::kInternal, "a nested transaction cannot change isolation");
  }
  sql::Execute(db_, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    if (nested_) {
      sql::Execute(db_, "ROLLBACK TO SAVEPOINT cmdb_nested");
      sql::Execute(db_, "RELEASE SAVEPOINT cmdb_nested");
    } else {
      sql::Execute(db_, "ROLLBACK");
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; a broken
                   // connection rolls back by itself
  }
}

void Transaction::Commit() {
  sql::Execute(db_, nested_ ? "RELEASE SAVEPOINT cmdb_nested" : "COMMIT");
  done_ = true;
}

}  // namespace cmdb::store
