#pragma once
// Bulk import of CIs and relations: every row validated first, CIs upserted by their type's
// `identify_by` sets (tried in order; by name only when the row carries no complete set),
// written set-based with COPY and recorded in history with source "import". Atomic by
// default: one bad row rejects the whole import. Borrows one session; not thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/history.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {

class ImportCache;

// Where an import is, for a job's progress.
struct ImportProgress {
  std::string_view phase;      // one of the phases below
  int done = 0;                // how many of the kImportSteps phases of the current batch are done
  std::int64_t rows = -1;      // CI + relation rows of the whole import; -1 while not yet known
  std::int64_t rows_done = 0;  // rows whose batch was written
};

struct ImportOptions {
  bool atomic = true;  // false: commit the good rows, report the bad ones
  // Every valid row is a new CI: the caller matched them against the estate already (a
  // discovery run), so the identities of the existing CIs are not loaded.
  bool create_only = false;
  model::WriteContext ctx{"anonymous", "import"};
  // Row errors kept for the answer; 0 keeps them all. Beyond it they are only counted.
  std::size_t max_errors = 0;
  // Told when each phase begins. Called on the importing thread.
  std::function<void(const ImportProgress&)> progress;
  // What the instance keeps between imports (import_cache.hpp); null: every import reads the
  // identities of its types. Used only when the import's transaction wrote nothing before it.
  ImportCache* cache = nullptr;
};

// The phases of an import, in order: parse, validate, lock_and_load_identities, match,
// load_matched, write_cis_and_history, relations, commit. A batched import goes through
// validate .. write_cis_and_history for each batch of CIs and relations for each batch of
// relations.
inline constexpr int kImportSteps = 8;

// Seconds spent in each phase of an import, for logs and benchmarks.
struct ImportPhase {
  std::string name;
  double seconds = 0;
};

struct ImportRowError {
  std::string row;    // "cis[3]", "relations[0]" or "line 7"
  std::string field;  // "attributes.memory_mb", "" for the whole row
  std::string message;
};

struct ImportCounts {
  int created = 0;
  int updated = 0;
  int unchanged = 0;
  int rejected = 0;
};

struct ImportResult {
  ImportCounts cis;
  ImportCounts relations;
  std::vector<ImportRowError> errors;
  std::int64_t errors_omitted = 0;  // beyond ImportOptions::max_errors
  std::vector<model::CiId> ci_ids;  // per CI row, in input order; 0 for a rejected row
  std::vector<ImportPhase> phases;
};

// Imports `{"cis": [...], "relations": [...]}`. Relation ends are CI ids or objects naming a CI
// by identity: {"type": "server", "name": "db-01"} or {"type": "server", "identity":
// {"serial": "X1"}}. Throws kInvalidArgument for a document of the wrong shape, and in atomic
// mode kValidationFailed listing every bad row; partial mode reports them in the result.
// Throws kInvalidArgument/kValidationFailed when `document` is not an import document's shape
// (an object with an array "cis" and/or "relations" and nothing else); rows are not checked.
void CheckImportDocumentShape(const boost::json::value& document);

ImportResult ImportDocument(store::DbSession& db, const boost::json::value& document,
                            const ImportOptions& options);

// Imports CSV rows of one CI type: columns name, status, owner, tags (separated by ';') and
// attribute names; an empty cell leaves the attribute unset. Same errors as ImportDocument.
ImportResult ImportCsv(store::DbSession& db, std::string_view type, std::string_view csv,
                       const ImportOptions& options);

struct ImportState;

// An import fed in batches, for documents too large to hold at once (a background job reads
// its payload as a stream): every batch of CIs, then every batch of relations, in the caller's
// transaction, which it commits after Finish. Each call validates, matches and writes its
// batch; CIs of earlier batches are found by the later ones (relation ends, duplicates). An
// atomic import throws kValidationFailed at the first batch holding an invalid row, listing
// the errors found so far; the caller rolls back. Rows are labelled by their index in the
// whole document ("cis[123456]").
class BatchImport {
 public:
  BatchImport(store::DbSession& db, const ImportOptions& options);
  ~BatchImport();
  BatchImport(const BatchImport&) = delete;
  BatchImport& operator=(const BatchImport&) = delete;

  void AddCis(const boost::json::array& cis);
  void AddRelations(const boost::json::array& relations);
  // The rows of the whole import, once known, for progress.
  void SetTotalRows(std::int64_t rows);
  // Tells options.progress that the caller is in `phase` ("parse", "commit").
  void Report(std::string_view phase, int done);
  // Counts, ids and timings (summed over the batches) of what was added.
  ImportResult Finish();

 private:
  std::unique_ptr<ImportState> state_;
};

// A CSV import fed in parts (a background job's stored chunks): records are read as they
// complete (CsvReader) and imported in batches of `rows_per_batch` rows through the phases of
// BatchImport, in the caller's transaction. Same checks and errors as ImportCsv; an atomic
// import throws at the first batch holding an invalid row.
class CsvStreamImport {
 public:
  CsvStreamImport(store::DbSession& db, std::string_view type, const ImportOptions& options,
                  std::size_t rows_per_batch);
  ~CsvStreamImport();
  CsvStreamImport(const CsvStreamImport&) = delete;
  CsvStreamImport& operator=(const CsvStreamImport&) = delete;

  void Write(std::string_view part);
  ImportResult Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The answer of an import, as POST /api/v1/import returns it and a background job stores it.
boost::json::object ImportResultToJson(const ImportResult& result);

}  // namespace cmdb::import
