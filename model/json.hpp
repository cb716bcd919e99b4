#pragma once
// JSON helpers shared by every layer: bounded parsing of untrusted documents and small
// accessors that turn a wrong shape into a model::Error naming the field. Stateless;
// thread-safe.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/timestamp.hpp"

namespace cmdb::model {

class FieldErrors;

namespace json = boost::json;

// Deepest nesting accepted from clients. Real CMDB documents are a handful of levels deep;
// the bound keeps hostile input (100k nested arrays) from costing anything.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Parses an untrusted document. Rejects invalid UTF-8, comments, trailing commas, nesting
// deeper than kMaxJsonDepth and trailing garbage. Throws Error{kInvalidArgument} whose
// detail says what is wrong and where.
json::value ParseJson(std::string_view text);

// Nesting allowed when reading back what cmdb stored: client values (up to kMaxJsonDepth)
// wrapped in a few levels of its own (a decision log block, a finding, a change's plan).
inline constexpr std::size_t kMaxStoredJsonDepth = kMaxJsonDepth + 16;

// Parses a document cmdb wrote itself (a jsonb or text column): trusted, but it may nest
// deeper than Boost.JSON's default of 32. Throws boost::system::system_error if malformed.
json::value ParseStoredJson(std::string_view text);

// An RFC 3339 string, or null.
json::value TimestampJson(const std::optional<Timestamp>& ts);

// The JSON type's name as a client would say it: "string", "object", "null", ...
std::string_view KindName(const json::value& value);

// Serializes `value` as a compact JSON string.
std::string ToJsonText(const json::value& value);

// Appends JSON text to `out` without building a document first: `text` as a JSON string
// (escaped as Boost.JSON's serializer does), `value` serialized in place.
void AppendJsonString(std::string& out, std::string_view text);
void AppendJson(std::string& out, const json::value& value);
void AppendJson(std::string& out, const json::array& value);
void AppendJson(std::string& out, const json::object& value);

// A JSON array of ids.
json::array IdsToJson(const std::vector<std::int64_t>& ids);

// Validation of request bodies; problems go to `errors`, named by field.
// Every key of `o` not in `allowed` is "unknown field".
void CheckFields(const json::object& o, std::initializer_list<std::string_view> allowed,
                 FieldErrors& errors);
// `o.title`: a non-blank string of at most 500 characters (empty when it is not).
std::string RequiredTitle(const json::object& o, FieldErrors& errors);
// The elements of `ids`, positive integers each named once, in order; each bad element is
// reported as `<field>[<index>]`. Whether the list may be empty or how long it may be is
// the caller's to check.
std::vector<std::int64_t> ParseCiIdList(const json::array& ids, std::string_view field,
                                        FieldErrors& errors);
// The list of CI ids in `ids` (a member of a request body, null when absent): an array of at
// most `max` ids (at least one when `required`), each element as ParseCiIdList checks it.
// Whether the CIs exist is the store's to check.
std::vector<std::int64_t> CiIdsFromJson(const json::value* ids, std::string_view field,
                                        bool required, std::size_t max, FieldErrors& errors);
// `o.<field>` when it is a string of at most `max` bytes; "" when absent; else reported.
std::string OptionalText(const json::object& o, std::string_view field, std::size_t max,
                         FieldErrors& errors);

// RFC 7396 JSON merge patch: applies `patch` to `target` and returns the result.
json::value MergePatch(const json::value& target, const json::value& patch);

}  // namespace cmdb::model
