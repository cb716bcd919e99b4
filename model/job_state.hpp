#pragma once
// The states of a queued job: a discovery run or a background import. queued -> running ->
// succeeded | failed; a job left running by a stopped instance is queued again.

#include <array>
#include <optional>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "model/enum_names.hpp"

namespace cmdb::model {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
inline constexpr std::array<EnumName<JobState>, 4> kJobStateNames{{
    {JobState::kQueued, "queued"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
}};
inline std::string_view JobStateName(JobState s) { return NameIn(kJobStateNames, s); }
inline std::optional<JobState> JobStateFromName(std::string_view name) {
  return ValueIn(kJobStateNames, name);
}
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& json, JobState state);

}  // namespace cmdb::model
