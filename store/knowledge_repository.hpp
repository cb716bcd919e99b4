#pragma once
// Knowledge articles in PostgreSQL. A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/history.hpp"
#include "model/knowledge.hpp"
#include "model/paging.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct ArticleFilter {
  std::optional<std::string> q;  // words, all of which must appear in title or body
  std::optional<model::ArticleState> state;
  std::optional<model::CiId> ci;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

class KnowledgeRepository {
 public:
  explicit KnowledgeRepository(DbSession& db) : db_(db) {}

  // Adds to `errors` the CIs of `draft` that do not exist.
  void Validate(const model::Article& draft, model::FieldErrors& errors);
  model::Article Create(const model::Article& draft, const model::WriteContext& ctx);
  std::optional<model::Article> Find(std::int64_t id);
  std::vector<model::Article> List(const ArticleFilter& filter);  // up to limit + 1
  // draft -> approved; kConflict when already approved; kNotFound; kVersionMismatch;
  // kPermissionDenied when the approver wrote it, or `lead_tier` (nullopt: any line) is not
  // the line of who wrote it.
  model::Article Approve(std::int64_t id, std::optional<std::int64_t> if_match,
                         const model::WriteContext& ctx, std::optional<int> lead_tier);
  // Approved articles that name at least one CI, in id order: id, title and CIs only (bodies
  // can be large).
  std::vector<model::Article> ApprovedWithCis();

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
