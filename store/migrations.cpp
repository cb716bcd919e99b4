#include "store/migrations.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "model/error.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::sql {
std::vector<std::pair<std::string_view, std::string_view>> MigrationFiles();
}

namespace cmdb::store {

using model::Error;
using model::ErrorCode;

namespace {
// An arbitrary constant shared by every cmdb instance: "cmdb" in ASCII.
constexpr long long kMigrationLockKey = 0x636d6462;
}  // namespace

std::vector<Migration> BuiltInMigrations() {
  std::vector<Migration> out;
  for (const auto& [name, text] : cmdb::sql::MigrationFiles()) {
    Migration m;
    m.name = std::string(name);
    m.number = std::stoi(m.name.substr(0, m.name.find('_')));
    m.sql = text;
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.number < b.number; });
  return out;
}

std::vector<std::string> ApplyMigrations(DbSession& db) {
  std::vector<std::string> applied_now;
  Transaction tr(db);
  // Transaction-scoped: released by COMMIT or ROLLBACK, even if this process dies.
  sql::Execute(db, "SELECT pg_advisory_xact_lock($1)", soci::use(kMigrationLockKey));
  sql::Execute(db,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               " number integer PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  std::set<int> done;
  sql::ForEachRow(db, "SELECT number FROM schema_migrations",
                  [&](const soci::row& r) { done.insert(static_cast<int>(sql::Int(r, 0))); });
  const std::vector<Migration> all = BuiltInMigrations();
  const int newest_known = all.empty() ? 0 : all.back().number;
  if (!done.empty() && *done.rbegin() > newest_known) {
    throw Error(ErrorCode::kFailedPrecondition,
                "the database schema is at migration " + std::to_string(*done.rbegin()) +
                    ", newer than this cmdb binary knows (" + std::to_string(newest_known) +
                    "); upgrade cmdb");
  }
  for (const Migration& m : all) {
    if (done.contains(m.number)) continue;
    try {
      // Several statements, run in order inside this transaction, as written.
      pg::ExecuteScript(db, std::string(m.sql));
    } catch (const Error& e) {
      throw Error(ErrorCode::kInternal, "migration " + m.name + " failed: " + e.what());
    }
    sql::Execute(db, "INSERT INTO schema_migrations (number, name) VALUES ($1, $2)",
                 soci::use(m.number), soci::use(m.name));
    applied_now.push_back(m.name);
  }
  tr.Commit();
  return applied_now;
}

}  // namespace cmdb::store
