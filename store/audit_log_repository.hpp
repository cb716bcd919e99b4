#pragma once
// The append-only audit log in PostgreSQL (a trigger refuses UPDATE, DELETE and TRUNCATE but
// for the retention prune). A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/access.hpp"
#include "model/paging.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct AuditFilter {
  std::optional<std::string> actor;
  // "POST", "/api/v1/changes/{id}/approve" or "POST /api/v1/changes/{id}/approve".
  std::optional<std::string> action;
  std::optional<std::string> target;  // one of the target ids
  std::optional<int> status;
  std::optional<model::Timestamp> since;  // inclusive
  std::optional<model::Timestamp> until;  // exclusive
  std::int64_t before = 0;                // newest first: ids below this; 0 for the newest
  int limit = model::kDefaultPageSize;
};

class AuditLogRepository {
 public:
  explicit AuditLogRepository(DbSession& db) : db_(db) {}

  // One line (the command line's actions) or many in one statement (the server's writer,
  // store/audit_log_writer.hpp), each at its entry's time (now when unset), in their order.
  void Append(const model::AuditEntry& entry) { AppendMany({entry}); }
  void AppendMany(const std::vector<model::AuditEntry>& entries);
  std::vector<model::AuditEntry> List(const AuditFilter& filter);  // up to limit + 1
  // Deletes the entries older than `days` days (the trigger allows nothing else); returns
  // how many.
  std::int64_t Prune(int days);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
