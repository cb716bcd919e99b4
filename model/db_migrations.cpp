#include "model/db_migrations.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <soci/soci.h>

#include "model/db_errors.hpp"
#include "model/error.hpp"

namespace cmdb::sql {
std::vector<std::pair<std::string_view, std::string_view>> MigrationFiles();
}

namespace cmdb::model {
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

std::vector<std::string> ApplyMigrations(soci::session& sql) {
  std::vector<std::string> applied_now;
  try {
    soci::transaction tr(sql);
    // Transaction-scoped: released by COMMIT or ROLLBACK, even if this process dies.
    sql << "SELECT pg_advisory_xact_lock(" << kMigrationLockKey << ")";
    ExecuteRaw(sql,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               " number integer PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())");
    std::set<int> done;
    soci::rowset<int> rows = (sql.prepare << "SELECT number FROM schema_migrations");
    for (int n : rows) done.insert(n);
    std::vector<Migration> all = BuiltInMigrations();
    int newest_known = all.empty() ? 0 : all.back().number;
    if (!done.empty() && *done.rbegin() > newest_known) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "the database schema is at migration " + std::to_string(*done.rbegin()) +
                      ", newer than this cmdb binary knows (" + std::to_string(newest_known) +
                      "); upgrade cmdb");
    }
    for (const Migration& m : all) {
      if (done.contains(m.number)) continue;
      try {
        ExecuteRaw(sql, std::string(m.sql));
      } catch (const Error& e) {
        throw Error(ErrorCode::kInternal, "migration " + m.name + " failed: " + e.what());
      }
      sql << "INSERT INTO schema_migrations (number, name) VALUES (:n, :name)", soci::use(m.number),
          soci::use(m.name);
      applied_now.push_back(m.name);
    }
    tr.commit();
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
  return applied_now;
}

}  // namespace cmdb::model
