#pragma once
// Relations in PostgreSQL, versioned like CIs so the graph can be read as of a time.
// Borrows one leased session for one request; not thread-safe.

#include <optional>
#include <vector>

#include "model/ci_repository.hpp"
#include "model/relation.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

struct RelationFilter {
  std::optional<CiId> ci;  // relations from or to this CI
  std::optional<std::string> type;
  RelationId after = 0;
  int limit = kDefaultPageSize;
};

struct RelationPage {
  std::vector<Relation> items;
  std::optional<RelationId> next_after;
};

class RelationRepository {
 public:
  explicit RelationRepository(soci::session& sql) : sql_(sql) {}

  // kValidationFailed naming `type`, `from` or `to` when the type or a CI does not exist;
  // kAlreadyExists when the same (type, from, to) is already recorded.
  Relation Create(const Relation& draft, const WriteContext& ctx);

  std::optional<Relation> FindById(RelationId id);
  RelationPage List(const RelationFilter& filter);

  // kNotFound; kVersionMismatch on a stale If-Match.
  void Delete(RelationId id, std::optional<std::int64_t> if_match, const WriteContext& ctx);

  // Versions newest first; kNotFound when the relation never existed.
  std::vector<CiVersion> History(RelationId id, int limit);

 private:
  soci::session& sql_;
};

}  // namespace cmdb::model
