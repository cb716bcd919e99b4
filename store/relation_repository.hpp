#pragma once
// Relations in PostgreSQL, versioned like CIs so the graph can be read as of a time.
// Borrows one leased session for one request; not thread-safe.

#include <optional>
#include <vector>

#include "model/relation.hpp"
#include "store/ci_repository.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct RelationFilter {
  std::optional<model::CiId> ci;  // relations from or to this CI
  std::optional<std::string> type;
  model::RelationId after = 0;
  int limit = model::kDefaultPageSize;
};

struct RelationPage {
  std::vector<model::Relation> items;
  std::optional<model::RelationId> next_after;
};

class RelationRepository {
 public:
  explicit RelationRepository(DbSession& db) : db_(db) {}

  // kValidationFailed naming `type`, `from` or `to` when the type or a CI does not exist;
  // kAlreadyExists when the same (type, from, to) is already recorded.
  model::Relation Create(const model::Relation& draft, const model::WriteContext& ctx);

  std::optional<model::Relation> FindById(model::RelationId id);
  RelationPage List(const RelationFilter& filter);

  // kNotFound; kVersionMismatch on a stale If-Match.
  void Delete(model::RelationId id, std::optional<std::int64_t> if_match,
              const model::WriteContext& ctx);

  // Versions newest first, at most `limit`, older than `before_version` when given;
  // kNotFound when the relation never existed.
  std::vector<model::HistoryEntry> History(model::RelationId id, int limit,
                                           std::optional<std::int64_t> before_version);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
