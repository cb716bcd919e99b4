#include "import/importer.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <set>

#include "import/ci_writer.hpp"
#include "import/csv.hpp"
#include "import/document_stream.hpp"
#include "import/import_state.hpp"
#include "import/relation_writer.hpp"
#include "import/validation.hpp"
#include "model/json.hpp"
#include "store/ci_type_repository.hpp"
#include "store/import_store.hpp"
#include "store/transaction.hpp"

namespace cmdb::import {

using model::Error;
using model::ErrorCode;
using model::FieldErrors;
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxImportRows = 1000000;

using Clock = std::chrono::steady_clock;

[[noreturn]] void ThrowRejected(const std::vector<ImportRowError>& errors) {
  std::vector<model::FieldError> fields;
  std::set<std::string> bad_rows;
  for (const auto& e : errors) {
    fields.push_back({e.row + (e.field.empty() ? "" : "." + e.field), e.message});
    bad_rows.insert(e.row);
  }
  throw Error(ErrorCode::kValidationFailed,
              std::to_string(bad_rows.size()) +
                  (bad_rows.size() == 1 ? " row is invalid" : " rows are invalid") +
                  "; nothing was imported (use mode=partial to import the valid rows)",
              std::move(fields));
}

// Counts and ids of the batch of CIs about to be written, added to the import's.
void TallyCiBatch(ImportState& state, const std::vector<CiRow>& rows) {
  for (const CiRow& row : rows) {
    switch (row.action) {
      case Action::kRejected:
        ++state.ci_counts.rejected;
        break;
      case Action::kCreate:
        ++state.ci_counts.created;
        break;
      case Action::kUpdate:
        ++state.ci_counts.updated;
        break;
      case Action::kUnchanged:
        ++state.ci_counts.unchanged;
        break;
    }
    state.ci_ids.push_back(row.action == Action::kRejected ? 0 : row.id);
  }
  state.rows_done += static_cast<std::int64_t>(rows.size());
  state.ci_offset += rows.size();
}

void Begin(ImportState& state, std::string_view phase, int done) {
  if (state.options.progress) {
    state.options.progress({phase, done, state.rows_total, state.rows_done});
  }
}

void ThrowIfRejected(const ImportState& state) {
  if (state.options.atomic && (!state.errors.empty() || state.errors_omitted > 0)) {
    ThrowRejected(state.errors);
  }
}

// The CI rows of the batch in state.rows: validated, matched and written with their history.
void RunCiBatch(ImportState& state) {
  for (const CiRow& row : state.rows) state.imported_types.insert(row.draft.type);
  auto t = Clock::now();
  Begin(state, "validate", 1);
  ValidateRows(state);
  t = state.Phase("validate", t);
  Begin(state, "lock_and_load_identities", 2);
  LockTypesAndLoadIdentities(state);
  t = state.Phase("lock_and_load_identities", t);
  Begin(state, "match", 3);
  MatchRows(state);
  t = state.Phase("match", t);
  Begin(state, "load_matched", 4);
  LoadMatched(state);
  t = state.Phase("load_matched", t);
  ThrowIfRejected(state);
  RecordWritten(state);
  Begin(state, "write_cis_and_history", 5);
  state.AwaitWrite();  // the previous batch's: the session is needed again
  t = Clock::now();
  CiWrite write = PrepareWrite(state);
  TallyCiBatch(state, write.rows);
  state.Phase("prepare_write", t);
  // The rows are written from here on without the state: beside the next batch when pipelined.
  auto run = [&db = state.db, ctx = state.options.ctx, write = std::move(write)]() mutable {
    const auto started = Clock::now();
    std::vector<ImportPhase> phases = WriteCis(db, ctx, write);
    { CiWrite done = std::move(write); }  // freed here, not by whoever waits for the write
    phases.push_back(
        {"write_cis_and_history", std::chrono::duration<double>(Clock::now() - started).count()});
    return phases;
  };
  if (state.pipelined) {
    state.writing = std::async(std::launch::async, std::move(run));
  } else {
    for (ImportPhase& phase : run()) state.phases.push_back(std::move(phase));
  }
}

void RunRelationBatch(ImportState& state, const json::array& relations) {
  state.AwaitWrite();
  LoadTypes(state);
  // Relations of an import without CIs are written at the database's clock too.
  if (state.now.micros == 0) state.now = store::ImportStore(state.db).Now();
  const auto t = Clock::now();
  Begin(state, "relations", 6);
  state.relations = &relations;
  WriteRelations(state);
  state.relations = nullptr;
  state.Phase("relations", t);
  state.relation_offset += relations.size();
  state.rows_done += static_cast<std::int64_t>(relations.size());
  ThrowIfRejected(state);
}

// The answer: the counts and ids of every batch, each phase's seconds summed over them.
ImportResult Result(ImportState& state) {
  state.AwaitWrite();
  ImportResult result;
  result.cis = state.ci_counts;
  result.ci_ids = std::move(state.ci_ids);
  result.errors = std::move(state.errors);
  result.errors_omitted = state.errors_omitted;
  result.relations = state.relation_counts;
  for (ImportPhase& phase : state.phases) {
    auto same = std::find_if(result.phases.begin(), result.phases.end(),
                             [&](const ImportPhase& p) { return p.name == phase.name; });
    if (same == result.phases.end()) {
      result.phases.push_back(std::move(phase));
    } else {
      same->seconds += phase.seconds;
    }
  }
  return result;
}

// A whole import held in memory (a request's body, a CSV file): its CIs as one batch and its
// relations as another, in one transaction (a savepoint in the caller's).
ImportResult Run(ImportState& state, const json::array* relations, Clock::time_point started) {
  if (state.rows.size() > kMaxImportRows) {
    throw Error(ErrorCode::kInvalidArgument,
                "an import request holds at most 1000000 CIs; send more as a background job "
                "(Prefer: respond-async), which reads its payload as a stream");
  }
  state.rows_total =
      static_cast<std::int64_t>(state.rows.size() + (relations != nullptr ? relations->size() : 0));
  store::Transaction tr(state.db);
  state.keep_written = !tr.nested();
  state.Phase("parse", started);
  RunCiBatch(state);
  if (relations != nullptr) RunRelationBatch(state, *relations);
  const auto t = Clock::now();
  Begin(state, "commit", 7);
  tr.Commit();
  state.Phase("commit", t);
  if (state.keep_written) {  // its own transaction
    KeepWritten(state);
    RecordKept(state);
  }
  return Result(state);
}

}  // namespace

ImportState::~ImportState() {
  if (!writing.valid()) return;
  try {
    writing.get();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the import failed already; its caller rolls back
  }
}

void ImportState::AwaitWrite() {
  if (!writing.valid()) return;
  const auto started = Clock::now();
  std::vector<ImportPhase> written = writing.get();
  for (ImportPhase& phase : written) phases.push_back(std::move(phase));
  Phase("await_write", started);
}

void ImportState::Report(const std::string& label, FieldErrors& field_errors) {
  for (auto& e : field_errors.Take()) AddError({label, std::move(e.field), std::move(e.message)});
}

void ImportState::AddError(ImportRowError error) {
  if (options.max_errors != 0 && errors.size() >= options.max_errors) {
    ++errors_omitted;
    return;
  }
  errors.push_back(std::move(error));
}

std::string ImportState::LabelOf(std::size_t row) const {
  if (row >= ci_offset && row - ci_offset < rows.size()) return rows[row - ci_offset].label;
  if (row < csv_lines.size()) return "line " + std::to_string(csv_lines[row]);
  return "cis[" + std::to_string(row) + "]";  // a row of an earlier batch of a document
}

void ImportState::Reject(CiRow& row, const std::string& field, const std::string& message) {
  AddError({row.label, field, message});
  row.action = Action::kRejected;
}

Clock::time_point ImportState::Phase(const char* name, Clock::time_point since) {
  const auto ended = Clock::now();
  phases.push_back({name, std::chrono::duration<double>(ended - since).count()});
  return ended;
}

void CheckImportDocumentShape(const json::value& document) {
  if (!document.is_object()) {
    throw Error(ErrorCode::kInvalidArgument,
                R"(an import document is an object {"cis": [...], "relations": [...]})");
  }
  const json::object& o = document.get_object();
  FieldErrors shape;
  for (const auto& [key, unused] : o) {
    if (key != "cis" && key != "relations") {
      shape.Add(std::string(key), "is not a field of an import");
    }
  }
  const json::value* cis = o.if_contains("cis");
  const json::value* relations = o.if_contains("relations");
  if (cis != nullptr && !cis->is_array()) shape.Add("cis", "must be an array of CIs");
  if (relations != nullptr && !relations->is_array()) {
    shape.Add("relations", "must be an array of relations");
  }
  if (cis == nullptr && relations == nullptr) shape.Add("cis", "is required (or relations)");
  shape.ThrowIfAny("the import document has the wrong shape");
}

ImportResult ImportDocument(store::DbSession& db, const json::value& document,
                            const ImportOptions& options) {
  const auto started = Clock::now();
  CheckImportDocumentShape(document);
  const json::object& o = document.get_object();
  ImportState state(db, options);
  if (const json::value* cis = o.if_contains("cis")) AddCis(state, cis->get_array());
  const json::value* relations = o.if_contains("relations");
  return Run(state, relations != nullptr ? &relations->get_array() : nullptr, started);
}

BatchImport::BatchImport(store::DbSession& db, const ImportOptions& options)
    : state_(std::make_unique<ImportState>(db, options)) {
  state_->pipelined = true;
}

BatchImport::~BatchImport() = default;

void BatchImport::AddCis(const json::array& cis) {
  const auto started = Clock::now();
  import::AddCis(*state_, cis);
  state_->Phase("parse", started);
  RunCiBatch(*state_);
}

void BatchImport::AddParseSeconds(double seconds) { state_->phases.push_back({"parse", seconds}); }

void BatchImport::AddRelations(const json::array& relations) {
  RunRelationBatch(*state_, relations);
}

void BatchImport::SetTotalRows(std::int64_t rows) { state_->rows_total = rows; }

void BatchImport::ExpectCiRows(std::int64_t rows) { state_->ci_rows_expected = rows; }

void BatchImport::Report(std::string_view phase, int done) { Begin(*state_, phase, done); }

ImportResult BatchImport::Finish() { return Result(*state_); }

void BatchImport::KeepWhatItWrites() { state_->keep_written = true; }

double BatchImport::Committed() {
  const double kept = KeepWritten(*state_);
  RecordKept(*state_);
  return kept;
}

ImportResult ImportJsonParts(BatchImport& batch, const BatchSizes& sizes,
                             const DocumentReader& read) {
  using Stream = ImportDocumentStream;
  // The first batches are small and double up to sizes.cis (see BatchSizes::first_cis).
  std::size_t ci_batch = std::max<std::size_t>(1, std::min(sizes.cis, sizes.first_cis));
  auto flush_cis = [&](Stream& stream) {
    if (stream.pending_cis() == 0) return;
    batch.AddCis(stream.TakeCis());
    ci_batch = std::min(sizes.cis, 2 * ci_batch);
  };
  auto flush_relations = [&](Stream& stream) {
    flush_cis(stream);  // a relation may name a CI of the batch not yet written
    if (stream.pending_relations() > 0) batch.AddRelations(stream.TakeRelations());
  };
  Stream first(Stream::Keep{.cis = true, .relations = true});
  double parse_seconds = 0;
  auto parse = [&](Stream& stream, std::string_view part) {
    const auto started = Clock::now();
    stream.Write(part);
    parse_seconds += std::chrono::duration<double>(Clock::now() - started).count();
  };
  read(0, [&](std::string_view part) {
    parse(first, part);
    if (first.pending_cis() >= ci_batch) flush_cis(first);
    if (first.pending_relations() >= sizes.relations) flush_relations(first);
  });
  first.Finish();
  batch.SetTotalRows(first.cis_seen() + first.relations_seen());
  flush_relations(first);
  if (first.relations_before_cis_ended()) {
    Stream second(Stream::Keep{.cis = false, .relations = true});
    read(1, [&](std::string_view part) {
      parse(second, part);
      if (second.pending_relations() >= sizes.relations) flush_relations(second);
    });
    second.Finish();
    flush_relations(second);
  }
  batch.AddParseSeconds(parse_seconds);
  return batch.Finish();
}

std::optional<ImportResult> ImportJsonText(store::DbSession& db, std::string_view text,
                                           const ImportOptions& options, const BatchSizes& sizes) {
  // Parts of this size go to the parser; a batch is taken once a part completes it.
  constexpr std::size_t kPartBytes = 256 << 10;
  auto read = [text](int, const std::function<void(std::string_view)>& sink) {
    for (std::size_t at = 0; at < text.size(); at += kPartBytes) sink(text.substr(at, kPartBytes));
  };
  const auto started = Clock::now();
  try {
    // A first reading counts the CIs (and checks the JSON and its shape) without keeping any.
    ImportDocumentStream count(ImportDocumentStream::Keep{});
    read(0, [&](std::string_view part) { count.Write(part); });
    count.Finish();
    if (count.cis_seen() > static_cast<std::int64_t>(kMaxImportRows)) return std::nullopt;
    const double count_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    store::Transaction tr(db);
    BatchImport batch(db, options);  // destroyed first: a failed import's write ends before
    if (!tr.nested()) batch.KeepWhatItWrites();
    batch.AddParseSeconds(count_seconds);
    batch.ExpectCiRows(count.cis_seen());
    ImportResult result = ImportJsonParts(batch, sizes, read);  // its last write has ended
    const bool own = !tr.nested();
    tr.Commit();
    if (const double kept = own ? batch.Committed() : 0; kept > 0) {
      result.phases.push_back({"keep_written", kept});
    }
    return result;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kValidationFailed) {
      return std::nullopt;
    }
    throw;
  }
}

namespace {

model::CiType CsvType(store::DbSession& db, std::string_view type_name) {
  std::optional<model::CiType> type = store::CiTypeRepository(db).Find(type_name);
  if (!type) {
    throw Error(ErrorCode::kValidationFailed, "unknown CI type",
                {{"type", "unknown CI type '" + std::string(type_name) + "'"}});
  }
  return std::move(*type);
}

[[noreturn]] void ThrowEmptyCsv() {
  throw Error(ErrorCode::kValidationFailed, "the CSV file is empty",
              {{"header", "a header line naming the columns is required"}});
}

// One data record of a CSV import as a row of the batch (or the reason it is not one),
// labelled by its line.
void AddCsvRecord(ImportState& state, const model::CiType& type,
                  const std::vector<std::string>& header, const CsvRecord& record) {
  const std::string label = "line " + std::to_string(record.line);
  state.csv_lines.push_back(record.line);
  if (record.fields.size() != header.size()) {
    AddRowError(state, label, "",
                "has " + std::to_string(record.fields.size()) + " fields; the header has " +
                    std::to_string(header.size()));
    return;
  }
  std::string field;
  std::string message;
  std::optional<json::value> row = CiFromCsvRecord(type, header, record, field, message);
  if (!row) {
    AddRowError(state, label, field, message);
    return;
  }
  AddOwnedCi(state, label, std::move(*row));
}

}  // namespace

ImportResult ImportCsv(store::DbSession& db, std::string_view type_name, std::string_view csv,
                       const ImportOptions& options) {
  const auto started = Clock::now();
  const model::CiType type = CsvType(db, type_name);
  std::vector<CsvRecord> records = ParseCsv(csv);
  if (records.empty()) ThrowEmptyCsv();
  const std::vector<std::string>& header = records.front().fields;
  CheckCsvHeader(type, header);
  ImportState state(db, options);
  for (std::size_t r = 1; r < records.size(); ++r) AddCsvRecord(state, type, header, records[r]);
  return Run(state, nullptr, started);
}

struct CsvStreamImport::Impl {
  Impl(store::DbSession& db, std::string_view type_name, const ImportOptions& options,
       std::size_t rows_per_batch)
      : state(db, options),
        type(CsvType(db, type_name)),
        batch(std::max<std::size_t>(1, rows_per_batch)) {
    state.pipelined = true;
  }

  // Takes the records read so far: the header first, then rows, a batch written when full.
  void Drain() {
    for (CsvRecord& record : reader.Take()) {
      if (!header) {
        CheckCsvHeader(type, record.fields);
        header = std::move(record.fields);
        continue;
      }
      AddCsvRecord(state, type, *header, record);
      if (state.rows.size() >= batch) RunCiBatch(state);
    }
  }

  ImportState state;
  model::CiType type;
  std::size_t batch;
  CsvReader reader;
  std::optional<std::vector<std::string>> header;
};

CsvStreamImport::CsvStreamImport(store::DbSession& db, std::string_view type,
                                 const ImportOptions& options, std::size_t rows_per_batch)
    : impl_(std::make_unique<Impl>(db, type, options, rows_per_batch)) {}

CsvStreamImport::~CsvStreamImport() = default;

void CsvStreamImport::ExpectCiRows(std::int64_t rows) { impl_->state.ci_rows_expected = rows; }

void CsvStreamImport::Committed() { RecordKept(impl_->state); }

void CsvStreamImport::Write(std::string_view part) {
  impl_->reader.Write(part);
  impl_->Drain();
}

ImportResult CsvStreamImport::Finish() {
  impl_->reader.Finish();
  impl_->Drain();
  if (!impl_->header) ThrowEmptyCsv();
  ImportState& state = impl_->state;
  state.rows_total = static_cast<std::int64_t>(state.ci_offset + state.rows.size());
  if (!state.rows.empty() || state.ci_offset == 0) RunCiBatch(state);
  return Result(state);
}

json::object ImportResultToJson(const ImportResult& result) {
  auto counts = [](const ImportCounts& c) {
    return json::object{{"created", c.created},
                        {"updated", c.updated},
                        {"unchanged", c.unchanged},
                        {"rejected", c.rejected}};
  };
  json::object body = counts(result.cis);
  body["relations"] = counts(result.relations);
  json::array errors;
  for (const auto& e : result.errors) {
    errors.push_back(json::object{{"row", e.row},
                                  {"field", e.row + (e.field.empty() ? "" : "." + e.field)},
                                  {"message", e.message}});
  }
  body["errors"] = std::move(errors);
  body["errors_omitted"] = result.errors_omitted;
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

}  // namespace cmdb::import
