#include "import/importer.hpp"

#include <chrono>
#include <set>

#include "import/ci_writer.hpp"
#include "import/csv.hpp"
#include "import/import_state.hpp"
#include "import/relation_writer.hpp"
#include "import/validation.hpp"
#include "model/json.hpp"
#include "store/ci_type_repository.hpp"
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

ImportResult Result(ImportState& state) {
  ImportResult result;
  result.errors = std::move(state.errors);
  for (const CiRow& row : state.rows) {
    switch (row.action) {
      case Action::kRejected:
        ++result.cis.rejected;
        break;
      case Action::kCreate:
        ++result.cis.created;
        break;
      case Action::kUpdate:
        ++result.cis.updated;
        break;
      case Action::kUnchanged:
        ++result.cis.unchanged;
        break;
    }
    result.ci_ids.push_back(row.action == Action::kRejected ? 0 : row.id);
  }
  result.relations = state.relation_counts;
  result.phases = std::move(state.phases);
  return result;
}

// The phases of an import after its rows were added, in one transaction (a savepoint in the
// caller's), each reported to options.progress and timed.
ImportResult Run(ImportState& state, Clock::time_point started) {
  if (state.rows.size() > kMaxImportRows) {
    throw Error(ErrorCode::kInvalidArgument, "an import holds at most 1000000 CIs");
  }
  const auto rows = static_cast<std::int64_t>(
      state.rows.size() + (state.relations != nullptr ? state.relations->size() : 0));
  int step = 1;  // "parse" is done: the rows were added before Run
  auto begin = [&](std::string_view name) {
    if (state.options.progress) state.options.progress(name, step++, kImportSteps, rows);
  };
  store::Transaction tr(state.db);
  auto t = state.Phase("parse", started);
  begin("validate");
  ValidateRows(state);
  t = state.Phase("validate", t);
  begin("lock_and_load_identities");
  LockTypesAndLoadIdentities(state);
  t = state.Phase("lock_and_load_identities", t);
  begin("match");
  MatchRows(state);
  t = state.Phase("match", t);
  begin("load_matched");
  LoadMatched(state);
  t = state.Phase("load_matched", t);
  if (state.options.atomic && !state.errors.empty()) ThrowRejected(state.errors);
  begin("write_cis_and_history");
  WriteCis(state);
  t = state.Phase("write_cis_and_history", t);
  begin("relations");
  WriteRelations(state);
  t = state.Phase("relations", t);
  if (state.options.atomic && !state.errors.empty()) ThrowRejected(state.errors);
  begin("commit");
  tr.Commit();
  state.Phase("commit", t);
  return Result(state);
}

}  // namespace

void ImportState::Report(const std::string& label, FieldErrors& field_errors) {
  for (auto& e : field_errors.Take()) {
    errors.push_back({label, std::move(e.field), std::move(e.message)});
  }
}

void ImportState::Reject(CiRow& row, const std::string& field, const std::string& message) {
  errors.push_back({row.label, field, message});
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
  if (const json::value* relations = o.if_contains("relations")) {
    state.relations = &relations->get_array();
  }
  return Run(state, started);
}

ImportResult ImportCsv(store::DbSession& db, std::string_view type_name, std::string_view csv,
                       const ImportOptions& options) {
  const auto started = Clock::now();
  std::optional<model::CiType> type = store::CiTypeRepository(db).Find(type_name);
  if (!type) {
    throw Error(ErrorCode::kValidationFailed, "unknown CI type",
                {{"type", "unknown CI type '" + std::string(type_name) + "'"}});
  }
  std::vector<CsvRecord> records = ParseCsv(csv);
  if (records.empty()) {
    throw Error(ErrorCode::kValidationFailed, "the CSV file is empty",
                {{"header", "a header line naming the columns is required"}});
  }
  const std::vector<std::string>& header = records.front().fields;
  CheckCsvHeader(*type, header);
  ImportState state(db, options);
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    const std::string label = "line " + std::to_string(record.line);
    if (record.fields.size() != header.size()) {
      AddRowError(state, label, "",
                  "has " + std::to_string(record.fields.size()) + " fields; the header has " +
                      std::to_string(header.size()));
      continue;
    }
    std::string field;
    std::string message;
    std::optional<json::value> row = CiFromCsvRecord(*type, header, record, field, message);
    if (!row) {
      AddRowError(state, label, field, message);
      continue;
    }
    AddOwnedCi(state, label, std::move(*row));
  }
  return Run(state, started);
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
