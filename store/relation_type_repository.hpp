#pragma once
// Relation types in PostgreSQL: how failure propagates along each kind of relation. Borrows
// one session; not thread-safe.

#include <vector>

#include "model/relation.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

class RelationTypeRepository {
 public:
  explicit RelationTypeRepository(DbSession& db) : db_(db) {}

  std::vector<model::RelationType> List();
  model::RelationType Create(const model::RelationType& type);  // kAlreadyExists

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
