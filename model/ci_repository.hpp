#pragma once
// CIs and their versioned history in PostgreSQL. Every write records a version with who, when,
// from where and the field-level diff, and closes the validity range of the version before it,
// so reading "as of T" is an index lookup. A repository borrows one leased session for one
// request; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "model/configuration_item.hpp"
#include "model/timestamp.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

// Who is writing and through which channel: history's `changed_by` and `source`
// ("api", "import", "discovery:<run>", "change:<id>").
struct WriteContext {
  std::string changed_by = "anonymous";
  std::string source = "api";
};

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

struct CiFilter {
  std::optional<std::string> type;
  std::optional<std::string> status;
  std::optional<std::string> owner;
  std::vector<std::string> tags;                           // every tag must be present
  std::optional<std::string> q;                            // case-insensitive name substring
  std::vector<std::pair<std::string, std::string>> attrs;  // attr.<name>=<value>
  std::optional<Timestamp> as_of;
  CiId after = 0;  // keyset cursor
  int limit = kDefaultPageSize;
};

struct CiPage {
  std::vector<ConfigurationItem> items;
  std::optional<CiId> next_after;  // set when more items follow
};

struct CiVersion {
  std::int64_t version = 0;
  Timestamp changed_at;
  std::string changed_by;
  std::string source;
  bool deleted = false;
  boost::json::object diff;
};

class CiRepository {
 public:
  explicit CiRepository(soci::session& sql) : sql_(sql) {}

  // The CI, or as it was at `as_of`; nullopt when it does not exist (then).
  std::optional<ConfigurationItem> FindById(CiId id, std::optional<Timestamp> as_of = {});

  // One page in id order; stable under concurrent inserts (new CIs get larger ids).
  CiPage List(const CiFilter& filter);

  // Adds to `errors` what is wrong with `draft` against its type (unknown type, attributes).
  void Validate(const ConfigurationItem& draft, FieldErrors& errors);

  // Validates `draft` against its type and stores it. Throws kValidationFailed (every bad
  // field, including an unknown type).
  ConfigurationItem Create(const ConfigurationItem& draft, const WriteContext& ctx);

  // Applies a JSON merge patch. kNotFound; kVersionMismatch when `if_match` is stale (nothing
  // written); kValidationFailed. A patch that changes nothing records no version.
  ConfigurationItem Patch(CiId id, const boost::json::value& patch,
                          std::optional<std::int64_t> if_match, const WriteContext& ctx);

  // Deletes the CI and its relations, recording both in history. kNotFound; kVersionMismatch.
  void Delete(CiId id, std::optional<std::int64_t> if_match, const WriteContext& ctx);

  // Versions newest first, at most `limit`, older than `before_version` when given.
  // kNotFound when the CI never existed.
  std::vector<CiVersion> History(CiId id, int limit, std::optional<std::int64_t> before_version);

 private:
  soci::session& sql_;
};

// Shared by the repositories and the importer: the SELECT list that CiFromRow reads.
extern const char* const kCiColumns;
// The same columns with last_seen_at NULL: for writers, which do not need it (it is read from
// the discovery sightings, a probe per CI that a 100k-CI import would pay 0.7 s for).
extern const char* const kCiColumnsWithoutLastSeen;
class PgResult;
ConfigurationItem CiFromRow(const PgResult& result, int row);

}  // namespace cmdb::model
