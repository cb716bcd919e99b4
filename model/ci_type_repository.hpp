#pragma once
// CI types and relation types in PostgreSQL. A repository borrows one leased session for the
// duration of a request; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/ci_type.hpp"
#include "model/relation.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

class CiTypeRepository {
 public:
  explicit CiTypeRepository(soci::session& sql) : sql_(sql) {}

  std::vector<CiType> List();

  // The type, or nullopt when there is none of that name. `lock_shared` takes a FOR SHARE
  // lock so the schema cannot change until the caller's transaction ends.
  std::optional<CiType> Find(std::string_view name, bool lock_shared = false);

  // Throws kAlreadyExists when the name is taken.
  CiType Create(const CiType& type);

  // Replaces a type's definition. Every existing CI of the type must satisfy the new schema,
  // else kConflict listing the first offenders; kNotFound; kVersionMismatch on a stale If-Match.
  CiType Replace(const CiType& type, std::optional<std::int64_t> if_match);

  // kNotFound; kConflict while any CI (or any version in history) uses the type.
  void Delete(std::string_view name, std::optional<std::int64_t> if_match);

  std::vector<RelationType> ListRelationTypes();
  std::optional<RelationType> FindRelationType(std::string_view name);
  RelationType CreateRelationType(const RelationType& type);  // kAlreadyExists

 private:
  soci::session& sql_;
};

}  // namespace cmdb::model
