#include "model/discovery_source.hpp"

#include <boost/json/value_from.hpp>

#include "model/ci_type.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace {

constexpr std::int64_t kMaxIntervalSeconds = std::int64_t{31} * 24 * 3600;

void ReadMapping(const json::value& v, const std::string& field, SourceConfig& config,
                 FieldErrors& errors) {
  if (!v.is_object()) {
    errors.Add(field, "must be an object of observed name -> attribute name (or null)");
    return;
  }
  for (const auto& [from, to] : v.get_object()) {
    if (to.is_null()) {
      config.mapping[std::string(from)] = std::nullopt;
    } else if (to.is_string() && IsValidIdentifier(to.get_string())) {
      config.mapping[std::string(from)] = std::string(to.get_string());
    } else {
      errors.Add(field + "." + std::string(from), "must be an attribute name or null");
    }
  }
}

void ReadJunkValues(const json::value& v, const std::string& field, SourceConfig& config,
                    FieldErrors& errors) {
  if (!v.is_array()) {
    errors.Add(field, "must be a list of strings");
    return;
  }
  for (const auto& e : v.get_array()) {
    if (!e.is_string()) {
      errors.Add(field, "must be a list of strings");
      return;
    }
    config.junk_values.emplace_back(e.get_string());
  }
}

// One field of a config object.
void ReadConfigField(std::string_view key, const json::value& v, SourceKind kind,
                     SourceConfig& config, FieldErrors& errors) {
  const std::string field = "config." + std::string(key);
  if (key == "ci_type") {
    if (!v.is_string() || !IsValidIdentifier(v.get_string())) {
      errors.Add(field, "must name a CI type");
    } else {
      config.ci_type = std::string(v.get_string());
    }
  } else if (key == "on_unmatched") {
    if (v == "report" || v == "create") {
      config.on_unmatched = v == "create" ? OnUnmatched::kCreate : OnUnmatched::kReport;
    } else {
      errors.Add(field, "must be report or create");
    }
  } else if (key == "mapping") {
    ReadMapping(v, field, config, errors);
  } else if (key == "stale_after_runs") {
    if (v.is_null()) {
      config.stale_after_runs.reset();
    } else if (!v.is_int64() || v.get_int64() < 1 || v.get_int64() > 1000) {
      errors.Add(field, "must be an integer from 1 to 1000, or null");
    } else {
      config.stale_after_runs = static_cast<int>(v.get_int64());
    }
  } else if (key == "junk_values") {
    ReadJunkValues(v, field, config, errors);
  } else if (key == "loopback_identities" || key == "fill_missing") {
    if (!v.is_bool()) {
      errors.Add(field, "must be true or false");
    } else {
      (key == "fill_missing" ? config.fill_missing : config.loopback_identities) = v.get_bool();
    }
  } else if (key == "path") {
    if (!TraitsOf(kind).reads_path) {
      errors.Add(field, "applies to nmap_xml and ansible_facts sources only");
    } else if (!v.is_string() || v.get_string().empty() || v.get_string().front() != '/') {
      errors.Add(field, "must be an absolute path on the server");
    } else {
      config.path = std::string(v.get_string());
    }
  } else {
    errors.Add(field, "unknown field");
  }
}

}  // namespace

const SourceKindTraits& TraitsOf(SourceKind kind) {
  for (const auto& traits : kSourceKinds) {
    if (traits.kind == kind) return traits;
  }
  throw Error(ErrorCode::kInternal, "a source kind without traits");
}

std::string_view SourceKindName(SourceKind kind) { return TraitsOf(kind).name; }

std::optional<SourceKind> SourceKindFromName(std::string_view name) {
  for (const auto& traits : kSourceKinds) {
    if (traits.name == name) return traits.kind;
  }
  return std::nullopt;
}

void tag_invoke(const json::value_from_tag&, json::value& out, SourceKind kind) {
  out = SourceKindName(kind);
}

SourceConfig ParseSourceConfig(const json::value& value, SourceKind kind, FieldErrors& errors) {
  SourceConfig config;
  config.stale_after_runs = TraitsOf(kind).stale_after_runs;
  if (value.is_null()) return config;
  const json::object* o = value.if_object();
  if (o == nullptr) {
    errors.Add("config", "must be an object");
    return config;
  }
  for (const auto& [key, v] : *o) ReadConfigField(key, v, kind, config, errors);
  return config;
}

json::object SourceConfigToJson(const SourceConfig& config) {
  json::object o;
  o["ci_type"] = config.ci_type;
  o["on_unmatched"] = config.on_unmatched == OnUnmatched::kCreate ? "create" : "report";
  json::object mapping;
  for (const auto& [from, to] : config.mapping) {
    mapping[from] = to ? json::value(*to) : json::value(nullptr);
  }
  o["mapping"] = std::move(mapping);
  o["stale_after_runs"] =
      config.stale_after_runs ? json::value(*config.stale_after_runs) : json::value(nullptr);
  json::array junk;
  for (const auto& v : config.junk_values) junk.emplace_back(v);
  o["junk_values"] = std::move(junk);
  o["loopback_identities"] = config.loopback_identities;
  o["fill_missing"] = config.fill_missing;
  if (!config.path.empty()) o["path"] = config.path;
  return o;
}

json::object DiscoverySourceToJson(const DiscoverySource& s) {
  return {{"id", s.id},
          {"name", s.name},
          {"kind", json::value_from(s.kind)},
          {"config", SourceConfigToJson(s.config)},
          {"interval_seconds",
           s.interval_seconds ? json::value(*s.interval_seconds) : json::value(nullptr)},
          {"next_run_at", TimestampJson(s.next_run_at)},
          {"version", s.version},
          {"created_at", FormatTimestamp(s.created_at)},
          {"updated_at", FormatTimestamp(s.updated_at)}};
}

DiscoverySource DiscoverySourceFromJson(const json::value& value) {
  const json::object* body = value.if_object();
  if (body == nullptr) throw Error(ErrorCode::kInvalidArgument, "a source is a JSON object");
  FieldErrors errors;
  CheckFields(*body,
              {"name", "kind", "config", "interval_seconds", "id", "version", "created_at",
               "updated_at", "next_run_at"},
              errors);
  DiscoverySource source;
  const json::value* n = body->if_contains("name");
  if (n == nullptr || !n->is_string() || n->get_string().empty() || n->get_string().size() > 200) {
    errors.Add("name", "required: a string of 1 to 200 characters");
  } else {
    source.name = std::string(n->get_string());
  }
  const json::value* k = body->if_contains("kind");
  std::optional<SourceKind> kind =
      k != nullptr && k->is_string() ? SourceKindFromName(k->get_string()) : std::nullopt;
  if (!kind) {
    std::string names;
    for (const auto& traits : kSourceKinds) {
      names += (names.empty() ? "" : ", ") + std::string(traits.name);
    }
    errors.Add("kind", "required: one of " + names);
  } else {
    source.kind = *kind;
  }
  const json::value* c = body->if_contains("config");
  source.config = ParseSourceConfig(c != nullptr ? *c : json::value(nullptr), source.kind, errors);
  if (const json::value* i = body->if_contains("interval_seconds"); i != nullptr && !i->is_null()) {
    if (!i->is_int64() || i->get_int64() < 10 || i->get_int64() > kMaxIntervalSeconds) {
      errors.Add("interval_seconds", "must be an integer from 10 to 2678400 (31 days), or null");
    } else {
      source.interval_seconds = static_cast<int>(i->get_int64());
    }
  }
  if (kind && source.interval_seconds) {
    const SourceKindTraits& traits = TraitsOf(*kind);
    if (traits.pushed) {
      errors.Add("interval_seconds",
                 std::string(traits.name) + " sources are pushed to; they cannot be scheduled");
    }
    if (traits.reads_path && source.config.path.empty()) {
      errors.Add("config.path", "a scheduled " + std::string(traits.name) +
                                    " source reads its input from config.path");
    }
  }
  errors.ThrowIfAny("the source is invalid");
  return source;
}

}  // namespace cmdb::model
