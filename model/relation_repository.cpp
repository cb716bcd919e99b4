#include "model/relation_repository.hpp"

#include <soci/soci.h>

#include "model/db_errors.hpp"
#include "model/db_query.hpp"
#include "model/json.hpp"

namespace cmdb::model {
namespace {

constexpr const char* kRelationColumns =
    "r.id, r.type, r.from_ci, r.to_ci, r.attributes::text, r.version, cmdb_us(r.created_at), "
    "cmdb_us(r.updated_at)";

Relation RelationFromRow(const PgResult& r, int row) {
  Relation rel;
  rel.id = r.Int(row, 0);
  rel.type = r.Text(row, 1);
  rel.from = r.Int(row, 2);
  rel.to = r.Int(row, 3);
  rel.attributes = ParseJson(r.Text(row, 4)).as_object();
  rel.version = r.Int(row, 5);
  rel.created_at = Timestamp{r.Int(row, 6)};
  rel.updated_at = Timestamp{r.Int(row, 7)};
  return rel;
}

}  // namespace

Relation RelationRepository::Create(const Relation& draft, const WriteContext& ctx) {
  try {
    Transaction tr(sql_);
    FieldErrors errors;
    PgResult type =
        Query(sql_, "SELECT 1 FROM relation_types WHERE name = $1 FOR KEY SHARE", {P(draft.type)});
    if (type.rows() == 0) errors.Add("type", "unknown relation type '" + draft.type + "'");
    PgResult ends =
        Query(sql_, "SELECT id FROM configuration_items WHERE id IN ($1, $2) FOR KEY SHARE",
              {P(draft.from), P(draft.to)});
    auto present = [&](CiId id) {
      for (int i = 0; i < ends.rows(); ++i) {
        if (ends.Int(i, 0) == id) return true;
      }
      return false;
    };
    if (!present(draft.from))
      errors.Add("from", "CI " + std::to_string(draft.from) + " does not exist");
    if (!present(draft.to)) errors.Add("to", "CI " + std::to_string(draft.to) + " does not exist");
    errors.ThrowIfAny("the relation is invalid");
    PgResult r = Query(
        sql_,
        std::string("WITH now AS (SELECT clock_timestamp() AS t) INSERT INTO relations AS r "
                    "(type, from_ci, to_ci, attributes, created_at, updated_at) SELECT $1, $2, $3,"
                    " $4::jsonb, now.t, now.t FROM now ON CONFLICT (type, from_ci, to_ci) DO "
                    "NOTHING RETURNING ") +
            kRelationColumns,
        {P(draft.type), P(draft.from), P(draft.to), ToJsonText(draft.attributes)});
    if (r.rows() == 0) {
      throw Error(ErrorCode::kAlreadyExists, "a " + draft.type + " relation from CI " +
                                                 std::to_string(draft.from) + " to CI " +
                                                 std::to_string(draft.to) + " already exists");
    }
    Relation created = RelationFromRow(r, 0);
    json::object diff{{"type", {{"old", nullptr}, {"new", created.type}}},
                      {"from", {{"old", nullptr}, {"new", created.from}}},
                      {"to", {{"old", nullptr}, {"new", created.to}}}};
    for (const auto& [key, value] : created.attributes) {
      diff[key] = json::object{{"old", nullptr}, {"new", value}};
    }
    Query(sql_,
          "INSERT INTO relation_versions (relation_id, version, type, from_ci, to_ci, attributes,"
          " valid_from, changed_by, source, diff) SELECT id, version, type, from_ci, to_ci, "
          "attributes, updated_at, $2, $3, $4::jsonb FROM relations WHERE id = $1",
          {P(created.id), P(ctx.changed_by), P(ctx.source), ToJsonText(diff)});
    tr.Commit();
    return created;
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

std::optional<Relation> RelationRepository::FindById(RelationId id) {
  PgResult r =
      Query(sql_, std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE r.id = $1",
            {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return RelationFromRow(r, 0);
}

RelationPage RelationRepository::List(const RelationFilter& filter) {
  PgParams params{P(filter.after)};
  std::string where = "r.id > $1";
  if (filter.ci) {
    params.push_back(P(*filter.ci));
    where += " AND (r.from_ci = $2 OR r.to_ci = $2)";
  }
  if (filter.type) {
    params.push_back(P(*filter.type));
    where += " AND r.type = $" + std::to_string(params.size());
  }
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE " +
                         where + " ORDER BY r.id LIMIT " + std::to_string(filter.limit + 1),
                     params);
  RelationPage page;
  for (int i = 0; i < r.rows() && i < filter.limit; ++i)
    page.items.push_back(RelationFromRow(r, i));
  if (r.rows() > filter.limit && !page.items.empty()) page.next_after = page.items.back().id;
  return page;
}

void RelationRepository::Delete(RelationId id, std::optional<std::int64_t> if_match,
                                const WriteContext& ctx) {
  try {
    Transaction tr(sql_);
    PgResult r = Query(
        sql_,
        std::string("SELECT ") + kRelationColumns + " FROM relations r WHERE r.id = $1 FOR UPDATE",
        {P(id)});
    if (r.rows() == 0) {
      throw Error(ErrorCode::kNotFound, "relation " + std::to_string(id) + " does not exist");
    }
    Relation current = RelationFromRow(r, 0);
    if (if_match && *if_match != current.version) {
      throw Error(ErrorCode::kVersionMismatch,
                  "relation " + std::to_string(id) + " is at version " +
                      std::to_string(current.version) + ", not " + std::to_string(*if_match));
    }
    Query(sql_,
          "WITH gone AS (DELETE FROM relations WHERE id = $1 RETURNING *), "
          "now AS (SELECT greatest(clock_timestamp(), (SELECT updated_at FROM gone)) AS t), "
          "closed AS (UPDATE relation_versions v SET valid_to = now.t FROM now "
          "WHERE v.relation_id = $1 AND v.valid_to IS NULL) "
          "INSERT INTO relation_versions (relation_id, version, deleted, type, from_ci, to_ci, "
          "attributes, valid_from, valid_to, changed_by, source, diff) SELECT id, version + 1, "
          "true, type, from_ci, to_ci, attributes, now.t, now.t, $2, $3, "
          "jsonb_build_object('deleted', jsonb_build_object('old', false, 'new', true)) "
          "FROM gone, now",
          {P(id), P(ctx.changed_by), P(ctx.source)});
    tr.Commit();
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

std::vector<CiVersion> RelationRepository::History(RelationId id, int limit) {
  PgResult r = Query(sql_,
                     "SELECT version, cmdb_us(valid_from), changed_by, source, deleted, "
                     "diff::text FROM relation_versions WHERE relation_id = $1 "
                     "ORDER BY version DESC LIMIT $2",
                     {P(id), P(limit)});
  if (r.rows() == 0) {
    throw Error(ErrorCode::kNotFound, "relation " + std::to_string(id) + " has no history");
  }
  std::vector<CiVersion> out;
  for (int i = 0; i < r.rows(); ++i) {
    CiVersion v;
    v.version = r.Int(i, 0);
    v.changed_at = Timestamp{r.Int(i, 1)};
    v.changed_by = r.Text(i, 2);
    v.source = r.Text(i, 3);
    v.deleted = r.Bool(i, 4);
    v.diff = ParseJson(r.Text(i, 5)).as_object();
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cmdb::model
