#pragma once
// A configuration item (CI) and its JSON mapping: parsing client documents with every field
// checked, JSON merge patch (RFC 7396) on the writable fields, and the field-level diff that
// history records. Value types; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/ci_type.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

using CiId = std::int64_t;

struct ConfigurationItem {
  CiId id = 0;
  std::string type;
  std::string name;
  std::string status = "active";  // planned | active | maintenance | retired
  std::optional<std::string> owner;
  std::vector<std::string> tags;
  boost::json::object attributes;
  std::optional<std::int64_t> min_healthy;  // redundancy: k of a k-of-n cluster
  std::int64_t version = 0;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> last_seen_at;
};

bool IsValidCiStatus(std::string_view status);

// How CiFromJson treats server-maintained fields (id, version, timestamps) in a document.
enum class ReadOnlyFields {
  kReject,  // POST/PATCH bodies: naming them is an error
  kIgnore,  // import documents: exports can be re-imported as they are
};

// Reads the writable fields of a CI document. Every problem is added to `errors` with
// `prefix` before the field name; the returned CI holds what could be read.
ConfigurationItem CiFromJson(const boost::json::value& body, FieldErrors& errors,
                             ReadOnlyFields read_only = ReadOnlyFields::kReject,
                             const std::string& prefix = "");

// Checks a CI's attributes against its type (see ValidateAttributes).
void ValidateCi(const CiType& type, const ConfigurationItem& ci, FieldErrors& errors,
                const std::string& prefix = "");

// The writable fields as a JSON object (the document a merge patch applies to).
boost::json::object WritableCiJson(const ConfigurationItem& ci);

// The full representation returned by the API.
boost::json::object CiToJson(const ConfigurationItem& ci);

// Applies an RFC 7396 merge patch to the writable fields of `current`. The type cannot be
// changed. Problems go to `errors`; the returned CI keeps id, version and timestamps.
ConfigurationItem ApplyCiPatch(const ConfigurationItem& current, const boost::json::value& patch,
                               FieldErrors& errors);

// True when merging `patch` (the writable fields of a document, as an import row gives them)
// into `current` would leave every field as it is: the shortcut a re-import of unchanged rows
// takes instead of merging, validating and diffing. Exact where it answers true (equal values
// only); false whenever it cannot tell cheaply (nested objects, values needing
// normalisation), and the caller then merges.
bool MergeChangesNothing(const ConfigurationItem& current, const boost::json::object& patch);

// The field-level difference `{"memory_mb": {"old": 32768, "new": 65536}}` between two states.
// Attributes are keyed by their name; CI fields (name, status, owner, tags, redundancy) by
// theirs, which attributes may not use. `before == nullptr` means the CI is being created
// (every old value null); `after == nullptr` means it is being deleted.
boost::json::object DiffCis(const ConfigurationItem* before, const ConfigurationItem* after);

}  // namespace cmdb::model
