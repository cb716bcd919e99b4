#include <boost/json/value_from.hpp>

#include "model/discovery_run.hpp"
#include "model/drift_finding.hpp"
#include "model/job_state.hpp"
#include "model/json.hpp"

namespace cmdb::model {

void tag_invoke(const json::value_from_tag&, json::value& out, JobState state) {
  out = JobStateName(state);
}

void tag_invoke(const json::value_from_tag&, json::value& out, FindingState state) {
  out = FindingStateName(state);
}

json::object DiscoveryRunToJson(const DiscoveryRun& run) {
  json::object o{{"id", run.id},
                 {"source", run.source_id},
                 {"state", json::value_from(run.state)},
                 {"dry_run", run.dry_run},
                 {"trigger", run.trigger},
                 {"error", run.error ? json::value(*run.error) : json::value(nullptr)},
                 {"progress", json::object{{"done", run.done},
                                           {"total", run.total ? json::value(*run.total)
                                                               : json::value(nullptr)}}},
                 {"attempts", run.attempts},
                 {"queued_at", FormatTimestamp(run.queued_at)},
                 {"started_at", TimestampJson(run.started_at)},
                 {"finished_at", TimestampJson(run.finished_at)}};
  json::object counts{{"observed", 0}, {"matched", 0},   {"created", 0},
                      {"drifted", 0},  {"unmatched", 0}, {"ambiguous", 0}};
  if (run.counts.is_object()) {
    for (const auto& [k, v] : run.counts.get_object()) counts[k] = v;
  }
  o["counts"] = std::move(counts);
  o["timings"] = run.timings;
  return o;
}

json::object StaleCiToJson(const StaleCi& s) {
  return {{"ci", s.ci},
          {"name", s.name},
          {"last_run", s.last_run},
          {"last_seen_at", FormatTimestamp(s.last_seen_at)},
          {"missed_runs", s.missed_runs}};
}

json::object DriftFindingToJson(const DriftFinding& f) {
  return {{"id", f.id},
          {"ci", f.ci},
          {"attribute", f.attribute},
          {"expected", f.expected},
          {"actual", f.actual},
          {"detected_at", FormatTimestamp(f.detected_at)},
          {"observed_at", FormatTimestamp(f.observed_at)},
          {"run", f.run},
          {"last_run", f.last_run},
          {"state", json::value_from(f.state)},
          {"authorized", f.authorized},
          {"change", f.change ? json::value(*f.change) : json::value(nullptr)},
          {"closed_at", TimestampJson(f.closed_at)},
          {"closed_by", f.closed_by ? json::value(*f.closed_by) : json::value(nullptr)},
          {"version", f.version}};
}

}  // namespace cmdb::model
