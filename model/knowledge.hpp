#pragma once
// Knowledge articles: what staff learnt about CIs, shown in incident traces once a group lead
// approved them (draft -> approved). Value types and pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>

#include "model/configuration_item.hpp"
#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

enum class ArticleState { kDraft, kApproved };
inline constexpr std::array<EnumName<ArticleState>, 2> kArticleStateNames{{
    {ArticleState::kDraft, "draft"},
    {ArticleState::kApproved, "approved"},
}};
inline std::string_view ArticleStateName(ArticleState s) { return NameIn(kArticleStateNames, s); }
inline std::optional<ArticleState> ArticleStateFromName(std::string_view name) {
  return ValueIn(kArticleStateNames, name);
}
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, ArticleState state);

struct Article {
  std::int64_t id = 0;
  std::string title;
  std::string body;
  std::vector<CiId> ci_ids;
  ArticleState state = ArticleState::kDraft;
  std::string created_by;
  std::optional<int> created_by_tier;  // the line of who wrote it, whose lead approves it
  std::optional<std::string> approved_by;
  std::optional<Timestamp> approved_at;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object ArticleToJson(const Article& article);

// Reads {"title", "body", "ci_ids"}. Every problem goes to `errors`; whether the CIs exist is
// the store's to check. Throws Error{kInvalidArgument} when `body` is not an object.
Article ArticleFromJson(const boost::json::value& body, FieldErrors& errors);

}  // namespace cmdb::model
