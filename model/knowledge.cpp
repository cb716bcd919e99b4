#include "model/knowledge.hpp"

#include <boost/json/value_from.hpp>

#include "model/json.hpp"

namespace cmdb::model {

void tag_invoke(const json::value_from_tag&, json::value& out, ArticleState state) {
  out = ArticleStateName(state);
}

json::object ArticleToJson(const Article& a) {
  return {{"id", a.id},
          {"title", a.title},
          {"body", a.body},
          {"ci_ids", IdsToJson(a.ci_ids)},
          {"state", json::value_from(a.state)},
          {"created_by", a.created_by},
          {"created_by_tier",
           a.created_by_tier ? json::value(*a.created_by_tier) : json::value(nullptr)},
          {"approved_by", a.approved_by ? json::value(*a.approved_by) : json::value(nullptr)},
          {"approved_at", TimestampJson(a.approved_at)},
          {"version", a.version},
          {"created_at", FormatTimestamp(a.created_at)},
          {"updated_at", FormatTimestamp(a.updated_at)}};
}

Article ArticleFromJson(const json::value& body, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "an article is a JSON object");
  CheckFields(*o, {"title", "body", "ci_ids"}, errors);
  Article a;
  a.title = RequiredTitle(*o, errors);
  const json::value* text = o->if_contains("body");
  if (text == nullptr || !text->is_string() || text->get_string().empty() ||
      text->get_string().size() > 1000000) {
    errors.Add("body", "required: a string of 1 to 1000000 characters");
  } else {
    a.body = std::string(text->get_string());
  }
  a.ci_ids = CiIdsFromJson(o->if_contains("ci_ids"), "ci_ids", /*required=*/false, 10000, errors);
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
  return a;
}

}  // namespace cmdb::model
