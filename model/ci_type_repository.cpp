#include "model/ci_type_repository.hpp"

#include <soci/soci.h>

#include "model/configuration_item.hpp"
#include "model/db_errors.hpp"
#include "model/db_query.hpp"
#include "model/json.hpp"

namespace cmdb::model {
namespace {

constexpr const char* kTypeColumns =
    "name, description, attributes::text, identify_by::text, version, cmdb_us(created_at), "
    "cmdb_us(updated_at)";

CiType TypeFromRow(const PgResult& r, int row) {
  json::object doc;
  doc["name"] = r.Text(row, 0);
  doc["description"] = r.Text(row, 1);
  doc["attributes"] = ParseJson(r.Text(row, 2));
  doc["identify_by"] = ParseJson(r.Text(row, 3));
  CiType type = ParseCiType(doc);
  type.version = r.Int(row, 4);
  type.created_at = Timestamp{r.Int(row, 5)};
  type.updated_at = Timestamp{r.Int(row, 6)};
  return type;
}

RelationType RelationTypeFromRow(const PgResult& r, int row) {
  RelationType t;
  t.name = r.Text(row, 0);
  t.description = r.Text(row, 1);
  t.propagation = PropagationFromName(r.Text(row, 2)).value_or(Propagation::kNone);
  t.builtin = r.Bool(row, 3);
  t.created_at = Timestamp{r.Int(row, 4)};
  return t;
}

void CheckVersion(std::optional<std::int64_t> if_match, std::int64_t current,
                  const std::string& what) {
  if (if_match && *if_match != current) {
    throw Error(ErrorCode::kVersionMismatch, what + " is at version " + std::to_string(current) +
                                                 ", not " + std::to_string(*if_match));
  }
}

}  // namespace

std::vector<CiType> CiTypeRepository::List() {
  PgResult r = Query(sql_, std::string("SELECT ") + kTypeColumns + " FROM ci_types ORDER BY name");
  std::vector<CiType> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(TypeFromRow(r, i));
  return out;
}

std::optional<CiType> CiTypeRepository::Find(std::string_view name, bool lock_shared) {
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kTypeColumns + " FROM ci_types WHERE name = $1" +
                         (lock_shared ? " FOR SHARE" : ""),
                     {P(name)});
  if (r.rows() == 0) return std::nullopt;
  return TypeFromRow(r, 0);
}

CiType CiTypeRepository::Create(const CiType& type) {
  PgResult r = Query(sql_,
                     std::string("INSERT INTO ci_types (name, description, attributes, "
                                 "identify_by) VALUES ($1, $2, $3::jsonb, $4::jsonb) "
                                 "ON CONFLICT (name) DO NOTHING RETURNING ") +
                         kTypeColumns,
                     {P(type.name), P(type.description), ToJsonText(AttributesToJson(type)),
                      ToJsonText(IdentifyByToJson(type))});
  if (r.rows() == 0) {
    throw Error(ErrorCode::kAlreadyExists, "CI type '" + type.name + "' already exists");
  }
  return TypeFromRow(r, 0);
}

CiType CiTypeRepository::Replace(const CiType& type, std::optional<std::int64_t> if_match) {
  try {
    Transaction tr(sql_);
    PgResult current =
        Query(sql_, "SELECT version FROM ci_types WHERE name = $1 FOR UPDATE", {P(type.name)});
    if (current.rows() == 0) {
      throw Error(ErrorCode::kNotFound, "CI type '" + type.name + "' does not exist");
    }
    CheckVersion(if_match, current.Int(0, 0), "CI type '" + type.name + "'");
    // Every CI of the type must still be valid. Streamed in batches by id so a large type
    // does not have to fit in memory at once.
    FieldErrors offenders;
    std::int64_t after = 0;
    constexpr int kBatch = 5000;
    while (offenders.size() < 20) {
      PgResult batch = Query(sql_,
                             "SELECT id, attributes::text FROM configuration_items WHERE type = "
                             "$1 AND id > $2 ORDER BY id LIMIT " +
                                 std::to_string(kBatch),
                             {P(type.name), P(after)});
      for (int i = 0; i < batch.rows(); ++i) {
        FieldErrors ci_errors;
        ValidateAttributes(type, ParseJson(batch.Text(i, 1)).as_object(), ci_errors);
        if (!ci_errors.empty()) {
          const FieldError& first = ci_errors.items().front();
          offenders.Add("cis[" + std::string(batch.Text(i, 0)) + "]." + first.field, first.message);
        }
      }
      if (batch.rows() < kBatch) break;
      after = batch.Int(batch.rows() - 1, 0);
    }
    if (!offenders.empty()) {
      throw Error(ErrorCode::kConflict,
                  "existing CIs of type '" + type.name +
                      "' do not satisfy the new definition; fix them first",
                  offenders.Take());
    }
    PgResult r = Query(sql_,
                       std::string("UPDATE ci_types SET description = $2, attributes = $3::jsonb,"
                                   " identify_by = $4::jsonb, version = version + 1, updated_at ="
                                   " clock_timestamp() WHERE name = $1 RETURNING ") +
                           kTypeColumns,
                       {P(type.name), P(type.description), ToJsonText(AttributesToJson(type)),
                        ToJsonText(IdentifyByToJson(type))});
    CiType updated = TypeFromRow(r, 0);
    tr.Commit();
    return updated;
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

void CiTypeRepository::Delete(std::string_view name, std::optional<std::int64_t> if_match) {
  try {
    Transaction tr(sql_);
    PgResult current =
        Query(sql_, "SELECT version FROM ci_types WHERE name = $1 FOR UPDATE", {P(name)});
    if (current.rows() == 0) {
      throw Error(ErrorCode::kNotFound, "CI type '" + std::string(name) + "' does not exist");
    }
    CheckVersion(if_match, current.Int(0, 0), "CI type '" + std::string(name) + "'");
    PgResult in_use = Query(sql_,
                            "SELECT (SELECT count(*) FROM configuration_items WHERE type = $1), "
                            "EXISTS (SELECT 1 FROM ci_versions WHERE type = $1)",
                            {P(name)});
    if (in_use.Int(0, 0) > 0) {
      throw Error(ErrorCode::kConflict, "CI type '" + std::string(name) + "' is used by " +
                                            std::string(in_use.Text(0, 0)) +
                                            " CIs; delete or retire them first");
    }
    if (in_use.Bool(0, 1)) {
      throw Error(ErrorCode::kConflict,
                  "CI type '" + std::string(name) +
                      "' appears in the history of deleted CIs and is kept so that history "
                      "stays readable");
    }
    Query(sql_, "DELETE FROM ci_types WHERE name = $1", {P(name)});
    tr.Commit();
  } catch (const soci::soci_error& e) {
    ThrowDbError(e);
  }
}

std::vector<RelationType> CiTypeRepository::ListRelationTypes() {
  PgResult r = Query(sql_,
                     "SELECT name, description, propagation, builtin, cmdb_us(created_at) FROM "
                     "relation_types ORDER BY name");
  std::vector<RelationType> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(RelationTypeFromRow(r, i));
  return out;
}

std::optional<RelationType> CiTypeRepository::FindRelationType(std::string_view name) {
  PgResult r = Query(sql_,
                     "SELECT name, description, propagation, builtin, cmdb_us(created_at) FROM "
                     "relation_types WHERE name = $1",
                     {P(name)});
  if (r.rows() == 0) return std::nullopt;
  return RelationTypeFromRow(r, 0);
}

RelationType CiTypeRepository::CreateRelationType(const RelationType& type) {
  PgResult r = Query(sql_,
                     "INSERT INTO relation_types (name, description, propagation) VALUES ($1, "
                     "$2, $3) ON CONFLICT (name) DO NOTHING RETURNING name, description, "
                     "propagation, builtin, cmdb_us(created_at)",
                     {P(type.name), P(type.description), P(PropagationName(type.propagation))});
  if (r.rows() == 0) {
    throw Error(ErrorCode::kAlreadyExists, "relation type '" + type.name + "' already exists");
  }
  return RelationTypeFromRow(r, 0);
}

}  // namespace cmdb::model
