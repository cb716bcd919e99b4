#include "store/audit_log_repository.hpp"

#include <limits>

#include "model/json.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::store {

void AuditLogRepository::Append(const model::AuditEntry& e) {
  // The write it records has committed durably already; this line's commit does not wait for
  // its WAL flush (a second fsync per write would halve the write rate). A PostgreSQL crash
  // within a fraction of a second of it, or a cmdb crash between the write and this line,
  // loses the line but not the write.
  // One statement, its own transaction: the setting is local to it (set_config(..., true)).
  // Prepared once per connection: every write and refusal is audited.
  sql::Prepared(
      db_, "audit_log_append",
      "WITH durability AS (SELECT set_config('synchronous_commit', 'off', true)) "
      "INSERT INTO audit_log (actor, token_id, method, route, path, target_ids, "
      "status, request_id, client_address) SELECT NULLIF($1, ''), NULLIF($2, '')::bigint, "
      "$3, $4, $5, $6::text[], $7::integer, $8, $9 FROM durability",
      9)
      // No actor (no valid token) and no token travel as '' (user names are never empty).
      .ForEach({e.actor.value_or(""), e.token_id ? std::to_string(*e.token_id) : std::string(),
                e.method, e.route, e.path, sql::TextArray(e.target_ids), std::to_string(e.status),
                e.request_id, e.client_address},
               [](const soci::row&) {});
}

std::vector<model::AuditEntry> AuditLogRepository::List(const AuditFilter& f) {
  const std::optional<long long> since =
      f.since ? std::optional<long long>(f.since->micros) : std::nullopt;
  const std::optional<long long> until =
      f.until ? std::optional<long long>(f.until->micros) : std::nullopt;
  const long long before = f.before > 0 ? f.before : std::numeric_limits<long long>::max();
  std::vector<model::AuditEntry> out;
  sql::ForEachRow(
      db_,
      "SELECT id, cmdb_us(at), actor, token_id, method, route, path, array_to_json(target_ids), "
      "status, request_id, client_address FROM audit_log WHERE id < $1 "
      "AND ($2::text IS NULL OR actor = $2) "
      "AND ($3::text IS NULL OR method = $3 OR route = $3 OR method || ' ' || route = $3) "
      "AND ($4::text IS NULL OR target_ids @> ARRAY[$4::text]) "
      "AND ($5::integer IS NULL OR status = $5) "
      "AND ($6::bigint IS NULL OR at >= cmdb_ts($6)) AND ($7::bigint IS NULL OR at < cmdb_ts($7)) "
      "ORDER BY id DESC LIMIT $8",
      [&](const soci::row& r) {
        model::AuditEntry e;
        e.id = sql::Int(r, 0);
        e.at = sql::Time(r, 1);
        e.actor = sql::OptionalText(r, 2);
        e.token_id = sql::OptionalInt(r, 3);
        e.method = sql::Text(r, 4);
        e.route = sql::Text(r, 5);
        e.path = sql::Text(r, 6);
        const boost::json::value targets = sql::Json(r, 7);
        if (const auto* list = targets.if_array()) {
          for (const auto& t : *list) {
            if (t.is_string()) e.target_ids.emplace_back(t.get_string());
          }
        }
        e.status = static_cast<int>(sql::Int(r, 8));
        e.request_id = sql::Text(r, 9);
        e.client_address = sql::Text(r, 10);
        out.push_back(std::move(e));
      },
      soci::use(before), soci::use(f.actor), soci::use(f.action), soci::use(f.target),
      soci::use(f.status), soci::use(since), soci::use(until), soci::use(f.limit + 1));
  return out;
}

std::int64_t AuditLogRepository::Prune(int days) {
  Transaction tr(db_);
  sql::ForEachRow(
      db_, "SELECT set_config('cmdb.audit_retention_days', $1, true)", [](const soci::row&) {},
      soci::use(std::to_string(days)));
  const std::int64_t removed = sql::Execute(
      db_, "DELETE FROM audit_log WHERE at < clock_timestamp() - make_interval(days => $1)",
      soci::use(days));
  tr.Commit();
  return removed;
}

}  // namespace cmdb::store
