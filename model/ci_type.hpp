#pragma once
// CI types: the attribute schema every CI of a type is validated against, and the ordered
// identifier sets (`identify_by`) that import and discovery use to find an existing CI.
// Parsing a definition validates it completely; a CiType is immutable afterwards and safe
// to share between threads.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace re2 {
class RE2;
}

namespace cmdb::model {

enum class AttributeKind {
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kIp,
  kDate,
  kDateTime,
  kEnum,
  kJson,
};

std::string_view AttributeKindName(AttributeKind kind);

// The schema of one attribute.
struct AttributeSpec {
  AttributeKind kind = AttributeKind::kString;
  bool required = false;
  bool list = false;                       // the value is an array of `kind` values
  std::optional<double> min;               // integer/number: smallest allowed value
  std::optional<double> max;               // integer/number: largest allowed value
  std::optional<std::int64_t> min_length;  // string: fewest characters
  std::optional<std::int64_t> max_length;  // string: most characters
  std::string pattern;                     // string: RE2 syntax, unanchored (JSON Schema semantics)
  std::shared_ptr<const re2::RE2> compiled_pattern;
  std::vector<std::string> values;  // enum: the allowed values
  std::string description;
};

struct CiType {
  std::string name;
  std::string description;
  std::map<std::string, AttributeSpec, std::less<>> attributes;
  std::vector<std::vector<std::string>> identify_by;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};

// True for names of types, relation types and attributes: [a-z][a-z0-9_]*, at most 63 bytes.
bool IsValidIdentifier(std::string_view name);

// Names a CI attribute may not take because the CI itself has a field of that name (they
// share one namespace in history diffs).
bool IsReservedAttributeName(std::string_view name);

// Builds a CiType from a client's JSON definition. `path_name`, when not empty, is the name
// from the URL (PUT); a body `name` must then agree with it. Throws Error{kValidationFailed}
// listing every bad field, or Error{kInvalidArgument} when the body is not an object.
CiType ParseCiType(const boost::json::value& body, std::string_view path_name = {});

// The definition as clients see it (also the form stored in the database).
boost::json::object AttributesToJson(const CiType& type);
boost::json::value IdentifyByToJson(const CiType& type);
boost::json::object CiTypeToJson(const CiType& type);

// Validates a CI's attributes against its type: unknown attribute, wrong type, out of
// range, missing required. Each problem is added to `errors` under `prefix` + name.
void ValidateAttributes(const CiType& type, const boost::json::object& attributes,
                        FieldErrors& errors, std::string_view prefix = "attributes.");

// True when a string (or object key) anywhere in `value` holds U+0000, which PostgreSQL's
// text and jsonb types cannot store.
bool ContainsNul(const boost::json::value& value);

// Converts a CSV cell into the attribute's JSON value. Lists are written as a JSON array or
// as values separated by ';'. Returns nullopt and sets `message` when the text does not fit.
std::optional<boost::json::value> AttributeFromText(const AttributeSpec& spec,
                                                    std::string_view text, std::string& message);

// True when two attribute values mean the same: numbers by value (2048 = 2048.0), lists as
// multisets ([22, 443] = [443, 22]), objects whatever the order of their keys (jsonb reorders
// them) with numbers inside by value, MAC addresses whatever their case and separator, IPv6
// addresses whatever their spelling; other strings exactly. Discovery and changes compare
// observed, recorded and planned values with it.
bool SameAttributeValue(const boost::json::value& a, const boost::json::value& b);
// The one spelling of a MAC or IPv6 address (lower case, ':' separators, RFC 5952); any
// other string as is.
std::string CanonicalAttributeString(std::string_view s);
// A value's canonical text, for comparing list elements as sets ("s..", "n..", "j.."):
// objects with sorted keys, numbers by value at any depth.
std::string CanonicalAttributeText(const boost::json::value& v);

}  // namespace cmdb::model
