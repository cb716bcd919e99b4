#pragma once
// The columns a CI is read with and the reading of such a row (internal to store/): shared by
// the CI repository, the batched reader and the bulk writer of imports.

#include <cstdint>
#include <optional>
#include <string>

#include "model/configuration_item.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

// The SELECT list CiFromRow reads, over configuration_items aliased `c`.
extern const char* const kCiColumns;
// last_seen_at alone, in microseconds: the latest sighting of the CI `c.id` by any source.
extern const char* const kCiLastSeen;
// The same columns with last_seen_at NULL: for writers, which do not need it (it is read from
// the discovery sightings, a probe per CI that a 100k-CI import would pay 0.7 s for).
extern const char* const kCiColumnsWithoutLastSeen;
// The same shape read from history (ci_history aliased `c`): created_at is when version 1
// was written; discovery's last_seen_at is not versioned.
extern const char* const kCiVersionColumns;

model::ConfigurationItem CiFromRow(const soci::row& row);

// The columns of such a row copied out of the result, so that its JSON (tags, attributes) can
// be parsed later, on another thread: a bulk read parses its rows on all cores.
struct CiRowText {
  model::CiId id = 0;
  std::string type;
  std::string name;
  std::string status;
  std::optional<std::string> owner;
  std::string tags;
  std::string attributes;
  std::optional<std::int64_t> min_healthy;
  std::int64_t version = 0;
  model::Timestamp created_at;
  model::Timestamp updated_at;
  std::optional<model::Timestamp> last_seen_at;
};
CiRowText CiRowTextOf(const soci::row& row);
// The same from the fields of a row read through libpq (pg::ForEachPreparedRow).
CiRowText CiRowTextOf(const pg::Fields& fields);
model::ConfigurationItem CiFromText(CiRowText text);

}  // namespace cmdb::store
