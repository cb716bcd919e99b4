#pragma once
// Bulk import of CIs and relations: every row validated first, CIs upserted by their type's
// `identify_by` sets (tried in order; by name only when the row carries no complete set),
// written set-based with COPY and recorded in history with source "import". Atomic by
// default: one bad row rejects the whole import. Borrows one session; not thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "import/batch_sizes.hpp"
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

  // Whether the import created or changed anything: one that did not (the nightly sync of an
  // estate that did not change) changed neither the graph nor anything an audit looks at.
  bool Wrote() const {
    return cis.created + cis.updated + relations.created + relations.updated > 0;
  }
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
// whole document ("cis[123456]"). Each batch's CIs are written on a thread of their own while
// the caller reads the next batch and the import validates and matches it: until Finish (or
// the destructor) the session is the import's, and the caller must not use it.
class BatchImport {
 public:
  BatchImport(store::DbSession& db, const ImportOptions& options);
  ~BatchImport();
  BatchImport(const BatchImport&) = delete;
  BatchImport& operator=(const BatchImport&) = delete;

  void AddCis(const boost::json::array& cis);
  // Seconds the caller spent parsing the document, counted in the "parse" phase.
  void AddParseSeconds(double seconds);
  void AddRelations(const boost::json::array& relations);
  // The rows of the whole import, once known, for progress.
  void SetTotalRows(std::int64_t rows);
  // The CI rows of the whole import, when the caller knows them: a type whose CIs the import
  // names at least half of is read whole once (and kept between imports, ImportOptions::cache)
  // even when they come in several batches.
  void ExpectCiRows(std::int64_t rows);
  // Tells options.progress that the caller is in `phase` ("parse", "commit").
  void Report(std::string_view phase, int done);
  // Counts, ids and timings (summed over the batches) of what was added.
  ImportResult Finish();
  // For a caller that commits the import's own transaction (not a savepoint in a transaction
  // of its own, which may write more) and calls Committed() after: the instance then keeps
  // the CIs the import writes of the types whose identities it keeps (options.cache), so that
  // the next import of them does not read them all again. Call before the first batch. Not
  // for a background job: what is kept grows with the import, whose memory must not.
  void KeepWhatItWrites();
  // After the commit of the import's own transaction (a request's or a background job's, not
  // a savepoint): with KeepWhatItWrites, the CIs it wrote join what the instance keeps; and
  // the types it keeps are recorded for the warm-up after a restart (RecordKept). Returns the
  // seconds the first took (0: nothing to keep), phase "keep_written".
  double Committed();

 private:
  std::unique_ptr<ImportState> state_;
};

// Hands each part of a JSON import document, in order, to `sink`; `pass` is 0, or 1 when the
// document is read a second time for its relations.
using DocumentReader =
    std::function<void(int pass, const std::function<void(std::string_view)>& sink)>;

// Imports a JSON import document read in parts through `batch`, in batches of `sizes`: CIs as
// they are parsed, then the relations after them (a document whose relations come before the
// end of "cis" is read twice, the second time for the relations). Returns batch.Finish().
ImportResult ImportJsonParts(BatchImport& batch, const BatchSizes& sizes,
                             const DocumentReader& read);

// A JSON import document held whole (a request's body) imported in batches, as a background
// job imports its payload, in one transaction: each batch's CIs are written while the next
// batch is parsed and matched, and the document is never held as one value. Returns nullopt,
// having written nothing, when the text is not an import document (bad JSON, wrong shape,
// more than 1,000,000 CIs) or an atomic import meets an invalid row: the caller then imports
// it with ImportDocument, whose error names every bad row.
std::optional<ImportResult> ImportJsonText(store::DbSession& db, std::string_view text,
                                           const ImportOptions& options, const BatchSizes& sizes);

// A CSV import fed in parts (a background job's stored chunks): records are read as they
// complete (CsvReader) and imported in batches of `rows_per_batch` rows through the phases of
// BatchImport, in the caller's transaction. Same checks and errors as ImportCsv; an atomic
// import throws at the first batch holding an invalid row. As for BatchImport, the session is
// the import's until Finish.
class CsvStreamImport {
 public:
  CsvStreamImport(store::DbSession& db, std::string_view type, const ImportOptions& options,
                  std::size_t rows_per_batch);
  ~CsvStreamImport();
  CsvStreamImport(const CsvStreamImport&) = delete;
  CsvStreamImport& operator=(const CsvStreamImport&) = delete;

  // The data records of the whole file, when the caller counted them (a background job's
  // upload): as BatchImport::ExpectCiRows.
  void ExpectCiRows(std::int64_t rows);
  void Write(std::string_view part);
  ImportResult Finish();
  // After the commit of the job's transaction: as BatchImport::Committed (a job keeps nothing
  // of what it writes; the types it keeps are recorded).
  void Committed();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The answer of an import, as POST /api/v1/import returns it and a background job stores it.
boost::json::object ImportResultToJson(const ImportResult& result);

}  // namespace cmdb::import
