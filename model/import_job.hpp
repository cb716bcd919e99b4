#pragma once
// Background imports: a large import need not hold an HTTP request open; its body is queued
// and any instance runs it, reporting the phase it is in, then holds the import's answer or
// why it failed. Value types; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "model/error.hpp"
#include "model/job_state.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

struct ImportJobRequest {
  std::string format;                  // json, csv
  std::optional<std::string> ci_type;  // csv only
  bool atomic = true;
  std::string submitted_by = "anonymous";
  std::int64_t phases_total = 0;
};

struct ImportJob {
  std::int64_t id = 0;
  JobState state = JobState::kQueued;
  std::string format;  // json, csv
  std::optional<std::string> ci_type;
  bool atomic = true;
  std::int64_t payload_bytes = 0;
  std::string submitted_by;
  std::optional<std::int64_t> rows;  // CIs + relations, once parsed
  std::int64_t rows_done = 0;        // rows whose batch was written
  std::int64_t bytes_read = 0;       // of the payload, by the running job
  std::optional<std::string> phase;  // while running
  std::int64_t phases_done = 0;
  std::optional<std::int64_t> phases_total;
  boost::json::value result;  // the import's answer once succeeded, else null
  // A failed job: what went wrong, as the synchronous import would have answered it.
  std::optional<std::string> error;
  std::optional<ErrorCode> error_code;
  std::vector<FieldError> error_fields;
  int attempts = 0;
  std::optional<std::string> claimed_by;
  Timestamp queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
};

}  // namespace cmdb::model
