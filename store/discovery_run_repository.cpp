#include "store/discovery_run_repository.hpp"

#include "model/error.hpp"
#include "model/json.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::DiscoveryRun;
using model::Error;
using model::ErrorCode;
namespace json = boost::json;

namespace {

const char* const kRunColumns =
    "id, source_id, state, dry_run, trigger, error, progress_done, progress_total, counts::text, "
    "attempts, claimed_by, cmdb_us(queued_at), cmdb_us(started_at), cmdb_us(finished_at), "
    "timings::text";

DiscoveryRun RunFromRow(const soci::row& r) {
  DiscoveryRun run;
  run.id = sql::Int(r, 0);
  run.source_id = sql::Int(r, 1);
  run.state = model::JobStateFromName(sql::Text(r, 2)).value_or(model::JobState::kFailed);
  run.dry_run = sql::Bool(r, 3);
  run.trigger = sql::Text(r, 4);
  run.error = sql::OptionalText(r, 5);
  run.done = sql::Int(r, 6);
  run.total = sql::OptionalInt(r, 7);
  run.counts = sql::Json(r, 8);
  run.attempts = static_cast<int>(sql::Int(r, 9));
  run.claimed_by = sql::OptionalText(r, 10);
  run.queued_at = sql::Time(r, 11);
  run.started_at = sql::OptionalTime(r, 12);
  run.finished_at = sql::OptionalTime(r, 13);
  run.timings = sql::Json(r, 14);
  return run;
}

}  // namespace

DiscoveryRun DiscoveryRunRepository::Enqueue(std::int64_t source_id, bool dry_run,
                                             const std::string& content_type,
                                             const std::string& payload) {
  // The payload goes as bytes (libpq's binary parameter), not as twice as many hex digits.
  std::optional<std::int64_t> id = pg::WriteWithBytes(
      db_,
      "INSERT INTO discovery_runs (source_id, dry_run, content_type, payload) SELECT id, $2, "
      "$3, $4::bytea FROM discovery_sources WHERE id = $1 RETURNING id",
      {std::to_string(source_id), dry_run ? "true" : "false",
       content_type.empty() ? std::nullopt : std::optional(content_type),
       payload.empty() ? std::nullopt : std::optional(payload)},
      3);
  if (!id)
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(source_id) + " does not exist");
  return *Find(*id);
}

std::optional<DiscoveryRun> DiscoveryRunRepository::Find(std::int64_t id) {
  std::optional<DiscoveryRun> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kRunColumns + " FROM discovery_runs WHERE id = $1",
      [&](const soci::row& r) { found = RunFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<DiscoveryRun> DiscoveryRunRepository::List(std::optional<std::int64_t> source_id,
                                                       std::int64_t after, int limit) {
  const std::optional<long long> source = source_id;
  std::vector<DiscoveryRun> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kRunColumns +
          " FROM discovery_runs WHERE ($1::bigint IS NULL OR source_id = $1) AND id > $2 ORDER "
          "BY id LIMIT $3",
      [&](const soci::row& r) { out.push_back(RunFromRow(r)); }, soci::use(source),
      soci::use(static_cast<long long>(after)), soci::use(limit));
  return out;
}

std::vector<model::DecisionBlock> DiscoveryRunRepository::DecisionBlocks(
    std::int64_t run_id, std::int64_t after_seq, const std::optional<std::string>& outcome,
    int max_blocks) {
  std::vector<model::DecisionBlock> out;
  sql::ForEachRow(
      db_,
      "SELECT first_seq, last_seq, outcomes::text, decisions, decisions_lz4, decisions_bytes "
      "FROM discovery_decisions WHERE run_id = $1 AND last_seq > $2 AND ($3::text IS NULL OR "
      "outcomes ? $3) ORDER BY first_seq LIMIT $4",
      [&](const soci::row& r) {
        model::DecisionBlock block;
        block.first_seq = sql::Int(r, 0);
        block.last_seq = sql::Int(r, 1);
        block.outcomes = sql::Json(r, 2).as_object();
        // Blocks written before 0012 are text; later ones LZ4 blocks compressed by cmdb.
        block.text = sql::OptionalText(r, 3);
        if (!block.text) {
          block.compressed = pg::DecodeBytea(sql::Text(r, 4));
          block.bytes = sql::Int(r, 5);
        }
        out.push_back(std::move(block));
      },
      soci::use(static_cast<long long>(run_id)), soci::use(static_cast<long long>(after_seq)),
      soci::use(outcome), soci::use(max_blocks));
  return out;
}

void DiscoveryRunRepository::QueueScheduled() {
  sql::Execute(
      db_,
      "WITH due AS (SELECT id, interval_seconds FROM discovery_sources WHERE interval_seconds "
      "IS NOT NULL AND next_run_at <= clock_timestamp() FOR UPDATE SKIP LOCKED), "
      "bumped AS (UPDATE discovery_sources s SET next_run_at = clock_timestamp() + "
      "due.interval_seconds * interval '1 second' FROM due WHERE s.id = due.id RETURNING s.id) "
      "INSERT INTO discovery_runs (source_id, trigger) SELECT b.id, 'schedule' FROM bumped b "
      "WHERE NOT EXISTS (SELECT 1 FROM discovery_runs r WHERE r.source_id = b.id AND r.state "
      "IN ('queued', 'running'))");
}

RunInput DiscoveryRunRepository::Input(std::int64_t run_id) {
  RunInput input;
  long long source = 0;
  int dry_run = 0;
  long long observed_at = 0;
  if (!sql::Run(db_,
                "SELECT r.source_id, r.dry_run, coalesce(r.content_type, ''), "
                "cmdb_us(coalesce(r.started_at, clock_timestamp())) FROM discovery_runs r WHERE "
                "r.id = $1",
                soci::into(source), soci::into(dry_run), soci::into(input.content_type),
                soci::into(observed_at), soci::use(static_cast<long long>(run_id)))) {
    throw Error(ErrorCode::kNotFound, "run vanished");
  }
  input.source_id = source;
  input.dry_run = dry_run != 0;
  input.observed_at = model::Timestamp{observed_at};
  // The payload's bytes as they are (binary result format), not 2 hex digits per byte.
  std::optional<std::vector<std::string>> payload = pg::ReadBinaryRow(
      db_, "SELECT payload FROM discovery_runs WHERE id = $1", {std::to_string(run_id)});
  if (payload) input.payload = std::move(payload->front());
  return input;
}

void DiscoveryRunRepository::ReportProgress(std::int64_t run_id, std::int64_t done,
                                            std::int64_t total) {
  sql::Execute(db_,
               "UPDATE discovery_runs SET progress_done = $2, progress_total = $3 WHERE id = $1",
               soci::use(static_cast<long long>(run_id)), soci::use(static_cast<long long>(done)),
               soci::use(static_cast<long long>(total)));
}

void DiscoveryRunRepository::WriteDecisionBlocks(std::int64_t run_id,
                                                 const std::vector<model::DecisionBlock>& blocks) {
  if (blocks.empty()) return;
  pg::CopyBuffer buffer;
  for (const model::DecisionBlock& block : blocks) {
    buffer.Int(run_id);
    buffer.Int(block.first_seq);
    buffer.Int(block.last_seq);
    buffer.Field(model::ToJsonText(block.outcomes));
    buffer.Bytea(block.compressed);
    buffer.Int(block.bytes);
    buffer.EndRow();
  }
  pg::CopyIn(db_,
             "COPY discovery_decisions (run_id, first_seq, last_seq, outcomes, decisions_lz4, "
             "decisions_bytes) FROM STDIN",
             buffer);
}

void DiscoveryRunRepository::Succeed(std::int64_t run_id, const json::object& counts,
                                     std::int64_t observed) {
  sql::Execute(db_,
               "UPDATE discovery_runs SET state = 'succeeded', counts = $2::jsonb, progress_done "
               "= $3, progress_total = $3, finished_at = clock_timestamp(), payload = NULL WHERE "
               "id = $1",
               soci::use(static_cast<long long>(run_id)), soci::use(model::ToJsonText(counts)),
               soci::use(static_cast<long long>(observed)));
}

void DiscoveryRunRepository::SetTimings(std::int64_t run_id, const json::object& timings) {
  sql::Execute(db_, "UPDATE discovery_runs SET timings = $2::jsonb WHERE id = $1",
               soci::use(static_cast<long long>(run_id)), soci::use(model::ToJsonText(timings)));
}

void DiscoveryRunRepository::Fail(std::int64_t run_id, const std::string& error) {
  sql::Execute(db_,
               "UPDATE discovery_runs SET state = 'failed', error = $2, finished_at = "
               "clock_timestamp(), payload = NULL WHERE id = $1",
               soci::use(static_cast<long long>(run_id)), soci::use(error.substr(0, 4000)));
}

std::int64_t DiscoveryRunRepository::CreatedCis(std::int64_t run_id) {
  long long created = 0;
  sql::Run(db_,
           "SELECT coalesce((counts->>'created')::bigint, 0) FROM discovery_runs WHERE id = $1 "
           "AND NOT dry_run",
           soci::into(created), soci::use(static_cast<long long>(run_id)));
  return created;
}

}  // namespace cmdb::store
