#include "model/configuration_item.hpp"

#include <algorithm>
#include <array>

#include "model/json.hpp"

namespace cmdb::model {
namespace {

constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxTags = 100;
constexpr std::size_t kMaxTagLength = 100;

bool HasControlCharacters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

std::size_t CodePointCount(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U; }));
}

bool IsReadOnlyField(std::string_view key) {
  static constexpr std::array<std::string_view, 5> kReadOnly = {"id", "version", "created_at",
                                                                "updated_at", "last_seen_at"};
  return std::find(kReadOnly.begin(), kReadOnly.end(), key) != kReadOnly.end();
}

json::value RedundancyJson(const std::optional<std::int64_t>& min_healthy) {
  if (!min_healthy) return nullptr;
  return json::object{{"min_healthy", *min_healthy}};
}

json::value TagsJson(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& tag : tags) a.emplace_back(tag);
  return a;
}

void AddChange(json::object& diff, std::string_view key, const json::value& old_value,
               const json::value& new_value) {
  if (old_value == new_value) return;
  diff[key] = json::object{{"old", old_value}, {"new", new_value}};
}

}  // namespace

bool IsValidCiStatus(std::string_view status) {
  return status == "planned" || status == "active" || status == "maintenance" ||
         status == "retired";
}

ConfigurationItem CiFromJson(const json::value& body, FieldErrors& errors, ReadOnlyFields read_only,
                             const std::string& prefix) {
  ConfigurationItem ci;
  if (!body.is_object()) {
    errors.Add(prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1),
               "a CI must be a JSON object");
    return ci;
  }
  const json::object& o = body.get_object();
  for (const auto& [key, unused] : o) {
    if (key == "type" || key == "name" || key == "status" || key == "owner" || key == "tags" ||
        key == "attributes" || key == "redundancy") {
      continue;
    }
    if (IsReadOnlyField(key)) {
      if (read_only == ReadOnlyFields::kReject) {
        errors.Add(prefix + std::string(key), "is set by the server and cannot be written");
      }
      continue;
    }
    errors.Add(prefix + std::string(key), "is not a field of a CI");
  }
  const json::value* type = o.if_contains("type");
  if (type == nullptr || !type->is_string() || type->get_string().empty()) {
    errors.Add(prefix + "type", "is required: the name of a CI type");
  } else {
    ci.type = type->get_string();
  }
  const json::value* name = o.if_contains("name");
  if (name == nullptr || !name->is_string() || name->get_string().empty()) {
    errors.Add(prefix + "name", "is required: a non-empty string");
  } else if (CodePointCount(name->get_string()) > kMaxNameLength) {
    errors.Add(prefix + "name", "must be at most 255 characters long");
  } else if (HasControlCharacters(name->get_string())) {
    errors.Add(prefix + "name", "must not contain control characters");
  } else {
    ci.name = name->get_string();
  }
  if (const json::value* status = o.if_contains("status")) {
    if (!status->is_string() || !IsValidCiStatus(status->get_string())) {
      errors.Add(prefix + "status", "must be one of planned, active, maintenance, retired");
    } else {
      ci.status = status->get_string();
    }
  }
  if (const json::value* owner = o.if_contains("owner"); owner != nullptr && !owner->is_null()) {
    if (!owner->is_string() || CodePointCount(owner->get_string()) > kMaxNameLength ||
        HasControlCharacters(owner->get_string())) {
      errors.Add(prefix + "owner", "must be a string of at most 255 characters, or null");
    } else if (!owner->get_string().empty()) {
      ci.owner = std::string(owner->get_string());
    }
  }
  if (const json::value* tags = o.if_contains("tags"); tags != nullptr && !tags->is_null()) {
    if (!tags->is_array() || tags->get_array().size() > kMaxTags) {
      errors.Add(prefix + "tags", "must be an array of at most 100 strings");
    } else {
      for (const auto& tag : tags->get_array()) {
        if (!tag.is_string() || tag.get_string().empty() ||
            CodePointCount(tag.get_string()) > kMaxTagLength ||
            HasControlCharacters(tag.get_string())) {
          errors.Add(prefix + "tags",
                     "each tag must be a non-empty string of at most 100 "
                     "characters without control characters");
          break;
        }
        std::string t(tag.get_string());
        if (std::find(ci.tags.begin(), ci.tags.end(), t) == ci.tags.end()) {
          ci.tags.push_back(std::move(t));
        }
      }
    }
  }
  if (const json::value* attrs = o.if_contains("attributes");
      attrs != nullptr && !attrs->is_null()) {
    if (!attrs->is_object()) {
      errors.Add(prefix + "attributes", "must be an object");
    } else {
      for (const auto& [key, value] : attrs->get_object()) {
        if (!value.is_null()) ci.attributes[key] = value;
      }
    }
  }
  if (const json::value* red = o.if_contains("redundancy"); red != nullptr && !red->is_null()) {
    const json::value* k =
        red->is_object() ? red->get_object().if_contains("min_healthy") : nullptr;
    if (k == nullptr || !k->is_int64() || k->get_int64() < 1 || k->get_int64() > 1000000 ||
        red->get_object().size() != 1) {
      errors.Add(prefix + "redundancy.min_healthy",
                 "redundancy must be {\"min_healthy\": k} with k a positive integer");
    } else {
      ci.min_healthy = k->get_int64();
    }
  }
  return ci;
}

void ValidateCi(const CiType& type, const ConfigurationItem& ci, FieldErrors& errors,
                const std::string& prefix) {
  ValidateAttributes(type, ci.attributes, errors, prefix + "attributes.");
}

json::object WritableCiJson(const ConfigurationItem& ci) {
  json::object o;
  o["type"] = ci.type;
  o["name"] = ci.name;
  o["status"] = ci.status;
  o["owner"] = ci.owner ? json::value(*ci.owner) : json::value(nullptr);
  o["tags"] = TagsJson(ci.tags);
  o["attributes"] = ci.attributes;
  o["redundancy"] = RedundancyJson(ci.min_healthy);
  return o;
}

bool MergeChangesNothing(const ConfigurationItem& current, const json::object& patch) {
  auto same_string = [](const json::value& v, std::string_view now) {
    return v.is_string() && v.get_string() == now;
  };
  for (const auto& [key, value] : patch) {
    if (key == "name") {
      if (!same_string(value, current.name)) return false;
    } else if (key == "status") {
      if (!same_string(value, current.status)) return false;
    } else if (key == "owner") {
      if (value.is_null() ? current.owner.has_value()
                          : !current.owner || !same_string(value, *current.owner)) {
        return false;
      }
    } else if (key == "tags") {
      if (!value.is_array() || value.get_array().size() != current.tags.size()) return false;
      for (std::size_t i = 0; i < current.tags.size(); ++i) {
        if (!same_string(value.get_array()[i], current.tags[i])) return false;
      }
    } else if (key == "attributes") {
      if (!value.is_object()) return false;
      for (const auto& [name, v] : value.get_object()) {
        const json::value* now = current.attributes.if_contains(name);
        if (v.is_null()) {
          if (now != nullptr) return false;
        } else if (v.is_object() || now == nullptr || *now != v) {
          return false;  // an object value merges into the old one: left to the merge
        }
      }
    } else if (key == "redundancy") {
      if (value.is_null()) {
        if (current.min_healthy) return false;
      } else {
        const json::value* k = value.is_object() && value.get_object().size() == 1
                                   ? value.get_object().if_contains("min_healthy")
                                   : nullptr;
        if (k == nullptr || !k->is_int64() || current.min_healthy != k->get_int64()) return false;
      }
    }
    // Other keys (type, server-maintained fields) are not merged.
  }
  return true;
}

json::object CiToJson(const ConfigurationItem& ci) {
  json::object o{{"id", ci.id}};
  for (auto& [key, value] : WritableCiJson(ci)) o[key] = std::move(value);
  o["version"] = ci.version;
  o["created_at"] = FormatTimestamp(ci.created_at);
  o["updated_at"] = FormatTimestamp(ci.updated_at);
  o["last_seen_at"] =
      ci.last_seen_at ? json::value(FormatTimestamp(*ci.last_seen_at)) : json::value(nullptr);
  return o;
}

ConfigurationItem ApplyCiPatch(const ConfigurationItem& current, const json::value& patch,
                               FieldErrors& errors) {
  if (!patch.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "a merge patch must be a JSON object");
  }
  for (const auto& [key, unused] : patch.get_object()) {
    if (IsReadOnlyField(key)) errors.Add(std::string(key), "is set by the server");
  }
  if (const json::value* type = patch.get_object().if_contains("type");
      type != nullptr && !(type->is_string() && type->get_string() == current.type)) {
    errors.Add("type", "cannot be changed; create a new CI of the other type");
  }
  json::value merged = MergePatch(WritableCiJson(current), patch);
  ConfigurationItem next = CiFromJson(merged, errors, ReadOnlyFields::kIgnore);
  next.id = current.id;
  next.type = current.type;
  next.version = current.version;
  next.created_at = current.created_at;
  next.updated_at = current.updated_at;
  next.last_seen_at = current.last_seen_at;
  return next;
}

json::object DiffCis(const ConfigurationItem* before, const ConfigurationItem* after) {
  json::object diff;
  const json::value null_value;
  auto field = [&](std::string_view key, auto get) {
    json::value old_value = before != nullptr ? get(*before) : json::value();
    json::value new_value = after != nullptr ? get(*after) : json::value();
    AddChange(diff, key, old_value, new_value);
  };
  field("name", [](const ConfigurationItem& c) { return json::value(c.name); });
  field("status", [](const ConfigurationItem& c) { return json::value(c.status); });
  field("owner", [](const ConfigurationItem& c) {
    return c.owner ? json::value(*c.owner) : json::value(nullptr);
  });
  field("tags", [](const ConfigurationItem& c) { return TagsJson(c.tags); });
  field("redundancy", [](const ConfigurationItem& c) { return RedundancyJson(c.min_healthy); });
  const json::object empty;
  const json::object& old_attrs = before != nullptr ? before->attributes : empty;
  const json::object& new_attrs = after != nullptr ? after->attributes : empty;
  for (const auto& [key, value] : old_attrs) {
    const json::value* now = new_attrs.if_contains(key);
    AddChange(diff, key, value, now != nullptr ? *now : null_value);
  }
  for (const auto& [key, value] : new_attrs) {
    if (!old_attrs.contains(key)) AddChange(diff, key, null_value, value);
  }
  return diff;
}

}  // namespace cmdb::model
