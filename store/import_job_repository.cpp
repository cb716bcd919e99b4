#include "store/import_job_repository.hpp"

#include "model/json.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::ImportJob;
namespace json = boost::json;

namespace {

const char* const kJobColumns =
    "id, state, format, ci_type, atomic, payload_bytes, submitted_by, rows_total, phase, "
    "progress_done, progress_total, result::text, error, error_code, error_fields::text, "
    "attempts, claimed_by, cmdb_us(queued_at), cmdb_us(started_at), cmdb_us(finished_at), "
    "rows_done, bytes_read";

ImportJob JobFromRow(const soci::row& r) {
  ImportJob job;
  job.id = sql::Int(r, 0);
  job.state = model::JobStateFromName(sql::Text(r, 1)).value_or(model::JobState::kFailed);
  job.format = sql::Text(r, 2);
  job.ci_type = sql::OptionalText(r, 3);
  job.atomic = sql::Bool(r, 4);
  job.payload_bytes = sql::Int(r, 5);
  job.submitted_by = sql::Text(r, 6);
  job.rows = sql::OptionalInt(r, 7);
  job.phase = sql::OptionalText(r, 8);
  job.phases_done = sql::Int(r, 9);
  job.phases_total = sql::OptionalInt(r, 10);
  job.result = sql::Json(r, 11);
  job.error = sql::OptionalText(r, 12);
  if (auto code = sql::OptionalText(r, 13)) job.error_code = model::ErrorCodeFromName(*code);
  if (!sql::IsNull(r, 14)) {
    const json::value fields = sql::Json(r, 14);
    for (const json::value& e : fields.as_array()) {
      const json::object& o = e.as_object();
      job.error_fields.push_back(
          {std::string(o.at("field").as_string()), std::string(o.at("message").as_string())});
    }
  }
  job.attempts = static_cast<int>(sql::Int(r, 15));
  job.claimed_by = sql::OptionalText(r, 16);
  job.queued_at = sql::Time(r, 17);
  job.started_at = sql::OptionalTime(r, 18);
  job.finished_at = sql::OptionalTime(r, 19);
  job.rows_done = sql::Int(r, 20);
  job.bytes_read = sql::Int(r, 21);
  return job;
}

}  // namespace

std::int64_t ImportJobRepository::Create(const model::ImportJobRequest& request) {
  long long id = 0;
  sql::Run(db_,
           "INSERT INTO import_jobs (format, ci_type, atomic, submitted_by, progress_total) "
           "VALUES ($1, $2, $3, $4, $5) RETURNING id",
           soci::into(id), soci::use(request.format), soci::use(request.ci_type),
           soci::use(request.atomic ? 1 : 0), soci::use(request.submitted_by),
           soci::use(static_cast<long long>(request.phases_total)));
  return id;
}

void ImportJobRepository::Append(std::int64_t id, int seq, std::string_view bytes) {
  // The chunk goes as bytes (libpq's binary parameter), not as twice as many hex digits.
  pg::WriteWithBytes(db_, "INSERT INTO import_job_chunks (job_id, seq, data) VALUES ($1, $2, $3)",
                     {std::to_string(id), std::to_string(seq), std::string(bytes)}, 2);
}

ImportJob ImportJobRepository::Seal(std::int64_t id, std::int64_t payload_bytes,
                                    std::optional<std::int64_t> ci_rows) {
  sql::Execute(db_, "UPDATE import_jobs SET payload_bytes = $2, ci_rows = $3 WHERE id = $1",
               soci::use(static_cast<long long>(id)),
               soci::use(static_cast<long long>(payload_bytes)),
               soci::use(ci_rows ? std::optional<long long>(*ci_rows) : std::nullopt));
  return *Find(id);
}

std::optional<ImportJob> ImportJobRepository::Find(std::int64_t id) {
  std::optional<ImportJob> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kJobColumns + " FROM import_jobs WHERE id = $1",
      [&](const soci::row& r) { found = JobFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<ImportJob> ImportJobRepository::List(std::optional<model::JobState> state,
                                                 std::int64_t after, int limit) {
  const std::optional<std::string> state_name =
      state ? std::optional(std::string(model::JobStateName(*state))) : std::nullopt;
  std::vector<ImportJob> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kJobColumns +
          " FROM import_jobs WHERE ($1::text IS NULL OR state = $1) AND id > $2 ORDER BY id "
          "LIMIT $3",
      [&](const soci::row& r) { out.push_back(JobFromRow(r)); }, soci::use(state_name),
      soci::use(static_cast<long long>(after)), soci::use(limit));
  return out;
}

std::optional<ImportJobInput> ImportJobRepository::Input(std::int64_t id) {
  ImportJobInput input;
  int atomic = 0;
  std::optional<long long> ci_rows;
  if (!sql::Run(db_,
                "SELECT format, ci_type, atomic, submitted_by, ci_rows FROM import_jobs WHERE id = "
                "$1 AND state = 'running'",
                soci::into(input.format), soci::into(input.ci_type), soci::into(atomic),
                soci::into(input.submitted_by), soci::into(ci_rows),
                soci::use(static_cast<long long>(id)))) {
    return std::nullopt;
  }
  input.atomic = atomic != 0;
  if (ci_rows) input.ci_rows = static_cast<std::int64_t>(*ci_rows);
  return input;
}

std::optional<std::string> ImportJobRepository::Chunk(std::int64_t id, int seq) {
  // The chunk's bytes as they are (binary result format), not decoded from hex text.
  std::optional<std::vector<std::string>> row =
      pg::ReadBinaryRow(db_, "SELECT data FROM import_job_chunks WHERE job_id = $1 AND seq = $2",
                        {std::to_string(id), std::to_string(seq)});
  if (!row) return std::nullopt;
  return std::move(row->front());
}

void ImportJobRepository::ReportPhase(std::int64_t id, const Progress& progress) {
  sql::Execute(db_,
               "UPDATE import_jobs SET phase = $2, progress_done = $3, progress_total = $4, "
               "rows_total = $5, rows_done = $6, bytes_read = $7 WHERE id = $1",
               soci::use(static_cast<long long>(id)), soci::use(std::string(progress.phase)),
               soci::use(progress.done), soci::use(progress.total),
               soci::use(progress.rows ? std::optional<long long>(*progress.rows) : std::nullopt),
               soci::use(static_cast<long long>(progress.rows_done)),
               soci::use(static_cast<long long>(progress.bytes_read)));
}

void ImportJobRepository::Succeed(std::int64_t id, const json::object& result, int phases) {
  sql::Execute(db_,
               "UPDATE import_jobs SET state = 'succeeded', result = $2::json, finished_at = "
               "clock_timestamp(), phase = NULL, progress_done = $3, rows_done = "
               "coalesce(rows_total, rows_done), bytes_read = payload_bytes WHERE id = $1",
               soci::use(static_cast<long long>(id)), soci::use(model::ToJsonText(result)),
               soci::use(phases));  // its chunks go with it (0017_import_job_payload_lifetime.sql)
}

void ImportJobRepository::Fail(std::int64_t id, const model::Error& error) {
  json::array fields;
  for (const model::FieldError& f : error.field_errors()) {
    fields.push_back(json::object{{"field", f.field}, {"message", f.message}});
  }
  const std::optional<std::string> fields_text =
      fields.empty() ? std::nullopt : std::optional(model::ToJsonText(fields));
  sql::Execute(db_,
               "UPDATE import_jobs SET state = 'failed', error = $2, error_code = $3, "
               "error_fields = $4::jsonb, finished_at = clock_timestamp(), phase = NULL WHERE id = "
               "$1",
               soci::use(static_cast<long long>(id)),
               soci::use(std::string(error.what()).substr(0, 4000)),
               soci::use(std::string(model::ErrorCodeName(error.code()))), soci::use(fields_text));
}

std::int64_t ImportJobRepository::PruneFinished(int days) {
  return sql::Execute(db_,
                      "DELETE FROM import_jobs WHERE state IN ('succeeded', 'failed') AND "
                      "finished_at < clock_timestamp() - make_interval(days => $1)",
                      soci::use(days));
}

}  // namespace cmdb::store
