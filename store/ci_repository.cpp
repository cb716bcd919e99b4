#include "store/ci_repository.hpp"

#include <charconv>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>

#include "model/json.hpp"
#include "store/ci_rows.hpp"
#include "store/ci_type_repository.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::CiId;
using model::CiType;
using model::ConfigurationItem;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
using model::HistoryEntry;
using model::Timestamp;
using model::WriteContext;
namespace json = boost::json;

// last_seen_at: the latest sighting of the CI by any source: the rows of its closed streaks,
// and the latest writing run of each source in whose blocks its bit is set (an open streak,
// see 0014_sighting_blocks.sql). The columns both lists share, as a literal so that each list
// is one literal too.
#define CMDB_CI_FIELDS                                                                         \
  "c.id, c.type, c.name, c.status, c.owner, array_to_json(c.tags)::text, c.attributes::text, " \
  "c.min_healthy, c.version, cmdb_us(c.created_at), cmdb_us(c.updated_at), "
#define CMDB_CI_LAST_SEEN                                                                         \
  "cmdb_us(greatest((SELECT max(s.last_seen_at) FROM discovery_sightings s WHERE s.ci_id = "      \
  "c.id), (SELECT max(d.sighted_at) FROM discovery_sighting_blocks b JOIN discovery_sources d "   \
  "ON d.id = b.source_id WHERE b.block = c.id >> 10 AND get_bit(b.bits, (c.id & 1023)::integer) " \
  "= 1)))"
const char* const kCiColumns = CMDB_CI_FIELDS CMDB_CI_LAST_SEEN;
const char* const kCiLastSeen = CMDB_CI_LAST_SEEN;
#undef CMDB_CI_LAST_SEEN
const char* const kCiColumnsWithoutLastSeen = CMDB_CI_FIELDS "NULL::bigint";
#undef CMDB_CI_FIELDS
const char* const kCiVersionColumns =
    "c.ci_id, c.type, c.name, c.status, c.owner, array_to_json(c.tags)::text, "
    "c.attributes::text, c.min_healthy, c.version, "
    "cmdb_us((SELECT f.valid_from FROM ci_history f WHERE f.ci_id = c.ci_id AND f.version = 1)),"
    " cmdb_us(c.valid_from), NULL::bigint";

CiRowText CiRowTextOf(const soci::row& r) {
  CiRowText t;
  t.id = sql::Int(r, 0);
  t.type = sql::Text(r, 1);
  t.name = sql::Text(r, 2);
  t.status = sql::Text(r, 3);
  t.owner = sql::OptionalText(r, 4);
  t.tags = sql::Text(r, 5);
  t.attributes = sql::Text(r, 6);
  t.min_healthy = sql::OptionalInt(r, 7);
  t.version = sql::Int(r, 8);
  t.created_at = sql::Time(r, 9);
  t.updated_at = sql::Time(r, 10);
  t.last_seen_at = sql::OptionalTime(r, 11);
  return t;
}

CiRowText CiRowTextOf(const pg::Fields& f) {
  auto text = [&f](std::size_t i) { return f[i] ? std::string(*f[i]) : std::string(); };
  auto number = [&f](std::size_t i) -> std::optional<std::int64_t> {
    if (!f[i]) return std::nullopt;
    std::int64_t n = 0;
    std::from_chars(f[i]->data(), f[i]->data() + f[i]->size(), n);
    return n;
  };
  auto time = [&](std::size_t i) -> std::optional<model::Timestamp> {
    if (std::optional<std::int64_t> micros = number(i)) return model::Timestamp{*micros};
    return std::nullopt;
  };
  CiRowText t;
  t.id = number(0).value_or(0);
  t.type = text(1);
  t.name = text(2);
  t.status = text(3);
  if (f[4]) t.owner = text(4);
  t.tags = text(5);
  t.attributes = text(6);
  t.min_healthy = number(7);
  t.version = number(8).value_or(0);
  t.created_at = time(9).value_or(model::Timestamp{});
  t.updated_at = time(10).value_or(model::Timestamp{});
  t.last_seen_at = time(11);
  return t;
}

ConfigurationItem CiFromText(CiRowText t) {
  ConfigurationItem ci;
  ci.id = t.id;
  ci.type = std::move(t.type);
  ci.name = std::move(t.name);
  ci.status = std::move(t.status);
  ci.owner = std::move(t.owner);
  const json::value tags = model::ParseJson(t.tags);  // kept alive for the loop
  for (const auto& tag : tags.as_array()) ci.tags.emplace_back(tag.as_string());
  ci.attributes = model::ParseJson(t.attributes).as_object();
  ci.min_healthy = t.min_healthy;
  ci.version = t.version;
  ci.created_at = t.created_at;
  ci.updated_at = t.updated_at;
  ci.last_seen_at = t.last_seen_at;
  return ci;
}

ConfigurationItem CiFromRow(const soci::row& r) { return CiFromText(CiRowTextOf(r)); }

namespace {

std::string TagsJson(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return model::ToJsonText(a);
}

std::string What(CiId id) { return "CI " + std::to_string(id); }

// Locks the CI's row for the rest of the transaction and checks If-Match against it.
// kNotFound; kVersionMismatch.
ConfigurationItem LockForWrite(DbSession& db, CiId id, std::optional<std::int64_t> if_match) {
  static const std::string query = std::string("SELECT ") + kCiColumns +
                                   " FROM configuration_items c WHERE c.id = $1 FOR UPDATE";
  return LockVersioned(db, query, std::to_string(id), if_match, What(id), CiFromRow);
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

// Ends the CI's current version at `ts` (micros): its row, as it is before the write that
// follows, is kept in ci_versions (0025_ci_current_versions.sql).
void EndCurrentVersion(DbSession& db, CiId id, long long ts) {
  const long long ci = id;
  sql::Execute(db,
               "INSERT INTO ci_versions (ci_id, version, type, name, status, owner, tags, "
               "attributes, min_healthy, valid_from, valid_to, changed_by, source, diff) SELECT "
               "id, version, type, name, status, owner, tags, attributes, min_healthy, "
               "updated_at, cmdb_ts($2), changed_by, source, diff FROM configuration_items "
               "WHERE id = $1",
               soci::use(ci), soci::use(ts));
}

// When a write to a CI last changed at `updated_at` takes effect: now, or just after.
long long WriteTime(DbSession& db, Timestamp updated_at) {
  long long ts = 0;
  sql::Run(db, "SELECT cmdb_us(greatest(clock_timestamp(), cmdb_ts($1)))", soci::into(ts),
           soci::use(static_cast<long long>(updated_at.micros)));
  return ts;
}

std::string EscapeLike(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '%' || c == '_') out += '\\';
    out += c;
  }
  return out;
}

// The alternatives of one attr.<name>=<value> filter. The query text cannot say whether "8"
// means the number or the string, so either is accepted, and an element of a list attribute;
// each alternative can use the GIN index.
std::string AttributeCondition(const std::string& name, const std::string& value,
                               sql::Params& params) {
  std::vector<json::value> candidates{json::value(value)};
  try {
    json::value parsed = model::ParseJson(value);
    if (parsed.is_number() || parsed.is_bool()) candidates.push_back(parsed);
  } catch (const Error&) {  // NOLINT(bugprone-empty-catch): not a JSON scalar, a string only
  }
  std::string alternatives;
  for (const auto& candidate : candidates) {
    for (bool as_list : {false, true}) {
      json::object doc;
      doc[name] = as_list ? json::value(json::array{candidate}) : candidate;
      alternatives += (alternatives.empty() ? "" : " OR ") + std::string("c.attributes @> ") +
                      params.Add(model::ToJsonText(doc)) + "::jsonb";
    }
  }
  return "(" + alternatives + ")";
}

}  // namespace

std::optional<ConfigurationItem> CiRepository::FindById(CiId id, std::optional<Timestamp> as_of) {
  // Prepared once per connection: the read on the path of most requests.
  std::optional<ConfigurationItem> found;
  auto keep = [&](const soci::row& r) { found = CiFromRow(r); };
  if (as_of) {
    static const std::string query = std::string("SELECT ") + kCiVersionColumns +
                                     " FROM ci_history c WHERE c.ci_id = $1 AND NOT c.deleted "
                                     "AND c.valid_from <= cmdb_ts($2) AND (c.valid_to IS NULL OR "
                                     "c.valid_to > cmdb_ts($2))";
    sql::Prepared(db_, "ci_by_id_as_of", query, 2)
        .ForEach({std::to_string(id), std::to_string(as_of->micros)}, keep);
  } else {
    static const std::string query =
        std::string("SELECT ") + kCiColumns + " FROM configuration_items c WHERE c.id = $1";
    sql::Prepared(db_, "ci_by_id", query, 1).ForEach({std::to_string(id)}, keep);
  }
  return found;
}

CiPage CiRepository::List(const CiFilter& filter) {
  const bool history = filter.as_of.has_value();
  const std::string id = history ? "c.ci_id" : "c.id";
  sql::Params params;
  // With one type (or owner) asked for, the page is walked on the (type, id) (or (owner, id))
  // index by a row comparison: given `type = $1 ORDER BY id`, the planner walks the primary key
  // and filters, which for a type holding most CIs but starting late in id order reads
  // hundreds of thousands of rows (66 ms for a page of VMs in the 1M-CI estate, 0.5 ms this
  // way; docs/benchmarks.md "Web UI").
  std::string where;
  std::string order = id;
  const std::optional<std::string> lead =
      !history && filter.type    ? std::optional<std::string>("type")
      : !history && filter.owner ? std::optional<std::string>("owner")
                                 : std::nullopt;
  if (lead) {
    const std::string value = params.Add(*lead == "type" ? *filter.type : *filter.owner);
    const std::string after = params.Add(filter.after);
    where = "(c." + *lead + ", c.id) > (" + value + ", " + after + ") AND (c." + *lead +
            ", c.id) <= (" + value + ", 9223372036854775807)";
    order = "c." + *lead + ", c.id";
  } else {
    where = id + " > " + params.Add(filter.after);
  }
  if (history) {
    const std::string t = params.Add(filter.as_of->micros);
    where += " AND NOT c.deleted AND c.valid_from <= cmdb_ts(" + t +
             ") AND (c.valid_to IS NULL OR c.valid_to > cmdb_ts(" + t + "))";
  }
  if (filter.type && lead != "type") where += " AND c.type = " + params.Add(*filter.type);
  if (filter.status) where += " AND c.status = " + params.Add(*filter.status);
  if (filter.owner && lead != "owner") where += " AND c.owner = " + params.Add(*filter.owner);
  if (!filter.tags.empty()) {
    where += " AND c.tags @> ARRAY(SELECT jsonb_array_elements_text(" +
             params.Add(TagsJson(filter.tags)) + "::jsonb))";
  }
  if (filter.q)
    where += " AND c.name ILIKE '%' || " + params.Add(EscapeLike(*filter.q)) + " || '%'";
  for (const auto& [name, value] : filter.attrs) {
    where += " AND " + AttributeCondition(name, value, params);
  }
  const int limit = filter.limit;
  const std::string query = std::string("SELECT ") + (history ? kCiVersionColumns : kCiColumns) +
                            " FROM " + (history ? "ci_history" : "configuration_items") +
                            " c WHERE " + where + " ORDER BY " + order + " LIMIT " +
                            std::to_string(limit + 1);
  CiPage page;
  bool more = false;
  sql::ForEachRow(db_, query, params, [&](const soci::row& r) {
    if (static_cast<int>(page.items.size()) < limit) {
      page.items.push_back(CiFromRow(r));
    } else {
      more = true;
    }
  });
  if (more && !page.items.empty()) page.next_after = page.items.back().id;
  return page;
}

std::int64_t CiRepository::Count() {
  long long count = 0;
  sql::Run(db_, "SELECT count(*) FROM configuration_items", soci::into(count));
  return count;
}

std::vector<CiAttributes> CiRepository::AttributesOfType(const std::string& type) {
  if (!model::IsValidIdentifier(type)) return {};
  std::vector<CiAttributes> out;
  // COPY takes no parameters; a type name is a validated identifier ([a-z][a-z0-9_]*), safe
  // inside the literal. One parser for every row: its buffers are allocated once, and each
  // object is moved out. The objects live in one arena shared by all of them: a 100k-CI
  // estate is a million small allocations, made and freed together.
  json::parse_options options;
  options.max_depth = model::kMaxStoredJsonDepth;
  json::parser parser({}, options);
  const json::storage_ptr arena = json::make_shared_resource<json::monotonic_resource>();
  pg::CopyOut(db_,
              "SELECT id, name, attributes FROM configuration_items WHERE type = '" + type + "'",
              [&](const pg::Fields& f) {  // NOT NULL columns
                CiAttributes ci;
                std::from_chars(f[0]->data(), f[0]->data() + f[0]->size(), ci.id);
                ci.name = std::string(*f[1]);
                parser.reset(arena);
                parser.write(f[2]->data(), f[2]->size());
                json::value attributes = parser.release();
                ci.attributes = std::move(attributes.as_object());
                out.push_back(std::move(ci));
              });
  return out;
}

std::map<CiId, std::string> CiRepository::TypesOf(const std::vector<CiId>& ids) {
  std::map<CiId, std::string> types;
  if (ids.empty()) return types;
  sql::ForEachRow(
      db_, "SELECT id, type FROM configuration_items WHERE id = ANY($1::bigint[])",
      [&](const soci::row& r) { types.emplace(sql::Int(r, 0), sql::Text(r, 1)); },
      soci::use(sql::IdArray(ids)));
  return types;
}

std::map<CiId, std::string> CiRepository::CheckExist(const std::vector<CiId>& ids,
                                                     std::string_view field, FieldErrors& errors) {
  std::map<CiId, std::string> types = TypesOf(ids);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!types.contains(ids[i])) {
      errors.Add(std::string(field) + "[" + std::to_string(i) + "]",
                 What(ids[i]) + " does not exist");
    }
  }
  return types;
}

void CiRepository::Validate(const ConfigurationItem& draft, FieldErrors& errors) {
  CiTypeRepository types(db_);
  CollectTypeErrors(types, draft, errors, /*lock_shared=*/false);
}

ConfigurationItem CiRepository::Create(const ConfigurationItem& draft, const WriteContext& ctx) {
  Transaction tr(db_);
  CiTypeRepository types(db_);
  FieldErrors errors;
  CollectTypeErrors(types, draft, errors, /*lock_shared=*/true);
  errors.ThrowIfAny("the CI is invalid");
  static const std::string query =
      std::string(
          "WITH now AS (SELECT clock_timestamp() AS t) INSERT INTO configuration_items AS c "
          "(type, name, status, owner, tags, attributes, min_healthy, created_at, updated_at, "
          "changed_by, source) SELECT $1, $2, $3, $4, "
          "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::jsonb, $7::integer, now.t, "
          "now.t, $8, $9 FROM now RETURNING ") +
      kCiColumns;
  sql::Params params;
  params.Add(draft.type);
  params.Add(draft.name);
  params.Add(draft.status);
  params.Add(draft.owner);
  params.Add(TagsJson(draft.tags));
  params.Add(model::ToJsonText(draft.attributes));
  params.Add(draft.min_healthy ? std::optional(std::to_string(*draft.min_healthy)) : std::nullopt);
  params.Add(ctx.changed_by);
  params.Add(ctx.source);
  soci::row row;
  sql::OneRow(db_, query, params, row);
  ConfigurationItem created = CiFromRow(row);
  tr.Commit();
  return created;
}

ConfigurationItem CiRepository::Patch(CiId id, const json::value& patch,
                                      std::optional<std::int64_t> if_match,
                                      const WriteContext& ctx) {
  Transaction tr(db_);
  ConfigurationItem current = LockForWrite(db_, id, if_match);
  FieldErrors errors;
  ConfigurationItem next = ApplyCiPatch(current, patch, errors);
  CiTypeRepository types(db_);
  CollectTypeErrors(types, next, errors, /*lock_shared=*/true);
  errors.ThrowIfAny("the patched CI is invalid");
  json::object diff = DiffCis(&current, &next);
  if (diff.empty()) {
    tr.Commit();
    return current;
  }
  const long long ts = WriteTime(db_, current.updated_at);
  EndCurrentVersion(db_, id, ts);
  static const std::string query =
      std::string(
          "UPDATE configuration_items c SET name = $2, status = $3, owner = $4, tags = "
          "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), attributes = $6::jsonb, "
          "min_healthy = $7::integer, version = c.version + 1, updated_at = cmdb_ts($8), "
          "changed_by = $9, source = $10, diff = $11::jsonb WHERE c.id = $1 RETURNING ") +
      kCiColumns;
  sql::Params params;
  params.Add(id);
  params.Add(next.name);
  params.Add(next.status);
  params.Add(next.owner);
  params.Add(TagsJson(next.tags));
  params.Add(model::ToJsonText(next.attributes));
  params.Add(next.min_healthy ? std::optional(std::to_string(*next.min_healthy)) : std::nullopt);
  params.Add(ts);
  params.Add(ctx.changed_by);
  params.Add(ctx.source);
  params.Add(model::ToJsonText(diff));
  soci::row row;
  sql::OneRow(db_, query, params, row);
  ConfigurationItem updated = CiFromRow(row);
  tr.Commit();
  return updated;
}

void CiRepository::Delete(CiId id, std::optional<std::int64_t> if_match, const WriteContext& ctx) {
  Transaction tr(db_);
  ConfigurationItem current = LockForWrite(db_, id, if_match);
  const long long ts = WriteTime(db_, current.updated_at);
  const long long ci = id;
  // Relations go first in one set-based statement: each one's current version (its own row)
  // ends and a tombstone follows (0023_relation_current_versions.sql).
  sql::Execute(db_,
               "WITH gone AS (DELETE FROM relations WHERE from_ci = $1 OR to_ci = $1 RETURNING "
               "*) INSERT INTO relation_versions (relation_id, version, deleted, type, from_ci, "
               "to_ci, attributes, valid_from, valid_to, changed_by, source, diff) SELECT id, "
               "version, false, type, from_ci, to_ci, attributes, updated_at, cmdb_ts($2), "
               "changed_by, source, diff FROM gone UNION ALL SELECT id, version + 1, true, type, "
               "from_ci, to_ci, attributes, cmdb_ts($2), cmdb_ts($2), $3, $4, "
               "jsonb_build_object('deleted', jsonb_build_object('old', false, 'new', true), "
               "'reason', 'CI ' || $1 || ' was deleted') FROM gone",
               soci::use(ci), soci::use(ts), soci::use(ctx.changed_by), soci::use(ctx.source));
  EndCurrentVersion(db_, id, ts);
  sql::Execute(db_,
               "INSERT INTO ci_versions (ci_id, version, deleted, type, name, status, owner, "
               "tags, attributes, min_healthy, valid_from, valid_to, changed_by, source, diff) "
               "SELECT id, version + 1, true, type, name, status, owner, tags, attributes, "
               "min_healthy, cmdb_ts($2), cmdb_ts($2), $3, $4, $5::jsonb FROM "
               "configuration_items WHERE id = $1",
               soci::use(ci), soci::use(ts), soci::use(ctx.changed_by), soci::use(ctx.source),
               soci::use(model::ToJsonText(DiffCis(&current, nullptr))));
  sql::Execute(db_, "DELETE FROM configuration_items WHERE id = $1", soci::use(ci));
  tr.Commit();
}

std::vector<HistoryEntry> CiRepository::History(CiId id, int limit,
                                                std::optional<std::int64_t> before_version) {
  const long long ci = id;
  std::vector<HistoryEntry> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kCiVersionColumns +
          ", c.changed_by, c.source, c.deleted, c.diff::text FROM ci_history c WHERE c.ci_id = "
          "$1 AND c.version < $2 ORDER BY c.version DESC LIMIT $3",
      [&](const soci::row& r) {
        ConfigurationItem snapshot = CiFromRow(r);
        HistoryEntry v;
        v.version = snapshot.version;
        v.changed_at = snapshot.updated_at;
        v.changed_by = sql::Text(r, 12);
        v.source = sql::Text(r, 13);
        v.deleted = sql::Bool(r, 14);
        v.diff = sql::IsNull(r, 15) ? DiffCis(nullptr, &snapshot)
                                    : model::ParseJson(sql::Text(r, 15)).as_object();
        out.push_back(std::move(v));
      },
      soci::use(ci), soci::use(static_cast<long long>(before_version.value_or(INT64_MAX))),
      soci::use(limit));
  if (out.empty() && !before_version) {
    bool any = false;
    sql::Run(db_, "SELECT true FROM ci_history WHERE ci_id = $1 LIMIT 1", soci::into(any),
             soci::use(ci));
    if (!any) throw Error(ErrorCode::kNotFound, What(id) + " has no history");
  }
  return out;
}

}  // namespace cmdb::store
