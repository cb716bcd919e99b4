#include "store/relation_type_repository.hpp"

#include "store/sql.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;
using model::RelationType;

namespace {

constexpr const char* kColumns = "name, description, propagation, builtin, cmdb_us(created_at)";

RelationType RelationTypeFromRow(const soci::row& r) {
  RelationType t;
  t.name = sql::Text(r, 0);
  t.description = sql::Text(r, 1);
  t.propagation = model::PropagationFromName(sql::Text(r, 2)).value_or(model::Propagation::kNone);
  t.builtin = sql::Bool(r, 3);
  t.created_at = sql::Time(r, 4);
  return t;
}

}  // namespace

std::vector<RelationType> RelationTypeRepository::List() {
  std::vector<RelationType> out;
  sql::ForEachRow(db_, std::string("SELECT ") + kColumns + " FROM relation_types ORDER BY name",
                  [&](const soci::row& r) { out.push_back(RelationTypeFromRow(r)); });
  return out;
}

RelationType RelationTypeRepository::Create(const RelationType& type) {
  std::optional<RelationType> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO relation_types (name, description, propagation) VALUES ($1, $2, "
                  "$3) ON CONFLICT (name) DO NOTHING RETURNING ") +
          kColumns,
      [&](const soci::row& r) { created = RelationTypeFromRow(r); }, soci::use(type.name),
      soci::use(type.description), soci::use(std::string(PropagationName(type.propagation))));
  if (!created) {
    throw Error(ErrorCode::kAlreadyExists, "relation type '" + type.name + "' already exists");
  }
  return *created;
}

}  // namespace cmdb::store
