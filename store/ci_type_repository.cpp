#include "store/ci_type_repository.hpp"

#include "model/json.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::CiType;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
namespace json = boost::json;

namespace {

constexpr const char* kTypeColumns =
    "name, description, attributes::text, identify_by::text, version, cmdb_us(created_at), "
    "cmdb_us(updated_at)";

CiType TypeFromRow(const soci::row& r) {
  json::object doc;
  doc["name"] = sql::Text(r, 0);
  doc["description"] = sql::Text(r, 1);
  doc["attributes"] = model::ParseJson(sql::Text(r, 2));
  doc["identify_by"] = model::ParseJson(sql::Text(r, 3));
  CiType type = model::ParseCiType(doc);
  type.version = sql::Int(r, 4);
  type.created_at = sql::Time(r, 5);
  type.updated_at = sql::Time(r, 6);
  return type;
}

std::string What(std::string_view name) { return "CI type '" + std::string(name) + "'"; }

CiType LockType(DbSession& db, std::string_view name, std::optional<std::int64_t> if_match) {
  static const std::string query =
      std::string("SELECT ") + kTypeColumns + " FROM ci_types WHERE name = $1 FOR UPDATE";
  return LockVersioned(db, query, std::string(name), if_match, What(name), TypeFromRow);
}

// The first CIs of `type` (at most 20) whose attributes do not satisfy its definition, each
// with its first problem. Streamed in batches by id so a large type does not have to fit in
// memory at once.
FieldErrors Offenders(DbSession& db, const CiType& type) {
  FieldErrors offenders;
  long long after = 0;
  constexpr int kBatch = 5000;
  while (offenders.size() < 20) {
    int rows = 0;
    sql::ForEachRow(
        db,
        "SELECT id, attributes::text FROM configuration_items WHERE type = $1 AND id > $2 "
        "ORDER BY id LIMIT " +
            std::to_string(kBatch),
        [&](const soci::row& r) {
          ++rows;
          after = sql::Int(r, 0);
          FieldErrors ci_errors;
          ValidateAttributes(type, model::ParseJson(sql::Text(r, 1)).as_object(), ci_errors);
          if (!ci_errors.empty()) {
            const model::FieldError& first = ci_errors.items().front();
            offenders.Add("cis[" + std::to_string(after) + "]." + first.field, first.message);
          }
        },
        soci::use(type.name), soci::use(after));
    if (rows < kBatch) break;
  }
  return offenders;
}

}  // namespace

std::vector<CiType> CiTypeRepository::List() {
  std::vector<CiType> out;
  sql::ForEachRow(db_, std::string("SELECT ") + kTypeColumns + " FROM ci_types ORDER BY name",
                  [&](const soci::row& r) { out.push_back(TypeFromRow(r)); });
  return out;
}

std::optional<CiType> CiTypeRepository::Find(std::string_view name, bool lock_shared) {
  std::optional<CiType> type;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kTypeColumns + " FROM ci_types WHERE name = $1" +
          (lock_shared ? " FOR SHARE" : ""),
      [&](const soci::row& r) { type = TypeFromRow(r); }, soci::use(std::string(name)));
  return type;
}

CiType CiTypeRepository::Create(const CiType& type) {
  std::optional<CiType> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO ci_types (name, description, attributes, identify_by) VALUES "
                  "($1, $2, $3::jsonb, $4::jsonb) ON CONFLICT (name) DO NOTHING RETURNING ") +
          kTypeColumns,
      [&](const soci::row& r) { created = TypeFromRow(r); }, soci::use(type.name),
      soci::use(type.description), soci::use(model::ToJsonText(AttributesToJson(type))),
      soci::use(model::ToJsonText(IdentifyByToJson(type))));
  if (!created) throw Error(ErrorCode::kAlreadyExists, What(type.name) + " already exists");
  return *created;
}

CiType CiTypeRepository::Replace(const CiType& type, std::optional<std::int64_t> if_match) {
  Transaction tr(db_);
  LockType(db_, type.name, if_match);
  FieldErrors offenders = Offenders(db_, type);
  if (!offenders.empty()) {
    throw Error(ErrorCode::kConflict,
                "existing CIs of type '" + type.name +
                    "' do not satisfy the new definition; fix them first",
                offenders.Take());
  }
  std::optional<CiType> updated;
  sql::ForEachRow(
      db_,
      std::string("UPDATE ci_types SET description = $2, attributes = $3::jsonb, identify_by = "
                  "$4::jsonb, version = version + 1, updated_at = clock_timestamp() WHERE name "
                  "= $1 RETURNING ") +
          kTypeColumns,
      [&](const soci::row& r) { updated = TypeFromRow(r); }, soci::use(type.name),
      soci::use(type.description), soci::use(model::ToJsonText(AttributesToJson(type))),
      soci::use(model::ToJsonText(IdentifyByToJson(type))));
  tr.Commit();
  return *updated;
}

void CiTypeRepository::Delete(std::string_view name, std::optional<std::int64_t> if_match) {
  Transaction tr(db_);
  LockType(db_, name, if_match);
  const std::string type(name);
  long long in_use = 0;
  bool in_history = false;
  sql::Run(db_,
           "SELECT (SELECT count(*) FROM configuration_items WHERE type = $1), "
           "EXISTS (SELECT 1 FROM ci_versions WHERE type = $1)",
           soci::into(in_use), soci::into(in_history), soci::use(type));
  if (in_use > 0) {
    throw Error(ErrorCode::kConflict, What(name) + " is used by " + std::to_string(in_use) +
                                          " CIs; delete or retire them first");
  }
  if (in_history) {
    throw Error(ErrorCode::kConflict,
                What(name) +
                    " appears in the history of deleted CIs and is kept so that history "
                    "stays readable");
  }
  sql::Execute(db_, "DELETE FROM ci_types WHERE name = $1", soci::use(type));
  tr.Commit();
}

}  // namespace cmdb::store
