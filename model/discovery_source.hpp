#pragma once
// Discovery sources: what a source observes (its kind, the CI type its observations are
// reconciled as, what to do with an unmatched one, attribute mapping, junk values, staleness)
// and its schedule; the kinds of source with what each needs; the JSON mapping. Value types
// and pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

enum class SourceKind { kNmapXml, kAnsibleFacts, kLocalHost, kAgent };

// What a kind of source needs and allows. One row per kind: with its collector registered in
// discovery/collector.cpp, that is all a new kind takes.
struct SourceKindTraits {
  SourceKind kind;
  std::string_view name;
  // Its input may be a file or folder on the server (config.path), so it can be scheduled.
  bool reads_path;
  // Its observations come only in a run's body (agents push): it cannot be scheduled.
  bool pushed;
  // Every run sees the whole estate it covers, so a CI it stopped seeing is stale after this
  // many runs (nullopt: its runs are partial; staleness does not apply by default).
  std::optional<int> stale_after_runs;
};
inline constexpr std::array<SourceKindTraits, 4> kSourceKinds{{
    {SourceKind::kNmapXml, "nmap_xml", true, false, 3},
    {SourceKind::kAnsibleFacts, "ansible_facts", true, false, 3},
    {SourceKind::kLocalHost, "local_host", false, false, std::nullopt},
    {SourceKind::kAgent, "agent", false, true, std::nullopt},
}};
const SourceKindTraits& TraitsOf(SourceKind kind);
std::string_view SourceKindName(SourceKind kind);
std::optional<SourceKind> SourceKindFromName(std::string_view name);
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, SourceKind kind);

enum class OnUnmatched { kReport, kCreate };

// A source's `config`, validated.
struct SourceConfig {
  std::string ci_type = "server";
  OnUnmatched on_unmatched = OnUnmatched::kReport;
  // Observed attribute name -> CI attribute name; nullopt drops the observed attribute.
  std::map<std::string, std::optional<std::string>, std::less<>> mapping;
  std::optional<int> stale_after_runs;   // nullopt: the source's runs are partial, no staleness
  std::vector<std::string> junk_values;  // added to the built-in list
  bool loopback_identities = false;      // loopback addresses identify (scans of 127.0.0.0/8)
  bool fill_missing = true;              // an attribute the record lacks is filled in, not drift
  std::string path;  // nmap_xml report file or ansible --tree folder, for payload-less runs
};

// Validates `config` for a source of `kind`; adds problems under "config.<field>".
SourceConfig ParseSourceConfig(const boost::json::value& config, SourceKind kind,
                               FieldErrors& errors);
boost::json::object SourceConfigToJson(const SourceConfig& config);

struct DiscoverySource {
  std::int64_t id = 0;
  std::string name;
  SourceKind kind = SourceKind::kAgent;
  SourceConfig config;
  std::optional<int> interval_seconds;
  std::optional<Timestamp> next_run_at;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object DiscoverySourceToJson(const DiscoverySource& source);

// Reads the writable fields of a source document {"name", "kind", "config",
// "interval_seconds"} (the read-only ones a GET returns are allowed and ignored, so a merge
// patch can apply to a GET's document). Throws Error{kValidationFailed} naming every bad
// field, Error{kInvalidArgument} when `body` is not an object.
DiscoverySource DiscoverySourceFromJson(const boost::json::value& body);

}  // namespace cmdb::model
