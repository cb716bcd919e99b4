#pragma once
// CI types in PostgreSQL: the attribute schema every CI of a type is validated against. A
// repository borrows one session for the duration of a request; not thread-safe.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "model/ci_type.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

class CiTypeRepository {
 public:
  explicit CiTypeRepository(DbSession& db) : db_(db) {}

  std::vector<model::CiType> List();

  // The type, or nullopt when there is none of that name. `lock_shared` takes a FOR SHARE
  // lock so the schema cannot change until the caller's transaction ends.
  std::optional<model::CiType> Find(std::string_view name, bool lock_shared = false);

  // Throws kAlreadyExists when the name is taken.
  model::CiType Create(const model::CiType& type);

  // Replaces a type's definition. Every existing CI of the type must satisfy the new schema,
  // else kConflict listing the first offenders; kNotFound; kVersionMismatch on a stale If-Match.
  model::CiType Replace(const model::CiType& type, std::optional<std::int64_t> if_match);

  // kNotFound; kConflict while any CI (or any version in history) uses the type.
  void Delete(std::string_view name, std::optional<std::int64_t> if_match);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
