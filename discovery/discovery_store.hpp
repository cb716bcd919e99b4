#pragma once
// Discovery sources, runs, decisions and drift findings in PostgreSQL. A store borrows one
// leased session for one request or one run; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "discovery/reconcile.hpp"
#include "model/ci_repository.hpp"
#include "model/timestamp.hpp"

namespace soci {
class session;
}

namespace cmdb::discovery {

struct Source {
  std::int64_t id = 0;
  std::string name;
  std::string kind;
  SourceConfig config;
  std::optional<int> interval_seconds;
  std::optional<model::Timestamp> next_run_at;
  std::int64_t version = 1;
  model::Timestamp created_at;
  model::Timestamp updated_at;
};
boost::json::object SourceToJson(const Source& source);

struct Run {
  std::int64_t id = 0;
  std::int64_t source_id = 0;
  std::string state;  // queued, running, succeeded, failed
  bool dry_run = false;
  std::string trigger;  // api, schedule
  std::optional<std::string> error;
  std::int64_t done = 0;
  std::optional<std::int64_t> total;
  boost::json::value counts;   // null until finished
  boost::json::value timings;  // seconds per phase; null until finished
  int attempts = 0;
  std::optional<std::string> claimed_by;
  model::Timestamp queued_at;
  std::optional<model::Timestamp> started_at;
  std::optional<model::Timestamp> finished_at;
};
boost::json::object RunToJson(const Run& run);

struct DecisionPage {
  boost::json::array items;
  std::optional<std::int64_t> next_after;
};

struct Finding {
  std::int64_t id = 0;
  std::int64_t ci = 0;
  std::string attribute;
  boost::json::value expected;
  boost::json::value actual;
  std::string state;  // open, resolved, accepted, ignored
  bool authorized = false;
  std::optional<std::int64_t> change;
  std::int64_t run = 0;
  std::int64_t last_run = 0;
  model::Timestamp detected_at;
  model::Timestamp observed_at;
  model::Timestamp updated_at;
  std::optional<model::Timestamp> closed_at;
  std::optional<std::string> closed_by;
  std::int64_t version = 1;
};
boost::json::object FindingToJson(const Finding& finding);

struct FindingFilter {
  std::optional<std::string> state;
  std::optional<std::int64_t> ci;
  std::optional<bool> authorized;
  std::optional<std::string> attribute;
  std::optional<std::int64_t> run;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

struct StaleCi {
  std::int64_t ci = 0;
  std::string name;
  std::int64_t last_run = 0;
  model::Timestamp last_seen_at;
  std::int64_t missed_runs = 0;
};

class DiscoveryStore {
 public:
  explicit DiscoveryStore(soci::session& sql) : sql_(sql) {}

  // --- sources ---
  // Validates and stores a source: {"name", "kind", "config", "interval_seconds"}.
  // kValidationFailed naming every bad field; kAlreadyExists for a taken name.
  Source CreateSource(const boost::json::value& body);
  std::optional<Source> FindSource(std::int64_t id);
  std::vector<Source> ListSources();
  // Applies a JSON merge patch to name, config and interval_seconds. kNotFound,
  // kVersionMismatch, kValidationFailed.
  Source PatchSource(std::int64_t id, const boost::json::value& patch,
                     std::optional<std::int64_t> if_match);
  // Deletes the source and its runs; findings and history stay. kNotFound.
  void DeleteSource(std::int64_t id);

  // --- runs ---
  // Queues a run. kNotFound when the source does not exist.
  Run EnqueueRun(std::int64_t source_id, bool dry_run, const std::string& content_type,
                 const std::string& payload);
  std::optional<Run> FindRun(std::int64_t id);
  std::vector<Run> ListRuns(std::optional<std::int64_t> source_id, std::int64_t after, int limit);
  // The run's decision log in input order, optionally of one outcome.
  DecisionPage Decisions(std::int64_t run_id, const std::optional<std::string>& outcome,
                         std::int64_t after, int limit);
  // CIs the source saw before but missed in its last `stale_after_runs` successful runs.
  std::vector<StaleCi> StaleCis(const Source& source);

  // --- drift ---
  std::vector<Finding> ListFindings(const FindingFilter& filter);
  std::optional<Finding> FindFinding(std::int64_t id);
  // The record takes the observed value (history source "drift:<id>"). Only open findings;
  // kConflict otherwise or when the CI no longer exists.
  Finding AcceptFinding(std::int64_t id, std::optional<std::int64_t> if_match,
                        const model::WriteContext& ctx);
  // The difference is known and accepted as it is: not reported again while it stays the same.
  Finding IgnoreFinding(std::int64_t id, std::optional<std::int64_t> if_match,
                        const model::WriteContext& ctx);

 private:
  soci::session& sql_;
};

}  // namespace cmdb::discovery
