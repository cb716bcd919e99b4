#include "model/ci_repository.hpp"

#include <charconv>

#include <soci/soci.h>

#include "model/ci_type_repository.hpp"
#include "model/db_errors.hpp"
#include "model/db_query.hpp"
#include "model/json.hpp"

namespace cmdb::model {

// last_seen_at: the latest sighting of the CI by any source: the rows of its closed streaks,
// and the latest writing run of each source in whose blocks its bit is set (an open streak,
// see 0014_sighting_blocks.sql). The columns both lists share, as a literal so that each list
// is one literal too.
#define CMDB_CI_FIELDS                                                                         \
  "c.id, c.type, c.name, c.status, c.owner, array_to_json(c.tags)::text, c.attributes::text, " \
  "c.min_healthy, c.version, cmdb_us(c.created_at), cmdb_us(c.updated_at), "
const char* const kCiColumns = CMDB_CI_FIELDS
    "cmdb_us(greatest((SELECT max(s.last_seen_at) FROM discovery_sightings s WHERE s.ci_id = "
    "c.id), (SELECT max(d.sighted_at) FROM discovery_sighting_blocks b JOIN discovery_sources d "
    "ON d.id = b.source_id WHERE b.block = c.id >> 10 AND get_bit(b.bits, (c.id & 1023)::integer) "
    "= 1)))";
const char* const kCiColumnsWithoutLastSeen = CMDB_CI_FIELDS "NULL::bigint";
#undef CMDB_CI_FIELDS

namespace {

// The same shape read from history: created_at is when version 1 was written; discovery's
// last_seen_at is not versioned.
constexpr const char* kVersionColumns =
    "c.ci_id, c.type, c.name, c.status, c.owner, array_to_json(c.tags)::text, "
    "c.attributes::text, c.min_healthy, c.version, "
    "cmdb_us((SELECT f.valid_from FROM ci_versions f WHERE f.ci_id = c.ci_id AND f.version = 1)),"
    " cmdb_us(c.valid_from), NULL::bigint";

std::string TagsJson(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return ToJsonText(a);
}

PgParam OptionalInt(const std::optional<std::int64_t>& v) {
  if (!v) return std::nullopt;
  return std::to_string(*v);
}

void CheckVersion(std::optional<std::int64_t> if_match, const ConfigurationItem& ci) {
  if (if_match && *if_match != ci.version) {
    throw Error(ErrorCode::kVersionMismatch,
                "CI " + std::to_string(ci.id) + " is at version " + std::to_string(ci.version) +
                    ", not " + std::to_string(*if_match) + "; reload it and retry");
  }
}

// Locks the CI's row for the rest of the transaction and checks If-Match against it.
// kNotFound; kVersionMismatch.
ConfigurationItem LockForWrite(soci::session& sql, CiId id, std::optional<std::int64_t> if_match) {
  PgResult r = Query(sql,
                     std::string("SELECT ") + kCiColumns +
                         " FROM configuration_items c WHERE c.id = $1 FOR UPDATE",
                     {P(id)});
  if (r.rows() == 0) {
    throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
  }
  ConfigurationItem current = CiFromRow(r, 0);
  CheckVersion(if_match, current);
  return current;
}

void CollectTypeErrors(CiTypeRepository& types, const ConfigurationItem& ci, FieldErrors& errors,
                       bool lock_shared) {
  if (ci.type.empty()) return;  // already reported by the parser
  std::optional<CiType> type = types.Find(ci.type, lock_shared);
  if (!type) {
    errors.Add("type", "unknown CI type '" + ci.type + "'");
  } else {
    ValidateCi(*type, ci, errors);
  }
}

void ValidateAgainstType(CiTypeRepository& types, const ConfigurationItem& ci) {
  FieldErrors errors;
  CollectTypeErrors(types, ci, errors, /*lock_shared=*/true);
  errors.ThrowIfAny("the CI is invalid");
}

// Records the CI's current row as a new version and closes the previous one.
// A null `diff` marks a creation (see ci_versions in 0001_core_schema.sql).
void RecordVersion(soci::session& sql, CiId id, const json::object* diff, const WriteContext& ctx) {
  Query(sql,
        "UPDATE ci_versions v SET valid_to = c.updated_at FROM configuration_items c "
        "WHERE v.ci_id = $1 AND v.valid_to IS NULL AND c.id = $1",
        {P(id)});
  Query(sql,
        "INSERT INTO ci_versions (ci_id, version, type, name, status, owner, tags, attributes, "
        "min_healthy, valid_from, changed_by, source, diff) SELECT id, version, type, name, "
        "status, owner, tags, attributes, min_healthy, updated_at, $2, $3, $4::jsonb FROM "
        "configuration_items WHERE id = $1",
        {P(id), P(ctx.changed_by), P(ctx.source),
         diff != nullptr ? PgParam(ToJsonText(*diff)) : PgParam()});
}

std::string EscapeLike(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '%' || c == '_') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

ConfigurationItem CiFromRow(const PgResult& r, int row) {
  ConfigurationItem ci;
  ci.id = r.Int(row, 0);
  ci.type = r.Text(row, 1);
  ci.name = r.Text(row, 2);
  ci.status = r.Text(row, 3);
  ci.owner = r.OptionalText(row, 4);
  const json::value tags = ParseJson(r.Text(row, 5));  // kept alive for the loop
  for (const auto& tag : tags.as_array()) ci.tags.emplace_back(tag.as_string());
  ci.attributes = ParseJson(r.Text(row, 6)).as_object();
  ci.min_healthy = r.OptionalInt(row, 7);
  ci.version = r.Int(row, 8);
  ci.created_at = Timestamp{r.Int(row, 9)};
  ci.updated_at = Timestamp{r.Int(row, 10)};
  if (!r.IsNull(row, 11)) ci.last_seen_at = Timestamp{r.Int(row, 11)};
  return ci;
}

std::optional<ConfigurationItem> CiRepository::FindById(CiId id, std::optional<Timestamp> as_of) {
  if (as_of) {
    PgResult r = QueryPrepared(sql_, "ci_by_id_as_of",
                               std::string("SELECT ") + kVersionColumns +
                                   " FROM ci_versions c WHERE c.ci_id = $1 AND NOT c.deleted AND"
                                   " c.valid_from <= cmdb_ts($2) AND (c.valid_to IS NULL OR "
                                   "c.valid_to > cmdb_ts($2))",
                               {P(id), P(as_of->micros)});
    if (r.rows() == 0) return std::nullopt;
    return CiFromRow(r, 0);
  }
  PgResult r = QueryPrepared(
      sql_, "ci_by_id",
      std::string("SELECT ") + kCiColumns + " FROM configuration_items c WHERE c.id = $1", {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return CiFromRow(r, 0);
}

CiPage CiRepository::List(const CiFilter& filter) {
  const bool history = filter.as_of.has_value();
  const std::string id = history ? "c.ci_id" : "c.id";
  PgParams params;
  auto param = [&](PgParam value) {
    params.push_back(std::move(value));
    return "$" + std::to_string(params.size());
  };
  std::string where = id + " > " + param(P(filter.after));
  if (history) {
    std::string t = param(P(filter.as_of->micros));
    where += " AND NOT c.deleted AND c.valid_from <= cmdb_ts(" + t +
             ") AND (c.valid_to IS NULL OR c.valid_to > cmdb_ts(" + t + "))";
  }
  if (filter.type) where += " AND c.type = " + param(P(*filter.type));
  if (filter.status) where += " AND c.status = " + param(P(*filter.status));
  if (filter.owner) where += " AND c.owner = " + param(P(*filter.owner));
  if (!filter.tags.empty()) {
    where += " AND c.tags @> ARRAY(SELECT jsonb_array_elements_text(" +
             param(TagsJson(filter.tags)) + "::jsonb))";
  }
  if (filter.q) where += " AND c.name ILIKE '%' || " + param(EscapeLike(*filter.q)) + " || '%'";
  for (const auto& [name, value] : filter.attrs) {
    // The query text cannot say whether "8" means the number or the string, so accept either,
    // and an element of a list attribute; each alternative can use the GIN index.
    std::vector<json::value> candidates{json::value(value)};
    try {
      json::value parsed = ParseJson(value);
      if (parsed.is_number() || parsed.is_bool()) candidates.push_back(parsed);
    } catch (const Error&) {  // NOLINT(bugprone-empty-catch): not a JSON scalar, a string only
    }
    std::string alternatives;
    for (const auto& candidate : candidates) {
      for (bool as_list : {false, true}) {
        json::object doc;
        doc[name] = as_list ? json::value(json::array{candidate}) : candidate;
        alternatives += (alternatives.empty() ? "" : " OR ") + std::string("c.attributes @> ") +
                        param(ToJsonText(doc)) + "::jsonb";
      }
    }
    where += " AND (" + alternatives + ")";
  }
  const int limit = filter.limit;
  std::string query = std::string("SELECT ") + (history ? kVersionColumns : kCiColumns) + " FROM " +
                      (history ? "ci_versions" : "configuration_items") + " c WHERE " + where +
                      " ORDER BY " + id + " LIMIT " + std::to_string(limit + 1);
  PgResult r = Query(sql_, query, params);
  CiPage page;
  for (int i = 0; i < r.rows() && i < limit; ++i) page.items.push_back(CiFromRow(r, i));
  if (r.rows() > limit && !page.items.empty()) page.next_after = page.items.back().id;
  return page;
}

void CiRepository::Validate(const ConfigurationItem& draft, FieldErrors& errors) {
  CiTypeRepository types(sql_);
  CollectTypeErrors(types, draft, errors, /*lock_shared=*/false);
}

ConfigurationItem CiRepository::Create(const ConfigurationItem& draft, const WriteContext& ctx) {
  try {
    Transaction tr(sql_);
    CiTypeRepository types(sql_);
    ValidateAgainstType(types, draft);
    PgResult r = Query(
        sql_,
        std::string("WITH now AS (SELECT clock_timestamp() AS t) INSERT INTO configuration_items"
                    " AS c (type, name, status, owner, tags, attributes, min_healthy, created_at, "
                    "updated_at) SELECT $1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5"
                    "::jsonb)), $6::jsonb, $7::integer, now.t, now.t FROM now RETURNING ") +
            kCiColumns,
        {P(draft.type), P(draft.name), P(draft.status), P(draft.owner), TagsJson(draft.tags),
         ToJsonText(draft.attributes), OptionalInt(draft.min_healthy)});
    ConfigurationItem created = CiFromRow(r, 0);
    RecordVersion(sql_, created.id, nullptr, ctx);
    tr.Commit();
    return created;
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

ConfigurationItem CiRepository::Patch(CiId id, const json::value& patch,
                                      std::optional<std::int64_t> if_match,
                                      const WriteContext& ctx) {
  try {
    Transaction tr(sql_);
    ConfigurationItem current = LockForWrite(sql_, id, if_match);
    FieldErrors errors;
    ConfigurationItem next = ApplyCiPatch(current, patch, errors);
    CiTypeRepository types(sql_);
    CollectTypeErrors(types, next, errors, /*lock_shared=*/true);
    errors.ThrowIfAny("the patched CI is invalid");
    json::object diff = DiffCis(&current, &next);
    if (diff.empty()) {
      tr.Commit();
      return current;
    }
    PgResult u = Query(
        sql_,
        std::string("UPDATE configuration_items c SET name = $2, status = $3, owner = $4, tags ="
                    " ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), attributes = $6::jsonb,"
                    " min_healthy = $7::integer, version = c.version + 1, updated_at = greatest("
                    "clock_timestamp(), c.updated_at) WHERE c.id = $1 RETURNING ") +
            kCiColumns,
        {P(id), P(next.name), P(next.status), P(next.owner), TagsJson(next.tags),
         ToJsonText(next.attributes), OptionalInt(next.min_healthy)});
    ConfigurationItem updated = CiFromRow(u, 0);
    RecordVersion(sql_, id, &diff, ctx);
    tr.Commit();
    return updated;
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

void CiRepository::Delete(CiId id, std::optional<std::int64_t> if_match, const WriteContext& ctx) {
  try {
    Transaction tr(sql_);
    ConfigurationItem current = LockForWrite(sql_, id, if_match);
    PgResult now = Query(sql_, "SELECT cmdb_us(greatest(clock_timestamp(), $1::timestamptz))",
                         {FormatTimestamp(current.updated_at)});
    const PgParam ts = P(now.Int(0, 0));
    // Relations go first, each with a tombstone version, in one set-based statement.
    Query(sql_,
          "WITH gone AS (DELETE FROM relations WHERE from_ci = $1 OR to_ci = $1 RETURNING *), "
          "closed AS (UPDATE relation_versions v SET valid_to = cmdb_ts($2) FROM gone "
          "WHERE v.relation_id = gone.id AND v.valid_to IS NULL) "
          "INSERT INTO relation_versions (relation_id, version, deleted, type, from_ci, to_ci, "
          "attributes, valid_from, valid_to, changed_by, source, diff) SELECT id, version + 1, "
          "true, type, from_ci, to_ci, attributes, cmdb_ts($2), cmdb_ts($2), $3, $4, "
          "jsonb_build_object('deleted', jsonb_build_object('old', false, 'new', true), "
          "'reason', 'CI ' || $1 || ' was deleted') FROM gone",
          {P(id), ts, P(ctx.changed_by), P(ctx.source)});
    Query(sql_,
          "UPDATE ci_versions SET valid_to = cmdb_ts($2) WHERE ci_id = $1 AND valid_to IS NULL",
          {P(id), ts});
    Query(sql_,
          "INSERT INTO ci_versions (ci_id, version, deleted, type, name, status, owner, tags, "
          "attributes, min_healthy, valid_from, valid_to, changed_by, source, diff) SELECT id, "
          "version + 1, true, type, name, status, owner, tags, attributes, min_healthy, "
          "cmdb_ts($2), cmdb_ts($2), $3, $4, $5::jsonb FROM configuration_items WHERE id = $1",
          {P(id), ts, P(ctx.changed_by), P(ctx.source), ToJsonText(DiffCis(&current, nullptr))});
    Query(sql_, "DELETE FROM configuration_items WHERE id = $1", {P(id)});
    tr.Commit();
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

std::vector<CiVersion> CiRepository::History(CiId id, int limit,
                                             std::optional<std::int64_t> before_version) {
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kVersionColumns +
                         ", c.changed_by, c.source, c.deleted, c.diff::text FROM ci_versions c "
                         "WHERE c.ci_id = $1 AND c.version < $2 ORDER BY c.version DESC LIMIT $3",
                     {P(id), P(before_version.value_or(INT64_MAX)), P(limit)});
  if (r.rows() == 0 && !before_version) {
    PgResult any = Query(sql_, "SELECT 1 FROM ci_versions WHERE ci_id = $1 LIMIT 1", {P(id)});
    if (any.rows() == 0) {
      throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " has no history");
    }
  }
  std::vector<CiVersion> out;
  for (int i = 0; i < r.rows(); ++i) {
    ConfigurationItem snapshot = CiFromRow(r, i);
    CiVersion v;
    v.version = snapshot.version;
    v.changed_at = snapshot.updated_at;
    v.changed_by = r.Text(i, 12);
    v.source = r.Text(i, 13);
    v.deleted = r.Bool(i, 14);
    v.diff = r.IsNull(i, 15) ? DiffCis(nullptr, &snapshot) : ParseJson(r.Text(i, 15)).as_object();
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cmdb::model
