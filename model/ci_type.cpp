#include "model/ci_type.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include <arpa/inet.h>
#include <re2/re2.h>

#include "model/json.hpp"

namespace cmdb::model {
namespace {

constexpr std::size_t kMaxAttributes = 500;
constexpr std::size_t kMaxIdentifySets = 16;
constexpr std::size_t kMaxListItems = 10000;
constexpr std::size_t kMaxPatternLength = 1000;
constexpr std::size_t kMaxDescriptionLength = 10000;
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

struct KindEntry {
  std::string_view name;
  AttributeKind kind;
};
constexpr std::array<KindEntry, 9> kKinds = {{
    {"string", AttributeKind::kString},
    {"integer", AttributeKind::kInteger},
    {"number", AttributeKind::kNumber},
    {"boolean", AttributeKind::kBoolean},
    {"ip", AttributeKind::kIp},
    {"date", AttributeKind::kDate},
    {"datetime", AttributeKind::kDateTime},
    {"enum", AttributeKind::kEnum},
    {"json", AttributeKind::kJson},
}};

std::optional<AttributeKind> KindFromName(std::string_view name) {
  for (const auto& entry : kKinds) {
    if (entry.name == name) return entry.kind;
  }
  return std::nullopt;
}

std::optional<double> AsNumber(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

// Counts UTF-8 code points; the JSON parser has already rejected invalid UTF-8.
std::int64_t CodePoints(std::string_view s) {
  std::int64_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++n;
  }
  return n;
}

bool IsIp(std::string_view s) {
  if (s.size() > 45) return false;
  std::string text(s);
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, text.c_str(), buf.data()) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buf.data()) == 1;
}

std::string FormatBound(double v) {
  if (std::floor(v) == v && std::fabs(v) < kMaxExactInteger) {
    return std::to_string(static_cast<long long>(v));
  }
  return std::to_string(v);
}

// Validates one scalar value; returns an empty string when it fits, else the message.
std::string CheckScalar(const AttributeSpec& spec, const json::value& v) {
  switch (spec.kind) {
    case AttributeKind::kString: {
      if (!v.is_string()) return "must be a string, not " + std::string(KindName(v));
      std::string_view s = v.get_string();
      std::int64_t len = CodePoints(s);
      if (spec.min_length && len < *spec.min_length) {
        return "must be at least " + std::to_string(*spec.min_length) + " characters long";
      }
      if (spec.max_length && len > *spec.max_length) {
        return "must be at most " + std::to_string(*spec.max_length) + " characters long";
      }
      if (spec.compiled_pattern &&
          !RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *spec.compiled_pattern)) {
        return "does not match the pattern " + spec.pattern;
      }
      return {};
    }
    case AttributeKind::kInteger:
    case AttributeKind::kNumber: {
      std::optional<double> number = AsNumber(v);
      if (!number) {
        return std::string("must be ") +
               (spec.kind == AttributeKind::kInteger ? "an integer" : "a number") + ", not " +
               std::string(KindName(v));
      }
      if (spec.kind == AttributeKind::kInteger) {
        if (v.is_uint64() && v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) {
          return "is out of the 64-bit integer range";
        }
        if (v.is_double() &&
            (std::floor(*number) != *number || std::fabs(*number) > kMaxExactInteger)) {
          return "must be an integer, not a fraction";
        }
      }
      if (spec.min && *number < *spec.min) return "must be at least " + FormatBound(*spec.min);
      if (spec.max && *number > *spec.max) return "must be at most " + FormatBound(*spec.max);
      return {};
    }
    case AttributeKind::kBoolean:
      return v.is_bool() ? std::string{} : "must be a boolean, not " + std::string(KindName(v));
    case AttributeKind::kIp:
      if (!v.is_string()) return "must be an IP address string, not " + std::string(KindName(v));
      return IsIp(v.get_string()) ? std::string{} : "is not an IPv4 or IPv6 address";
    case AttributeKind::kDate:
      if (!v.is_string()) return "must be a date string (YYYY-MM-DD)";
      return IsValidDate(v.get_string()) ? std::string{} : "is not a date (YYYY-MM-DD)";
    case AttributeKind::kDateTime:
      if (!v.is_string()) return "must be an RFC 3339 timestamp string";
      return ParseTimestamp(v.get_string()) && v.get_string().size() > 10
                 ? std::string{}
                 : "is not an RFC 3339 timestamp";
    case AttributeKind::kEnum: {
      if (!v.is_string()) return "must be one of the enum values, as a string";
      std::string_view s = v.get_string();
      if (std::find(spec.values.begin(), spec.values.end(), s) != spec.values.end()) return {};
      std::string allowed;
      for (const auto& value : spec.values) allowed += (allowed.empty() ? "" : ", ") + value;
      return "must be one of: " + allowed;
    }
    case AttributeKind::kJson:
      return {};
  }
  return "has an unknown attribute type";
}

// The phases of ParseAttributeSpec: each reads some properties of one attribute's spec `o`
// (at `field`, "attributes.<name>") into `spec`, adding what is wrong to `errors`.

// Unknown properties, then the type every other property depends on; nullopt when missing or
// unknown (then nothing else is checked).
std::optional<AttributeKind> ReadKind(const std::string& field, const json::object& o,
                                      FieldErrors& errors) {
  static const std::set<std::string, std::less<>> known_keys = {
      "type",       "required",   "list",    "min",    "max",
      "min_length", "max_length", "pattern", "values", "description"};
  for (const auto& [key, unused] : o) {
    if (!known_keys.contains(std::string_view(key))) {
      errors.Add(field + "." + std::string(key), "is not a known attribute property");
    }
  }
  const json::value* type = o.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    errors.Add(field + ".type",
               "is required: one of string, integer, number, boolean, ip, "
               "date, datetime, enum, json");
    return std::nullopt;
  }
  std::optional<AttributeKind> kind = KindFromName(type->get_string());
  if (!kind) {
    errors.Add(field + ".type", "unknown attribute type '" + std::string(type->get_string()) +
                                    "'; use string, integer, number, boolean, ip, date, "
                                    "datetime, enum or json");
  }
  return kind;
}

// required, list, description.
void ReadFlags(const std::string& field, const json::object& o, AttributeSpec& spec,
               FieldErrors& errors) {
  auto read_bool = [&](const char* key, bool& out) {
    if (const json::value* b = o.if_contains(key)) {
      if (b->is_bool()) {
        out = b->get_bool();
      } else {
        errors.Add(field + "." + key, "must be a boolean");
      }
    }
  };
  read_bool("required", spec.required);
  read_bool("list", spec.list);
  if (const json::value* d = o.if_contains("description")) {
    if (!d->is_string() || d->get_string().size() > kMaxDescriptionLength) {
      errors.Add(field + ".description", "must be a string of at most 10000 bytes");
    } else {
      spec.description = d->get_string();
    }
  }
}

// min and max (numbers), min_length and max_length (strings), each pair in order.
void ReadBounds(const std::string& field, const json::object& o, AttributeSpec& spec,
                FieldErrors& errors) {
  const bool numeric = spec.kind == AttributeKind::kInteger || spec.kind == AttributeKind::kNumber;
  for (const char* key : {"min", "max"}) {
    const json::value* bound = o.if_contains(key);
    if (bound == nullptr) continue;
    if (!numeric) {
      errors.Add(field + "." + key, "applies only to integer and number attributes");
    } else if (std::optional<double> n = AsNumber(*bound)) {
      (std::string_view(key) == "min" ? spec.min : spec.max) = *n;
    } else {
      errors.Add(field + "." + key, "must be a number");
    }
  }
  if (spec.min && spec.max && *spec.min > *spec.max) {
    errors.Add(field + ".min", "must not be greater than max");
  }
  for (const char* key : {"min_length", "max_length"}) {
    const json::value* bound = o.if_contains(key);
    if (bound == nullptr) continue;
    if (spec.kind != AttributeKind::kString) {
      errors.Add(field + "." + key, "applies only to string attributes");
    } else if (bound->is_int64() && bound->get_int64() >= 0) {
      (std::string_view(key) == "min_length" ? spec.min_length : spec.max_length) =
          bound->get_int64();
    } else {
      errors.Add(field + "." + key, "must be a non-negative integer");
    }
  }
  if (spec.min_length && spec.max_length && *spec.min_length > *spec.max_length) {
    errors.Add(field + ".min_length", "must not be greater than max_length");
  }
}

// pattern: an RE2 expression (linear time), compiled once here.
void ReadPattern(const std::string& field, const json::object& o, AttributeSpec& spec,
                 FieldErrors& errors) {
  const json::value* p = o.if_contains("pattern");
  if (p == nullptr) return;
  if (spec.kind != AttributeKind::kString) {
    errors.Add(field + ".pattern", "applies only to string attributes");
  } else if (!p->is_string() || p->get_string().empty() ||
             p->get_string().size() > kMaxPatternLength) {
    errors.Add(field + ".pattern", "must be a non-empty string of at most 1000 bytes");
  } else {
    spec.pattern = p->get_string();
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<RE2>(spec.pattern, options);
    if (!re->ok()) {
      errors.Add(field + ".pattern", "is not a valid RE2 regular expression: " + re->error());
    } else {
      spec.compiled_pattern = std::move(re);
    }
  }
}

// values: required for enums (distinct non-empty strings), refused otherwise.
void ReadValues(const std::string& field, const json::object& o, AttributeSpec& spec,
                FieldErrors& errors) {
  const json::value* values = o.if_contains("values");
  if (spec.kind != AttributeKind::kEnum) {
    if (values != nullptr) errors.Add(field + ".values", "applies only to enum attributes");
    return;
  }
  if (values == nullptr || !values->is_array() || values->get_array().empty()) {
    errors.Add(field + ".values",
               "is required for enum attributes: a non-empty array of "
               "strings");
    return;
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& item : values->get_array()) {
    if (!item.is_string() || item.get_string().empty()) {
      errors.Add(field + ".values", "must hold only non-empty strings");
      return;
    }
    if (!seen.insert(std::string(item.get_string())).second) {
      errors.Add(field + ".values", "lists '" + std::string(item.get_string()) + "' twice");
      return;
    }
    spec.values.emplace_back(item.get_string());
  }
}

void ParseAttributeSpec(const std::string& name, const json::value& v, AttributeSpec& spec,
                        FieldErrors& errors) {
  const std::string field = "attributes." + name;
  if (!v.is_object()) {
    errors.Add(field, R"(must be an object such as {"type": "string"})");
    return;
  }
  const json::object& o = v.get_object();
  std::optional<AttributeKind> kind = ReadKind(field, o, errors);
  if (!kind) return;
  spec.kind = *kind;
  ReadFlags(field, o, spec, errors);
  ReadBounds(field, o, spec, errors);
  ReadPattern(field, o, spec, errors);
  ReadValues(field, o, spec, errors);
}

json::value SpecToJson(const AttributeSpec& spec) {
  json::object o;
  o["type"] = AttributeKindName(spec.kind);
  if (spec.required) o["required"] = true;
  if (spec.list) o["list"] = true;
  if (spec.min) o["min"] = *spec.min;
  if (spec.max) o["max"] = *spec.max;
  if (spec.kind == AttributeKind::kInteger) {
    // Integer bounds read back as integers, as the client wrote them.
    if (spec.min) o["min"] = static_cast<std::int64_t>(*spec.min);
    if (spec.max) o["max"] = static_cast<std::int64_t>(*spec.max);
  }
  if (spec.min_length) o["min_length"] = *spec.min_length;
  if (spec.max_length) o["max_length"] = *spec.max_length;
  if (!spec.pattern.empty()) o["pattern"] = spec.pattern;
  if (!spec.values.empty()) {
    json::array values;
    for (const auto& value : spec.values) values.emplace_back(value);
    o["values"] = std::move(values);
  }
  if (!spec.description.empty()) o["description"] = spec.description;
  return o;
}

}  // namespace

std::string_view AttributeKindName(AttributeKind kind) {
  for (const auto& entry : kKinds) {
    if (entry.kind == kind) return entry.name;
  }
  return "unknown";
}

bool IsValidIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsReservedAttributeName(std::string_view name) {
  // The names history diffs use for CI fields; attributes share that namespace.
  static constexpr std::array<std::string_view, 7> kReserved = {
      "id", "type", "name", "status", "owner", "tags", "redundancy"};
  return std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end();
}

CiType ParseCiType(const json::value& body, std::string_view path_name) {
  if (!body.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "a CI type must be a JSON object");
  }
  const json::object& o = body.get_object();
  FieldErrors errors;
  CiType type;
  for (const auto& [key, unused] : o) {
    if (key != "name" && key != "description" && key != "attributes" && key != "identify_by" &&
        key != "version" && key != "created_at" && key != "updated_at") {
      errors.Add(std::string(key), "is not a field of a CI type");
    }
  }
  const json::value* name = o.if_contains("name");
  if (name != nullptr && !name->is_string()) {
    errors.Add("name", "must be a string");
  } else if (name != nullptr) {
    type.name = name->get_string();
  }
  if (!path_name.empty()) {
    if (name != nullptr && type.name != path_name) {
      errors.Add("name", "does not match the name in the URL");
    }
    type.name = path_name;
  }
  if (type.name.empty() && errors.empty()) {
    errors.Add("name", "is required");
  } else if (!type.name.empty() && !IsValidIdentifier(type.name)) {
    errors.Add("name",
               "must start with a lowercase letter and hold only a-z, 0-9 and _ "
               "(at most 63 bytes)");
  }
  if (const json::value* d = o.if_contains("description")) {
    if (!d->is_string() || d->get_string().size() > kMaxDescriptionLength) {
      errors.Add("description", "must be a string of at most 10000 bytes");
    } else {
      type.description = d->get_string();
    }
  }
  if (const json::value* attrs = o.if_contains("attributes")) {
    if (!attrs->is_object()) {
      errors.Add("attributes", "must be an object mapping attribute names to their schema");
    } else if (attrs->get_object().size() > kMaxAttributes) {
      errors.Add("attributes", "may declare at most 500 attributes");
    } else {
      for (const auto& [key, spec_json] : attrs->get_object()) {
        std::string attr_name(key);
        if (!IsValidIdentifier(attr_name)) {
          errors.Add("attributes." + attr_name,
                     "attribute names start with a lowercase letter and hold only a-z, 0-9 and "
                     "_ (at most 63 bytes)");
          continue;
        }
        if (IsReservedAttributeName(attr_name)) {
          errors.Add("attributes." + attr_name, "is a CI field name and cannot be an attribute");
          continue;
        }
        AttributeSpec spec;
        ParseAttributeSpec(attr_name, spec_json, spec, errors);
        type.attributes.emplace(attr_name, std::move(spec));
      }
    }
  }
  if (const json::value* ids = o.if_contains("identify_by")) {
    if (!ids->is_array() || ids->get_array().size() > kMaxIdentifySets) {
      errors.Add("identify_by", "must be an array of at most 16 arrays of attribute names");
    } else {
      std::size_t index = 0;
      for (const auto& set : ids->get_array()) {
        std::string field = "identify_by[" + std::to_string(index++) + "]";
        if (!set.is_array() || set.get_array().empty()) {
          errors.Add(field, "must be a non-empty array of attribute names");
          continue;
        }
        std::vector<std::string> names;
        for (const auto& item : set.get_array()) {
          if (!item.is_string()) {
            errors.Add(field, "must hold attribute names as strings");
            break;
          }
          std::string attr(item.get_string());
          auto it = type.attributes.find(attr);
          if (it == type.attributes.end()) {
            errors.Add(field, "names '" + attr + "', which is not an attribute of this type");
          } else if (it->second.kind == AttributeKind::kJson || it->second.list) {
            errors.Add(field, "names '" + attr +
                                  "', a json or list attribute, which cannot "
                                  "identify a CI");
          } else if (std::find(names.begin(), names.end(), attr) != names.end()) {
            errors.Add(field, "names '" + attr + "' twice");
          }
          names.push_back(std::move(attr));
        }
        type.identify_by.push_back(std::move(names));
      }
    }
  }
  errors.ThrowIfAny("the CI type definition is invalid");
  return type;
}

json::object AttributesToJson(const CiType& type) {
  json::object attrs;
  for (const auto& [name, spec] : type.attributes) attrs[name] = SpecToJson(spec);
  return attrs;
}

json::value IdentifyByToJson(const CiType& type) {
  json::array ids;
  for (const auto& set : type.identify_by) {
    json::array names;
    for (const auto& name : set) names.emplace_back(name);
    ids.emplace_back(std::move(names));
  }
  return ids;
}

json::object CiTypeToJson(const CiType& type) {
  json::object o;
  o["name"] = type.name;
  o["description"] = type.description;
  o["attributes"] = AttributesToJson(type);
  o["identify_by"] = IdentifyByToJson(type);
  o["version"] = type.version;
  o["created_at"] = FormatTimestamp(type.created_at);
  o["updated_at"] = FormatTimestamp(type.updated_at);
  return o;
}

bool ContainsNul(const json::value& value) {
  switch (value.kind()) {
    case json::kind::string:
      return value.get_string().find('\0') != json::string::npos;
    case json::kind::array:
      for (const auto& item : value.get_array()) {
        if (ContainsNul(item)) return true;
      }
      return false;
    case json::kind::object:
      for (const auto& [key, item] : value.get_object()) {
        if (key.find('\0') != std::string_view::npos || ContainsNul(item)) return true;
      }
      return false;
    default:
      return false;
  }
}

void ValidateAttributes(const CiType& type, const json::object& attributes, FieldErrors& errors,
                        std::string_view prefix) {
  for (const auto& [key, value] : attributes) {
    const std::string field = std::string(prefix) + std::string(key);
    if (ContainsNul(value)) {
      // PostgreSQL text and jsonb cannot hold U+0000.
      errors.Add(field, "must not contain the NUL character (\\u0000)");
      continue;
    }
    auto it = type.attributes.find(std::string_view(key));
    if (it == type.attributes.end()) {
      errors.Add(field, "is not an attribute of type '" + type.name + "'");
      continue;
    }
    if (value.is_null()) continue;  // absent
    const AttributeSpec& spec = it->second;
    if (spec.list) {
      if (!value.is_array()) {
        errors.Add(field, "must be an array (a list attribute)");
        continue;
      }
      if (value.get_array().size() > kMaxListItems) {
        errors.Add(field, "holds more than 10000 items");
        continue;
      }
      std::size_t index = 0;
      for (const auto& item : value.get_array()) {
        std::string message = CheckScalar(spec, item);
        if (!message.empty()) {
          errors.Add(field + "[" + std::to_string(index) + "]", message);
          break;
        }
        ++index;
      }
    } else {
      std::string message = CheckScalar(spec, value);
      if (!message.empty()) errors.Add(field, message);
    }
  }
  for (const auto& [name, spec] : type.attributes) {
    if (!spec.required) continue;
    const json::value* v = attributes.if_contains(name);
    if (v == nullptr || v->is_null()) {
      errors.Add(std::string(prefix) + name, "is required by type '" + type.name + "'");
    }
  }
}

std::optional<json::value> AttributeFromText(const AttributeSpec& spec, std::string_view text,
                                             std::string& message) {
  auto scalar = [&](std::string_view cell) -> std::optional<json::value> {
    switch (spec.kind) {
      case AttributeKind::kInteger:
      case AttributeKind::kNumber:
      case AttributeKind::kBoolean:
      case AttributeKind::kJson: {
        try {
          json::value v = ParseJson(cell);
          return v;
        } catch (const Error&) {
          if (spec.kind == AttributeKind::kJson) {
            return json::value(json::string(cell));  // plain text is a JSON string
          }
          message = std::string("'") + std::string(cell.substr(0, 64)) + "' is not a" +
                    (spec.kind == AttributeKind::kBoolean ? " boolean (true or false)" : " number");
          return std::nullopt;
        }
      }
      default:
        return json::value(json::string(cell));
    }
  };
  if (!spec.list) return scalar(text);
  if (!text.empty() && text.front() == '[') {
    try {
      return ParseJson(text);
    } catch (const Error&) {
      message = "is not a JSON array";
      return std::nullopt;
    }
  }
  json::array items;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(';', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(start, end - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) {
      std::optional<json::value> v = scalar(part);
      if (!v) return std::nullopt;
      items.push_back(std::move(*v));
    }
    start = end + 1;
  }
  return json::value(std::move(items));
}

namespace {

bool LooksLikeMac(std::string_view s) {
  if (s.size() != 17) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2) {
      if (s[i] != ':' && s[i] != '-') return false;
    } else if (std::isxdigit(static_cast<unsigned char>(s[i])) == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string CanonicalAttributeString(std::string_view s) {
  if (LooksLikeMac(s)) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::replace(out.begin(), out.end(), '-', ':');
    return out;
  }
  if (s.find(':') != std::string_view::npos && s.size() < INET6_ADDRSTRLEN) {
    in6_addr addr{};
    std::string text(s);
    std::array<char, INET6_ADDRSTRLEN> buffer{};
    if (inet_pton(AF_INET6, text.c_str(), &addr) == 1 &&
        inet_ntop(AF_INET6, &addr, buffer.data(), buffer.size()) != nullptr) {
      return buffer.data();
    }
  }
  return std::string(s);
}

namespace {

// A number's canonical text: integral values as integers (2048.0 is 2048).
void AppendCanonicalNumber(std::string& out, const json::value& v) {
  const double d = v.to_number<double>();
  if (std::floor(d) == d && std::fabs(d) < 9e15) {
    out += std::to_string(static_cast<std::int64_t>(d));
  } else {
    out += ToJsonText(v);
  }
}

// JSON text in which an object's keys come sorted and numbers by value, so that values that
// mean the same have the same text: PostgreSQL's jsonb reorders keys (shorter first), so a
// recorded {"port": 22, "name": "ssh"} comes back as {"name": "ssh", "port": 22}.
void AppendCanonicalJson(std::string& out, const json::value& v) {
  if (v.is_number()) {
    AppendCanonicalNumber(out, v);
  } else if (v.is_array()) {
    out += '[';
    for (std::size_t i = 0; i < v.get_array().size(); ++i) {
      if (i > 0) out += ',';
      AppendCanonicalJson(out, v.get_array()[i]);
    }
    out += ']';
  } else if (v.is_object()) {
    std::vector<const json::key_value_pair*> members;
    members.reserve(v.get_object().size());
    for (const auto& member : v.get_object()) members.push_back(&member);
    std::sort(members.begin(), members.end(),
              [](const auto* a, const auto* b) { return a->key() < b->key(); });
    out += '{';
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, members[i]->key());
      out += ':';
      AppendCanonicalJson(out, members[i]->value());
    }
    out += '}';
  } else {
    out += ToJsonText(v);
  }
}

}  // namespace

std::string CanonicalAttributeText(const json::value& v) {
  if (v.is_string()) return "s" + CanonicalAttributeString(v.get_string());
  std::string out(1, v.is_number() ? 'n' : 'j');
  AppendCanonicalJson(out, v);
  return out;
}

bool SameAttributeValue(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_double() || b.is_double()) return a.to_number<double>() == b.to_number<double>();
    if (a.is_uint64() && a.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) {
      return b.is_uint64() && a.get_uint64() == b.get_uint64();
    }
    if (b.is_uint64() && b.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return false;
    return a.to_number<std::int64_t>() == b.to_number<std::int64_t>();
  }
  if (a.is_string() && b.is_string()) {
    return a.get_string() == b.get_string() ||
           CanonicalAttributeString(a.get_string()) == CanonicalAttributeString(b.get_string());
  }
  if (a.is_array() && b.is_array()) {
    const json::array& x = a.get_array();
    const json::array& y = b.get_array();
    if (x.size() != y.size()) return false;
    std::vector<std::string> xs;
    std::vector<std::string> ys;
    for (const auto& e : x) xs.push_back(CanonicalAttributeText(e));
    for (const auto& e : y) ys.push_back(CanonicalAttributeText(e));
    std::sort(xs.begin(), xs.end());
    std::sort(ys.begin(), ys.end());
    return xs == ys;
  }
  if (a.is_object() && b.is_object()) {
    return a.get_object().size() == b.get_object().size() &&
           CanonicalAttributeText(a) == CanonicalAttributeText(b);
  }
  return a == b;
}

}  // namespace cmdb::model
