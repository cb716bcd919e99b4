#pragma once
// JSON helpers shared by every layer: bounded parsing of untrusted documents and small
// accessors that turn a wrong shape into a model::Error naming the field. Stateless;
// thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace cmdb::model {

namespace json = boost::json;

// Deepest nesting accepted from clients. Real CMDB documents are a handful of levels deep;
// the bound keeps hostile input (100k nested arrays) from costing anything.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Parses an untrusted document. Rejects invalid UTF-8, comments, trailing commas, nesting
// deeper than kMaxJsonDepth and trailing garbage. Throws Error{kInvalidArgument} whose
// detail says what is wrong and where.
json::value ParseJson(std::string_view text);

// The JSON type's name as a client would say it: "string", "object", "null", ...
std::string_view KindName(const json::value& value);

// Serializes `value` as a compact JSON string.
std::string ToJsonText(const json::value& value);

// A JSON array of ids.
json::array IdsToJson(const std::vector<std::int64_t>& ids);

// RFC 7396 JSON merge patch: applies `patch` to `target` and returns the result.
json::value MergePatch(const json::value& target, const json::value& patch);

}  // namespace cmdb::model
