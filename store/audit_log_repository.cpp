#include "store/audit_log_repository.hpp"

#include <limits>

#include <boost/json/serialize.hpp>

#include "model/json.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::store {

namespace {

// `s` as valid UTF-8 without NUL (what a jsonb string and a text column take): each invalid
// sequence and each NUL becomes U+FFFD. A request's path or a cut identifier may hold either;
// one such line must not cost the others of its batch.
std::string ValidText(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    std::uint32_t min = 0;
    std::uint32_t cp = 0;
    if (c >= 0x01 && c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      min = 0x80;
      cp = c & 0x1FU;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      min = 0x800;
      cp = c & 0x0FU;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      min = 0x10000;
      cp = c & 0x07U;
    }
    bool ok = len != 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0U) == 0x80U;
      cp = (cp << 6U) | (p[i + k] & 0x3FU);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

void AuditLogRepository::AppendMany(const std::vector<model::AuditEntry>& entries) {
  if (entries.empty()) return;
  // The lines travel as one JSON array (jsonb_to_recordset turns its arrays into text[]).
  boost::json::array lines;
  lines.reserve(entries.size());
  for (const model::AuditEntry& e : entries) {
    boost::json::object line;
    line["at_us"] = e.at.micros != 0 ? boost::json::value(e.at.micros) : boost::json::value();
    // No actor (no valid token) and no token are null (user names are never empty).
    line["actor"] = e.actor ? boost::json::value(ValidText(*e.actor)) : boost::json::value();
    line["token_id"] = e.token_id ? boost::json::value(*e.token_id) : boost::json::value();
    line["method"] = ValidText(e.method);
    line["route"] = ValidText(e.route);
    line["path"] = ValidText(e.path);
    boost::json::array targets;
    for (const std::string& t : e.target_ids) targets.emplace_back(ValidText(t));
    line["target_ids"] = std::move(targets);
    line["status"] = e.status;
    line["request_id"] = ValidText(e.request_id);
    line["client_address"] = ValidText(e.client_address);
    lines.emplace_back(std::move(line));
  }
  // The writes they record have committed durably already; these lines' commit does not wait
  // for their WAL flush (a second fsync per write would halve the write rate). A PostgreSQL
  // crash within a fraction of a second of it, or a cmdb crash before the lines are written,
  // loses lines but not the writes.
  // One statement, its own transaction: the setting is local to it (set_config(..., true)).
  // Prepared once per connection: every write and refusal is audited. The ids follow the
  // array's order.
  sql::Prepared(
      db_, "audit_log_append_many",
      "WITH durability AS (SELECT set_config('synchronous_commit', 'off', true)) "
      "INSERT INTO audit_log (at, actor, token_id, method, route, path, target_ids, status, "
      "request_id, client_address) SELECT coalesce(cmdb_ts(x.at_us), clock_timestamp()), x.actor, "
      "x.token_id, x.method, x.route, x.path, coalesce(x.target_ids, '{}'), x.status, "
      "x.request_id, x.client_address FROM durability, ROWS FROM (jsonb_to_recordset($1::jsonb) "
      "AS (at_us bigint, actor text, token_id bigint, method text, route text, path text, "
      "target_ids text[], status integer, request_id text, client_address text)) WITH "
      "ORDINALITY AS x(at_us, actor, token_id, method, route, path, target_ids, status, "
      "request_id, client_address, n) ORDER BY x.n",
      1)
      .ForEach({boost::json::serialize(lines)}, [](const soci::row&) {});
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
