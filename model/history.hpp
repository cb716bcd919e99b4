#pragma once
// Who writes and what history records of it: every write of a CI or relation names its
// writer and channel, and becomes a version with the field-level diff. Value types;
// thread-safe.

#include <cstdint>
#include <string>

#include <boost/json/object.hpp>

#include "model/timestamp.hpp"

namespace cmdb::model {

// Who is writing and through which channel: history's `changed_by` and `source`
// ("api", "import", "discovery:<run>", "change:<id>", "drift:<finding>").
struct WriteContext {
  std::string changed_by = "anonymous";
  std::string source = "api";
};

// One version of a CI or relation, as GET .../history lists it.
struct HistoryEntry {
  std::int64_t version = 0;
  Timestamp changed_at;
  std::string changed_by;
  std::string source;
  bool deleted = false;
  boost::json::object diff;
};

}  // namespace cmdb::model
