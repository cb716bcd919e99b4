#include "store/knowledge_repository.hpp"

#include "store/ci_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::Article;
using model::ArticleState;
using model::Error;
using model::ErrorCode;
using model::WriteContext;

namespace {

const char* const kArticleColumns =
    "id, title, body, ci_ids::text, state, approved_by, cmdb_us(approved_at), "
    "version, cmdb_us(created_at), cmdb_us(updated_at), created_by, created_by_tier";

Article ArticleFromRow(const soci::row& r) {
  Article a;
  a.id = sql::Int(r, 0);
  a.title = sql::Text(r, 1);
  a.body = sql::Text(r, 2);
  a.ci_ids = sql::Ids(r, 3);
  const std::string state = sql::Text(r, 4);
  a.state = model::ArticleStateFromName(state).value_or(ArticleState::kDraft);
  a.approved_by = sql::OptionalText(r, 5);
  a.approved_at = sql::OptionalTime(r, 6);
  a.version = sql::Int(r, 7);
  a.created_at = sql::Time(r, 8);
  a.updated_at = sql::Time(r, 9);
  a.created_by = sql::Text(r, 10);
  if (auto tier = sql::OptionalInt(r, 11)) a.created_by_tier = static_cast<int>(*tier);
  return a;
}

std::string What(std::int64_t id) { return "article " + std::to_string(id); }

}  // namespace

void KnowledgeRepository::Validate(const Article& draft, model::FieldErrors& errors) {
  CiRepository(db_).CheckExist(draft.ci_ids, "ci_ids", errors);
}

Article KnowledgeRepository::Create(const Article& draft, const WriteContext& ctx) {
  std::optional<Article> created;
  const std::optional<int> tier = draft.created_by_tier;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO knowledge_articles (title, body, ci_ids, created_by, "
                  "created_by_tier) VALUES ($1, $2, $3::bigint[], $4, $5) RETURNING ") +
          kArticleColumns,
      [&](const soci::row& r) { created = ArticleFromRow(r); }, soci::use(draft.title),
      soci::use(draft.body), soci::use(sql::IdArray(draft.ci_ids)), soci::use(ctx.changed_by),
      soci::use(tier));
  return *created;
}

std::optional<Article> KnowledgeRepository::Find(std::int64_t id) {
  std::optional<Article> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kArticleColumns + " FROM knowledge_articles WHERE id = $1",
      [&](const soci::row& r) { found = ArticleFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<Article> KnowledgeRepository::List(const ArticleFilter& f) {
  const std::optional<std::string> state =
      f.state ? std::optional(std::string(model::ArticleStateName(*f.state))) : std::nullopt;
  const std::optional<long long> ci = f.ci;
  std::vector<Article> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kArticleColumns +
          " FROM knowledge_articles WHERE id > $1 AND ($2::text IS NULL OR search @@ "
          "plainto_tsquery('simple', $2)) AND ($3::text IS NULL OR state = $3) AND ($4::bigint "
          "IS NULL OR ci_ids @> ARRAY[$4::bigint]) ORDER BY id LIMIT $5",
      [&](const soci::row& r) { out.push_back(ArticleFromRow(r)); },
      soci::use(static_cast<long long>(f.after)), soci::use(f.q), soci::use(state), soci::use(ci),
      soci::use(f.limit + 1));
  return out;
}

Article KnowledgeRepository::Approve(std::int64_t id, std::optional<std::int64_t> if_match,
                                     const WriteContext& ctx, std::optional<int> lead_tier) {
  Transaction tr(db_);
  static const std::string lock = std::string("SELECT ") + kArticleColumns +
                                  " FROM knowledge_articles WHERE id = $1 FOR UPDATE";
  const Article a =
      LockVersioned(db_, lock, std::to_string(id), if_match, What(id), ArticleFromRow);
  if (a.state != ArticleState::kDraft) {
    throw Error(ErrorCode::kConflict, What(id) + " is already approved");
  }
  if (a.created_by == ctx.changed_by) {
    throw Error(ErrorCode::kPermissionDenied, "no one approves their own article: " + What(id) +
                                                  " was written by '" + a.created_by + "'");
  }
  if (lead_tier && a.created_by_tier != lead_tier) {
    throw Error(ErrorCode::kPermissionDenied,
                What(id) + " was written by '" + a.created_by + "' of " +
                    (a.created_by_tier ? "tier " + std::to_string(*a.created_by_tier)
                                       : std::string("no tier")) +
                    "; a group lead approves only the knowledge of their own tier (" +
                    std::to_string(*lead_tier) + ")");
  }
  std::optional<Article> approved;
  sql::ForEachRow(
      db_,
      std::string("UPDATE knowledge_articles SET state = 'approved', approved_by = $2, "
                  "approved_at = clock_timestamp(), version = version + 1, updated_at = "
                  "clock_timestamp() WHERE id = $1 RETURNING ") +
          kArticleColumns,
      [&](const soci::row& r) { approved = ArticleFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(ctx.changed_by));
  tr.Commit();
  return *approved;
}

std::vector<Article> KnowledgeRepository::ApprovedWithCis() {
  std::vector<Article> out;
  sql::ForEachRow(db_,
                  "SELECT id, title, ci_ids::text FROM knowledge_articles WHERE state = "
                  "'approved' AND cardinality(ci_ids) > 0 ORDER BY id",
                  [&](const soci::row& r) {
                    Article a;
                    a.id = sql::Int(r, 0);
                    a.title = sql::Text(r, 1);
                    a.ci_ids = sql::Ids(r, 2);
                    a.state = ArticleState::kApproved;
                    out.push_back(std::move(a));
                  });
  return out;
}

}  // namespace cmdb::store
