#pragma once
// Drift findings: an attribute whose observed value differs from the record, from the run
// that saw it until it is resolved (observed back at the record), accepted (the record takes
// the observed value) or ignored. Authorised when an approved, in-window change covers the CI.
// Value types; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/enum_names.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

enum class FindingState { kOpen, kResolved, kAccepted, kIgnored };
inline constexpr std::array<EnumName<FindingState>, 4> kFindingStateNames{{
    {FindingState::kOpen, "open"},
    {FindingState::kResolved, "resolved"},
    {FindingState::kAccepted, "accepted"},
    {FindingState::kIgnored, "ignored"},
}};
inline std::string_view FindingStateName(FindingState s) { return NameIn(kFindingStateNames, s); }
inline std::optional<FindingState> FindingStateFromName(std::string_view name) {
  return ValueIn(kFindingStateNames, name);
}
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, FindingState state);

struct DriftFinding {
  std::int64_t id = 0;
  std::int64_t ci = 0;
  std::string attribute;
  boost::json::value expected;  // the record's value (null when it has none)
  boost::json::value actual;    // the observed value
  FindingState state = FindingState::kOpen;
  bool authorized = false;
  std::optional<std::int64_t> change;  // the change that authorises it
  std::int64_t run = 0;
  std::int64_t last_run = 0;
  Timestamp detected_at;
  Timestamp observed_at;
  Timestamp updated_at;
  std::optional<Timestamp> closed_at;
  std::optional<std::string> closed_by;
  std::int64_t version = 1;
};
boost::json::object DriftFindingToJson(const DriftFinding& finding);

}  // namespace cmdb::model
