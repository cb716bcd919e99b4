#include "model/import_jobs.hpp"

#include <cstdio>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "model/db_query.hpp"
#include "model/json.hpp"

namespace cmdb::model {

namespace json = boost::json;

namespace {

json::object CountsJson(const ImportCounts& c) {
  return {{"created", c.created},
          {"updated", c.updated},
          {"unchanged", c.unchanged},
          {"rejected", c.rejected}};
}

const char* const kJobColumns =
    "id, state, format, ci_type, atomic, payload_bytes, submitted_by, rows_total, phase, "
    "progress_done, progress_total, result::text, error, error_code, error_fields::text, "
    "attempts, claimed_by, cmdb_us(queued_at), cmdb_us(started_at), cmdb_us(finished_at)";

ImportJob JobFromRow(const PgResult& r, int row) {
  ImportJob job;
  job.id = r.Int(row, 0);
  job.state = std::string(r.Text(row, 1));
  job.format = std::string(r.Text(row, 2));
  job.ci_type = r.OptionalText(row, 3);
  job.atomic = r.Bool(row, 4);
  job.payload_bytes = r.Int(row, 5);
  job.submitted_by = std::string(r.Text(row, 6));
  job.rows = r.OptionalInt(row, 7);
  job.phase = r.OptionalText(row, 8);
  job.phases_done = r.Int(row, 9);
  job.phases_total = r.OptionalInt(row, 10);
  job.result = r.Json(row, 11);
  job.error = r.OptionalText(row, 12);
  if (!r.IsNull(row, 13)) job.error_code = ErrorCodeFromName(r.Text(row, 13));
  if (!r.IsNull(row, 14)) {
    const json::value fields = r.Json(row, 14);
    for (const json::value& e : fields.as_array()) {
      const json::object& o = e.as_object();
      job.error_fields.push_back(
          {std::string(o.at("field").as_string()), std::string(o.at("message").as_string())});
    }
  }
  job.attempts = static_cast<int>(r.Int(row, 15));
  job.claimed_by = r.OptionalText(row, 16);
  job.queued_at = Timestamp{r.Int(row, 17)};
  job.started_at = r.OptionalTimestamp(row, 18);
  job.finished_at = r.OptionalTimestamp(row, 19);
  return job;
}

void MarkFailed(soci::session& sql, std::int64_t id, const Error& error) {
  json::array fields;
  for (const FieldError& f : error.field_errors()) {
    fields.push_back(json::object{{"field", f.field}, {"message", f.message}});
  }
  Query(sql,
        "UPDATE import_jobs SET state = 'failed', error = $2, error_code = $3, error_fields = "
        "$4::jsonb, finished_at = clock_timestamp(), payload = NULL, phase = NULL WHERE id = $1",
        {P(id), P(std::string(error.what()).substr(0, 4000)), P(ErrorCodeName(error.code())),
         fields.empty() ? PgParam(std::nullopt) : P(json::serialize(fields))});
}

// One structured log line with the real cause of a job's internal failure.
void LogFailure(std::int64_t id, const char* cause) {
  const std::string line = json::serialize(json::object{
      {"level", "error"}, {"msg", "import job failed"}, {"job", id}, {"cause", cause}});
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

json::object ImportResultToJson(const ImportResult& result) {
  json::object body = CountsJson(result.cis);
  body["relations"] = CountsJson(result.relations);
  json::array errors;
  for (const auto& e : result.errors) {
    errors.push_back(json::object{{"row", e.row},
                                  {"field", e.row + (e.field.empty() ? "" : "." + e.field)},
                                  {"message", e.message}});
  }
  body["errors"] = std::move(errors);
  json::array ids;
  ids.reserve(result.ci_ids.size());
  for (auto id : result.ci_ids) {
    ids.emplace_back(id == 0 ? json::value(nullptr) : json::value(id));
  }
  body["ci_ids"] = std::move(ids);
  json::object phases;
  for (const auto& phase : result.phases) phases[phase.name] = phase.seconds;
  body["timings"] = std::move(phases);
  return body;
}

ImportJob ImportJobStore::Enqueue(const ImportJobRequest& request) {
  PgResult r = QueryWithBytes(
      sql_,
      std::string("INSERT INTO import_jobs (format, ci_type, atomic, payload, payload_bytes, "
                  "submitted_by, progress_total) VALUES ($1, $2, $3, $4::bytea, $5, $6, $7) "
                  "RETURNING ") +
          kJobColumns,
      {P(request.format), P(request.ci_type), P(request.atomic ? "true" : "false"),
       P(request.payload), P(static_cast<std::int64_t>(request.payload.size())),
       P(request.submitted_by), P(kImportSteps)},
      3);
  return JobFromRow(r, 0);
}

std::optional<ImportJob> ImportJobStore::Find(std::int64_t id) {
  PgResult r = Query(sql_, std::string("SELECT ") + kJobColumns + " FROM import_jobs WHERE id = $1",
                     {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return JobFromRow(r, 0);
}

std::vector<ImportJob> ImportJobStore::List(const std::optional<std::string>& state,
                                            std::int64_t after, int limit) {
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kJobColumns +
                         " FROM import_jobs WHERE ($1::text IS NULL OR state = $1) AND id > $2 "
                         "ORDER BY id LIMIT $3",
                     {P(state), P(after), P(limit)});
  std::vector<ImportJob> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(JobFromRow(r, i));
  return out;
}

bool ExecuteImportJob(soci::session& work, soci::session& progress, std::int64_t id) {
  PgResult r = Query(work,
                     "SELECT format, ci_type, atomic, submitted_by FROM import_jobs WHERE "
                     "id = $1 AND state = 'running'",
                     {P(id)});
  if (r.rows() == 0) return false;
  const std::string format(r.Text(0, 0));
  const std::optional<std::string> ci_type = r.OptionalText(0, 1);
  ImportOptions options;
  options.atomic = r.Bool(0, 2);
  options.ctx = {std::string(r.Text(0, 3)), "import"};
  options.progress = [&](std::string_view phase, int done, int total, std::int64_t rows) {
    Query(progress,
          "UPDATE import_jobs SET phase = $2, progress_done = $3, progress_total = $4, rows_total "
          "= $5 WHERE id = $1",
          {P(id), P(phase), P(done), P(total), P(rows)});
  };
  try {
    // The payload's bytes as they are (binary result format), not decoded from hex text.
    std::string payload =
        QueryBytes(work, "SELECT payload FROM import_jobs WHERE id = $1", {P(id)});
    options.progress("parse", 0, kImportSteps, 0);
    // The import and the job's outcome commit together: a crash in between cannot leave an
    // import done and its job to be run again.
    Transaction tr(work);
    ImportResult result;
    if (format == "csv") {
      result = ImportCsv(work, ci_type.value_or(""), payload, options);
    } else {
      json::value document = ParseJson(payload);
      std::string().swap(payload);
      result = ImportDocument(work, document, options);
    }
    Query(work,
          "UPDATE import_jobs SET state = 'succeeded', result = $2::json, finished_at = "
          "clock_timestamp(), payload = NULL, phase = NULL, progress_done = $3 WHERE id = $1",
          {P(id), P(json::serialize(ImportResultToJson(result))), P(kImportSteps)});
    tr.Commit();
    return true;
  } catch (const Error& e) {
    // The database is away: leave the job running; once this session is gone its lock is
    // free and the job is retried.
    if (e.code() == ErrorCode::kUnavailable) throw;
    if (e.code() == ErrorCode::kInternal) {
      // As for requests: the cause goes to the log, not to API clients.
      LogFailure(id, e.what());
      MarkFailed(work, id, Error(ErrorCode::kInternal, "the import failed; see the server log"));
    } else {
      MarkFailed(work, id, e);
    }
  } catch (const std::exception& e) {
    LogFailure(id, e.what());
    MarkFailed(work, id, Error(ErrorCode::kInternal, "the import failed; see the server log"));
  }
  return false;
}

std::unique_ptr<JobWorker> MakeImportJobWorker(const std::string& dsn,
                                               const ImportJobWorkerOptions& options) {
  return std::make_unique<JobWorker>(
      dsn, JobTable{"import_jobs", "cmdb_import_lock_key", "import"}, options.worker,
      [graph_changed = options.graph_changed](soci::session& work, soci::session& progress,
                                              std::int64_t id) {
        if (ExecuteImportJob(work, progress, id) && graph_changed) graph_changed();
      });
}

}  // namespace cmdb::model
