#include "model/json.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include "model/error.hpp"

namespace cmdb::model {

json::value TimestampJson(const std::optional<Timestamp>& ts) {
  return ts ? json::value(FormatTimestamp(*ts)) : json::value(nullptr);
}

namespace {

// Whether `value` holds a number that is not finite (a walk without allocations: the common
// case, on every request body).
bool HasNonFiniteNumber(const json::value& value) {
  switch (value.kind()) {
    case json::kind::double_:
      return !std::isfinite(value.get_double());
    case json::kind::array:
      for (const json::value& item : value.get_array()) {
        if (HasNonFiniteNumber(item)) return true;
      }
      return false;
    case json::kind::object:
      for (const auto& member : value.get_object()) {
        if (HasNonFiniteNumber(member.value())) return true;
      }
      return false;
    default:
      return false;
  }
}

// The JSON pointer of the first number in `value` that is not finite, "" when there is none.
std::string NonFiniteNumberAt(const json::value& value, const std::string& at) {
  switch (value.kind()) {
    case json::kind::double_:
      return std::isfinite(value.get_double()) ? std::string() : (at.empty() ? "/" : at);
    case json::kind::array: {
      const json::array& items = value.get_array();
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (std::string where = NonFiniteNumberAt(items[i], at + "/" + std::to_string(i));
            !where.empty()) {
          return where;
        }
      }
      return {};
    }
    case json::kind::object:
      for (const auto& [key, member] : value.get_object()) {
        // RFC 6901: ~ and / within a key are escaped.
        std::string escaped;
        for (char c : key) {
          if (c == '~') {
            escaped += "~0";
          } else if (c == '/') {
            escaped += "~1";
          } else {
            escaped += c;
          }
        }
        if (std::string where = NonFiniteNumberAt(member, at + "/" + escaped); !where.empty()) {
          return where;
        }
      }
      return {};
    default:
      return {};
  }
}

}  // namespace

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
  // JSON has no infinity, but a literal beyond the double range (1e999) parses as one: it
  // could be neither written back as JSON nor stored, so it is refused here, by its place.
  if (std::string where = HasNonFiniteNumber(value) ? NonFiniteNumberAt(value, "") : "";
      !where.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "request body holds a number beyond the range of a double at " + where,
                {{where, "number out of range"}});
  }
  return value;
}

json::value ParseStoredJson(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxStoredJsonDepth;
  return json::parse(text, {}, options);
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

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') [[likely]] {
      continue;
    }
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4U];
        out += kHex[c & 15U];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

namespace {

template <typename T>
void SerializeInto(std::string& out, const T& value) {
  json::serializer serializer;
  serializer.reset(&value);
  while (!serializer.done()) {
    const std::size_t at = out.size();
    out.resize(at + 4096);
    const std::size_t written = serializer.read(out.data() + at, 4096).size();
    out.resize(at + written);
  }
}

}  // namespace

void AppendJson(std::string& out, const json::value& value) { SerializeInto(out, value); }
void AppendJson(std::string& out, const json::array& value) { SerializeInto(out, value); }
void AppendJson(std::string& out, const json::object& value) { SerializeInto(out, value); }

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

void CheckFields(const json::object& o, std::initializer_list<std::string_view> allowed,
                 FieldErrors& errors) {
  for (const auto& [key, value] : o) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end()) {
      errors.Add(std::string(key), "unknown field");
    }
  }
}

std::string RequiredTitle(const json::object& o, FieldErrors& errors) {
  const json::value* title = o.if_contains("title");
  if (title == nullptr || !title->is_string() || title->get_string().size() > 500 ||
      std::all_of(title->get_string().begin(), title->get_string().end(),
                  [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; })) {
    errors.Add("title", "required: a non-blank string of at most 500 characters");
    return {};
  }
  return std::string(title->get_string());
}

std::vector<std::int64_t> ParseCiIdList(const json::array& ids, std::string_view field,
                                        FieldErrors& errors) {
  std::vector<std::int64_t> out;
  std::unordered_set<std::int64_t> seen;
  std::size_t index = 0;
  for (const auto& id : ids) {
    const std::string name = std::string(field) + "[" + std::to_string(index++) + "]";
    if (!id.is_int64() || id.get_int64() <= 0) {
      errors.Add(name, "must be a CI id");
    } else if (!seen.insert(id.get_int64()).second) {
      errors.Add(name, "names CI " + std::to_string(id.get_int64()) + " twice");
    } else {
      out.push_back(id.get_int64());
    }
  }
  return out;
}

std::vector<std::int64_t> CiIdsFromJson(const json::value* ids, std::string_view field,
                                        bool required, std::size_t max, FieldErrors& errors) {
  const std::string range =
      "a list of " + std::string(required ? "1" : "0") + " to " + std::to_string(max) + " CI ids";
  if (ids == nullptr || ids->is_null()) {
    if (required) errors.Add(std::string(field), "required: " + range);
    return {};
  }
  if (!ids->is_array() || (required && ids->get_array().empty()) || ids->get_array().size() > max) {
    errors.Add(std::string(field), (required ? "required: " : "must be ") + range);
    return {};
  }
  return ParseCiIdList(ids->get_array(), field, errors);
}

std::string OptionalText(const json::object& o, std::string_view field, std::size_t max,
                         FieldErrors& errors) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return {};
  if (!v->is_string() || v->get_string().size() > max) {
    errors.Add(std::string(field),
               "must be a string of at most " + std::to_string(max) + " characters");
    return {};
  }
  return std::string(v->get_string());
}

}  // namespace cmdb::model
