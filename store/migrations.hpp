#pragma once
// Forward-only schema migrations. The numbered files of sql/migrations/ are compiled into the
// binary; ApplyMigrations runs the pending ones in one transaction under a PostgreSQL advisory
// lock, so several instances starting against one database apply each migration exactly once.

#include <string>
#include <string_view>
#include <vector>

#include "store/db_pool.hpp"

namespace cmdb::store {

struct Migration {
  int number = 0;    // from the file name: 0001_core_schema.sql -> 1
  std::string name;  // the file name
  std::string_view sql;
};

// The migrations built into this binary, in order.
std::vector<Migration> BuiltInMigrations();

// Applies every pending migration; returns the names of those applied (empty when the
// database was current). Throws Error{kInternal} naming the failing migration, and
// Error{kFailedPrecondition} when the database has migrations this binary does not know
// (it is newer than the binary).
std::vector<std::string> ApplyMigrations(DbSession& db);

}  // namespace cmdb::store
