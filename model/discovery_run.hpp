#pragma once
// Discovery runs: one execution of a source, queued and then executed by any instance, with
// its progress, counts and timings; the blocks its decision log is stored in; the CIs a source
// has stopped seeing. Value types; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/job_state.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

struct DiscoveryRun {
  std::int64_t id = 0;
  std::int64_t source_id = 0;
  JobState state = JobState::kQueued;
  bool dry_run = false;
  std::string trigger;  // api, schedule
  std::optional<std::string> error;
  std::int64_t done = 0;
  std::optional<std::int64_t> total;
  boost::json::value counts;   // null until finished
  boost::json::value timings;  // seconds per phase; null until finished
  int attempts = 0;
  std::optional<std::string> claimed_by;
  Timestamp queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
};
boost::json::object DiscoveryRunToJson(const DiscoveryRun& run);

// One stored block of a run's decision log: observations first_seq..last_seq, their outcome
// counts, and the decisions as a JSON array, LZ4-compressed (`compressed`, decompressing to
// `bytes`) or, in blocks written before compression, as text (`text`).
struct DecisionBlock {
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
  boost::json::object outcomes;  // outcome -> count
  std::string compressed;
  std::int64_t bytes = 0;
  std::optional<std::string> text;
};

// A page of a run's decisions.
struct DecisionPage {
  boost::json::array items;
  std::optional<std::int64_t> next_after;  // seq of the last item when more follow
};

// A CI a source saw before and missed in its last runs.
struct StaleCi {
  std::int64_t ci = 0;
  std::string name;
  std::int64_t last_run = 0;
  Timestamp last_seen_at;
  std::int64_t missed_runs = 0;
};
boost::json::object StaleCiToJson(const StaleCi& stale);

}  // namespace cmdb::model
