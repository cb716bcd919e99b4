#include <algorithm>

#include <boost/json.hpp>

#include "import/csv.hpp"
#include "import/document_stream.hpp"
#include "import/importer.hpp"
#include "jobs/job_worker.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"
#include "server/problem.hpp"
#include "store/audit_repository.hpp"
#include "store/db_pool.hpp"
#include "store/import_job_repository.hpp"
#include "store/transaction.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

// RFC 7240: `Prefer: respond-async` (tokens are case-insensitive, may carry parameters and
// share the header with other preferences).
bool PrefersAsync(const Request& request) {
  std::string_view prefer = request.Header("prefer");
  while (!prefer.empty()) {
    std::size_t comma = prefer.find(',');
    std::string_view item = prefer.substr(0, comma);
    item = item.substr(0, item.find(';'));
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    constexpr std::string_view kToken = "respond-async";
    if (item.size() == kToken.size() &&
        std::equal(item.begin(), item.end(), kToken.begin(),
                   [](char a, char b) { return (a | 0x20) == b || a == b; })) {
      return true;
    }
    if (comma == std::string_view::npos) break;
    prefer.remove_prefix(comma + 1);
  }
  return false;
}

std::string JobPath(std::int64_t id) { return "/api/v1/import-jobs/" + std::to_string(id); }

json::object JobJson(const model::ImportJob& job) {
  json::object o{{"id", job.id},
                 {"state", json::value_from(job.state)},
                 {"format", job.format},
                 {"type", job.ci_type ? json::value(*job.ci_type) : json::value(nullptr)},
                 {"mode", job.atomic ? "atomic" : "partial"},
                 {"payload_bytes", job.payload_bytes},
                 {"submitted_by", job.submitted_by},
                 {"attempts", job.attempts},
                 {"claimed_by", job.claimed_by ? json::value(*job.claimed_by) : nullptr},
                 {"queued_at", model::FormatTimestamp(job.queued_at)},
                 {"started_at", model::TimestampJson(job.started_at)},
                 {"finished_at", model::TimestampJson(job.finished_at)}};
  o["progress"] =
      json::object{{"phase", job.phase ? json::value(*job.phase) : json::value(nullptr)},
                   {"phases_done", job.phases_done},
                   {"phases_total", job.phases_total ? json::value(*job.phases_total) : nullptr},
                   {"rows", job.rows ? json::value(*job.rows) : json::value(nullptr)},
                   {"rows_done", job.rows_done},
                   {"bytes_read", job.bytes_read}};
  o["result"] = job.result;
  if (job.state == model::JobState::kFailed) {
    // As the synchronous import would have answered; a job abandoned by stopped instances
    // records no code.
    model::Error error(job.error_code.value_or(ErrorCode::kUnavailable),
                       job.error.value_or("the import failed"), job.error_fields);
    o["error"] = ProblemJson(error, JobPath(job.id));
  } else {
    o["error"] = nullptr;
  }
  return o;
}

// What the query and headers of POST /api/v1/import say, checked before the body is read.
struct ImportRequest {
  import::ImportOptions options;
  bool async = false;
  bool csv = false;
  std::optional<std::string> type;
};

ImportRequest ReadImportRequest(const Request& request) {
  CheckQueryParams(request, {"mode", "type", "async"});
  ImportRequest out;
  if (auto mode = request.Query("mode")) {
    if (*mode != "atomic" && *mode != "partial") {
      throw Error(ErrorCode::kInvalidArgument, "mode must be atomic or partial");
    }
    out.options.atomic = *mode == "atomic";
  }
  out.async = ParseBoolParam(request, "async").value_or(false) || PrefersAsync(request);
  const std::string media = request.MediaType();
  out.csv = media == "text/csv";
  out.type = request.Query("type");
  out.options.ctx.changed_by = Writer(request).changed_by;
  if (out.csv) {
    if (!out.type || out.type->empty()) {
      throw Error(ErrorCode::kInvalidArgument, "a CSV import names its CI type: ?type=server");
    }
  } else {
    if (out.type) {
      throw Error(ErrorCode::kInvalidArgument,
                  "type applies to CSV imports; a JSON import names each CI's type");
    }
    if (media != "application/json" && !media.empty() &&
        !(media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0)) {
      throw Error(ErrorCode::kUnsupportedMediaType,
                  "import takes application/json or text/csv, not " + media);
    }
  }
  return out;
}

// A background import's body, stored as it arrives (in the parts the listener reads) in one
// transaction with its job, which commits once the whole body is in: a client that goes away,
// or a body that is not JSON or not an import document, leaves nothing queued. JSON is checked
// as it streams by (syntax, depth, the document's shape); rows are checked when the job runs.
class ImportUpload : public StreamedRequest {
 public:
  ImportUpload(AppContext& ctx, const ImportRequest& request)
      : ctx_(ctx), session_(ctx.db->Lease()), tr_(session_), jobs_(session_), csv_(request.csv) {
    if (csv_) {
      records_.emplace();
    } else {
      check_.emplace(import::ImportDocumentStream::Keep{});
    }
    id_ = jobs_.Create({csv_ ? "csv" : "json", csv_ ? request.type : std::nullopt,
                        request.options.atomic, request.options.ctx.changed_by,
                        import::kImportSteps});
  }

  void Write(std::string_view part) override {
    if (part.empty()) return;
    if (check_) check_->Write(part);
    CountRecords([&] { records_->Write(part); });
    jobs_.Append(id_, seq_++, part);
    bytes_ += static_cast<std::int64_t>(part.size());
  }

  Response Finish() override {
    if (bytes_ == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  csv_ ? "the CSV body is empty" : "the request body is empty");
    }
    if (check_) check_->Finish();
    CountRecords([&] { records_->Finish(); });
    // The CI rows counted on the way in: the job's importer sizes its decisions by them (a
    // CSV file's data records; the header is the first record).
    std::optional<std::int64_t> ci_rows;
    if (check_) ci_rows = check_->cis_seen();
    if (records_) ci_rows = std::max<std::int64_t>(0, record_count_ - 1);
    const model::ImportJob job = jobs_.Seal(id_, bytes_, ci_rows);
    tr_.Commit();
    if (ctx_.imports != nullptr) ctx_.imports->Wake();
    Response response = JsonResponse(202, JobJson(job));
    response.headers.emplace_back("Location", JobPath(job.id));
    response.headers.emplace_back("Preference-Applied", "respond-async");
    return response;
  }

 private:
  AppContext& ctx_;
  store::DbSession session_;
  store::Transaction tr_;
  store::ImportJobRepository jobs_;
  // Counts a CSV payload's records as they complete. A file the job will refuse (an unclosed
  // quote, a record past the reader's 16 MiB) is still queued, and fails as a job, as before:
  // it is only not counted. The reader refuses a record past that size as soon as it has read
  // that much of it, so the upload's memory stays bounded whatever it is sent.
  template <typename Step>
  void CountRecords(const Step& step) {
    if (!records_) return;
    try {
      step();
      record_count_ += static_cast<std::int64_t>(records_->Take().size());
    } catch (const std::exception&) {
      records_.reset();
    }
  }

  bool csv_ = false;
  std::optional<import::ImportDocumentStream> check_;
  std::optional<import::CsvReader> records_;
  std::int64_t record_count_ = 0;
  std::int64_t id_ = 0;
  int seq_ = 0;
  std::int64_t bytes_ = 0;
};

}  // namespace

Response PostImport(const Request& request, const PathParams&, AppContext& ctx) {
  ImportRequest parsed = ReadImportRequest(request);
  if (parsed.async) {
    // The body was read whole (no streaming listener): stored as a streamed one would be.
    ImportUpload upload(ctx, parsed);
    const std::string_view body = request.body;
    for (std::size_t at = 0; at < body.size(); at += store::kImportChunkBytes) {
      upload.Write(body.substr(at, store::kImportChunkBytes));
    }
    return upload.Finish();
  }
  if (parsed.csv && request.body.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "the CSV body is empty");
  }
  store::DbSession session = ctx.db->Lease();
  parsed.options.cache = ctx.import_cache;
  std::optional<import::ImportResult> result;
  if (parsed.csv) {
    result = import::ImportCsv(session, *parsed.type, request.body, parsed.options);
  } else if (!request.body.empty()) {
    // Read in batches, each written while the next is read; a body that is not an import
    // document, or an atomic import with a bad row, is read again whole for the answer.
    result = import::ImportJsonText(session, request.body, parsed.options, ctx.import_batches);
  }
  if (!result) {
    const json::value document = ParseJsonBody(request);
    result = import::ImportDocument(session, document, parsed.options);
  }
  if (result->Wrote()) {
    GraphChanged(ctx);
    // The debounced audit after imports (the audit worker queues it once the burst is over).
    store::AuditRepository(session).RequestRun(model::AuditTrigger::kImport);
  }
  return JsonResponse(200, import::ImportResultToJson(*result));
}

std::unique_ptr<StreamedRequest> StreamImport(const Request& request, const PathParams&,
                                              AppContext& ctx) {
  ImportRequest parsed = ReadImportRequest(request);
  if (!parsed.async) return nullptr;  // read whole, under the body limit
  return std::make_unique<ImportUpload>(ctx, parsed);
}

Response ListImportJobs(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "limit", "cursor"});
  const std::optional<model::JobState> state = EnumParam(request, "state", model::kJobStateNames);
  const int limit = ParseLimit(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(
      store::ImportJobRepository(session).List(state, DecodeCursor(request), limit + 1),
      static_cast<std::size_t>(limit), JobJson);
}

Response GetImportJob(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "import job id");
  store::DbSession session = ctx.db->Lease();
  std::optional<model::ImportJob> job = store::ImportJobRepository(session).Find(id);
  if (!job) {
    throw Error(ErrorCode::kNotFound, "import job " + std::to_string(id) + " does not exist");
  }
  return JsonResponse(200, JobJson(*job));
}

}  // namespace cmdb::server::handlers
