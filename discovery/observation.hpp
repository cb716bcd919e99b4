#pragma once
// What a collector saw of one asset, before reconciliation: the CI type it should be, the
// values that identify it and the attributes observed. Collectors produce observations from
// their tool's output; reconciliation (reconcile.hpp) decides what each one means.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace cmdb::discovery {

struct Observation {
  std::string type;                // CI type; empty: the source's `ci_type`
  std::string name;                // the name a created CI gets; empty: derived
  boost::json::object identity;    // identifying values (matched against identify_by)
  boost::json::object attributes;  // observed attribute values
  std::string label;               // how the decision log names it: "host 10.0.0.5"
  std::string skip_reason;         // not empty: seen, but not an observation of an asset
};

// Agent observations: {"items": [{"type", "name", "identity": {...}, "attributes": {...}}]}.
// Throws model::Error{kInvalidArgument} naming the first item of the wrong shape. Takes the
// document by value: the observations' objects are moved out of it, not copied.
std::vector<Observation> ParseAgentPayload(boost::json::value payload);

}  // namespace cmdb::discovery
