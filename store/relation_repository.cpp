#include "store/relation_repository.hpp"

#include "model/json.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::CiId;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
using model::HistoryEntry;
using model::Relation;
using model::RelationId;
using model::WriteContext;
namespace json = boost::json;

namespace {

constexpr const char* kRelationColumns =
    "r.id, r.type, r.from_ci, r.to_ci, r.attributes::text, r.version, cmdb_us(r.created_at), "
    "cmdb_us(r.updated_at)";

Relation RelationFromRow(const soci::row& r) {
  Relation rel;
  rel.id = sql::Int(r, 0);
  rel.type = sql::Text(r, 1);
  rel.from = sql::Int(r, 2);
  rel.to = sql::Int(r, 3);
  rel.attributes = model::ParseJson(sql::Text(r, 4)).as_object();
  rel.version = sql::Int(r, 5);
  rel.created_at = sql::Time(r, 6);
  rel.updated_at = sql::Time(r, 7);
  return rel;
}

std::string What(RelationId id) { return "relation " + std::to_string(id); }

// The type and both ends must exist, and stay until the transaction ends (KEY SHARE locks).
void CheckReferences(DbSession& db, const Relation& draft) {
  FieldErrors errors;
  bool type_known = false;
  sql::Run(db, "SELECT true FROM relation_types WHERE name = $1 FOR KEY SHARE",
           soci::into(type_known), soci::use(draft.type));
  if (!type_known) errors.Add("type", "unknown relation type '" + draft.type + "'");
  bool from = false;
  bool to = false;
  const long long from_id = draft.from;
  const long long to_id = draft.to;
  sql::ForEachRow(
      db, "SELECT id FROM configuration_items WHERE id IN ($1, $2) FOR KEY SHARE",
      [&](const soci::row& r) {
        const CiId id = sql::Int(r, 0);
        from = from || id == draft.from;
        to = to || id == draft.to;
      },
      soci::use(from_id), soci::use(to_id));
  if (!from) errors.Add("from", "CI " + std::to_string(draft.from) + " does not exist");
  if (!to) errors.Add("to", "CI " + std::to_string(draft.to) + " does not exist");
  errors.ThrowIfAny("the relation is invalid");
}

}  // namespace

Relation RelationRepository::Create(const Relation& draft, const WriteContext& ctx) {
  // One statement, atomic on its own: the row, which is also its first version (its
  // creation's diff derived by the reader, 0023_relation_current_versions.sql), the ends and
  // the type checked and locked by the relations' statement trigger. Only a refused write pays
  // for the look-ups that name the bad fields (a relation write on the hot path was six round
  // trips).
  std::optional<Relation> created;
  try {
    // Prepared once per connection: the statement is on every relation write's path.
    sql::Prepared(
        db_, "relation_create",
        std::string(
            "WITH now AS (SELECT clock_timestamp() AS t), ins AS (INSERT INTO relations AS r "
            "(type, from_ci, to_ci, attributes, created_at, updated_at, changed_by, source) "
            "SELECT $1, $2::bigint, $3::bigint, $4::jsonb, now.t, now.t, $5, $6 FROM now ON "
            "CONFLICT (from_ci, to_ci, type) DO NOTHING RETURNING r.*) SELECT ") +
            kRelationColumns + " FROM ins r",
        6)
        .ForEach({draft.type, std::to_string(draft.from), std::to_string(draft.to),
                  model::ToJsonText(draft.attributes), ctx.changed_by, ctx.source},
                 [&](const soci::row& r) { created = RelationFromRow(r); });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kFailedPrecondition) throw;
    // The trigger refused an end or the type: say which, field by field.
    Transaction tr(db_);
    CheckReferences(db_, draft);
    throw;
  }
  if (!created) {
    throw Error(ErrorCode::kAlreadyExists, "a " + draft.type + " relation from CI " +
                                               std::to_string(draft.from) + " to CI " +
                                               std::to_string(draft.to) + " already exists");
  }
  return *created;
}

std::optional<Relation> RelationRepository::FindById(RelationId id) {
  std::optional<Relation> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE r.id = $1",
      [&](const soci::row& r) { found = RelationFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

RelationPage RelationRepository::List(const RelationFilter& filter) {
  sql::Params params;
  std::string where = "r.id > " + params.Add(filter.after);
  if (filter.ci) {
    const std::string ci = params.Add(*filter.ci);
    where += " AND (r.from_ci = " + ci + " OR r.to_ci = " + ci + ")";
  }
  if (filter.type) where += " AND r.type = " + params.Add(*filter.type);
  RelationPage page;
  bool more = false;
  sql::ForEachRow(db_,
                  std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE " + where +
                      " ORDER BY r.id LIMIT " + std::to_string(filter.limit + 1),
                  params, [&](const soci::row& r) {
                    if (static_cast<int>(page.items.size()) < filter.limit) {
                      page.items.push_back(RelationFromRow(r));
                    } else {
                      more = true;
                    }
                  });
  if (more && !page.items.empty()) page.next_after = page.items.back().id;
  return page;
}

void RelationRepository::Delete(RelationId id, std::optional<std::int64_t> if_match,
                                const WriteContext& ctx) {
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE r.id = $1 FOR UPDATE";
  LockVersioned(db_, lock, std::to_string(id), if_match, What(id), RelationFromRow);
  sql::Execute(db_,
               // The relation's current version (its own row) ends, and a tombstone follows
               // (0023_relation_current_versions.sql).
               "WITH gone AS (DELETE FROM relations WHERE id = $1 RETURNING *), "
               "now AS (SELECT greatest(clock_timestamp(), (SELECT updated_at FROM gone)) AS t) "
               "INSERT INTO relation_versions (relation_id, version, deleted, type, from_ci, "
               "to_ci, attributes, valid_from, valid_to, changed_by, source, diff) SELECT id, "
               "version, false, type, from_ci, to_ci, attributes, updated_at, now.t, changed_by, "
               "source, diff FROM gone, now UNION ALL SELECT id, version + 1, true, type, "
               "from_ci, to_ci, attributes, now.t, now.t, $2, $3, jsonb_build_object('deleted', "
               "jsonb_build_object('old', false, 'new', true)) FROM gone, now",
               soci::use(static_cast<long long>(id)), soci::use(ctx.changed_by),
               soci::use(ctx.source));
  tr.Commit();
}

std::vector<HistoryEntry> RelationRepository::History(RelationId id, int limit,
                                                      std::optional<std::int64_t> before_version) {
  const long long relation = id;
  std::vector<HistoryEntry> out;
  sql::ForEachRow(
      db_,
      // A NULL diff is a creation written by an import: every field from null to the
      // version's own value (0015_relation_checks_per_statement.sql).
      "SELECT version, cmdb_us(valid_from), changed_by, source, deleted, coalesce(diff, "
      "jsonb_build_object('type', jsonb_build_object('old', NULL, 'new', type), 'from', "
      "jsonb_build_object('old', NULL, 'new', from_ci), 'to', jsonb_build_object('old', NULL, "
      "'new', to_ci)) || coalesce((SELECT jsonb_object_agg(k, jsonb_build_object('old', NULL, "
      "'new', v)) FROM jsonb_each(attributes) AS a(k, v)), '{}'::jsonb))::text FROM "
      "relation_history WHERE relation_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
      [&](const soci::row& r) {
        HistoryEntry v;
        v.version = sql::Int(r, 0);
        v.changed_at = sql::Time(r, 1);
        v.changed_by = sql::Text(r, 2);
        v.source = sql::Text(r, 3);
        v.deleted = sql::Bool(r, 4);
        v.diff = model::ParseJson(sql::Text(r, 5)).as_object();
        out.push_back(std::move(v));
      },
      soci::use(relation), soci::use(static_cast<long long>(before_version.value_or(INT64_MAX))),
      soci::use(limit));
  if (out.empty() && !before_version) {
    throw Error(ErrorCode::kNotFound, What(id) + " has no history");
  }
  return out;
}

}  // namespace cmdb::store
