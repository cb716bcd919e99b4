#include "model/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "model/error.hpp"

namespace cmdb::model {

json::value ParseJson(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  options.allow_invalid_utf8 = false;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec, {}, options);
  if (ec) {
    std::string reason = ec.message();
    if (ec == json::error::too_deep) {
      reason = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    } else if (ec == json::error::syntax || ec == json::error::incomplete) {
      reason = ec.message();
    }
    throw Error(ErrorCode::kInvalidArgument, "request body is not valid JSON: " + reason);
  }
  return value;
}

std::string_view KindName(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "unknown";
}

std::string ToJsonText(const json::value& value) { return json::serialize(value); }

json::value MergePatch(const json::value& target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  json::object result = target.is_object() ? target.get_object() : json::object{};
  for (const auto& [key, patch_value] : patch.get_object()) {
    if (patch_value.is_null()) {
      result.erase(key);
    } else {
      const json::value* current = result.if_contains(key);
      result[key] = MergePatch(current != nullptr ? *current : json::value{}, patch_value);
    }
  }
  return result;
}

json::array IdsToJson(const std::vector<std::int64_t>& ids) {
  json::array out;
  out.reserve(ids.size());
  for (auto id : ids) out.emplace_back(id);
  return out;
}

}  // namespace cmdb::model
