#pragma once
// What the pieces of one import share (internal to import/): the rows with what was decided
// for each, the types, the identity index and the errors found so far. Owned by the import
// that runs; used on its thread (and, for disjoint rows, by its parallel loops).

#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "import/identity_index.hpp"
#include "import/import_cache.hpp"
#include "import/importer.hpp"
#include "model/ci_type.hpp"
#include "model/configuration_item.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {

enum class Action { kRejected, kCreate, kUpdate, kUnchanged };

struct CiRow {
  std::string label;
  // The row as given, for the merge into an existing CI: the caller's document, which
  // outlives the import, or `owned` (a CSV line). Not copied for the rows that create a CI.
  const boost::json::value* given = nullptr;
  std::unique_ptr<boost::json::value> owned;
  std::vector<std::string> keys;   // identity keys under the type's identify_by sets
  model::ConfigurationItem draft;  // the row's CI; a new CI is written from it
  Action action = Action::kRejected;
  model::CiId id = 0;  // > 0: existing or allocated; < 0: -(row + 1) until ids are allocated
  // A row matched to an existing CI, once that CI is read: the CI, what the row makes of it and
  // the diff (empty: unchanged). Allocated for those rows only (a CiRow is built for every row
  // of a batch, and most of a first import's rows create CIs).
  struct Merged {
    model::ConfigurationItem current;
    model::ConfigurationItem next;
    boost::json::object diff;
  };
  std::unique_ptr<Merged> merged;
};

struct ImportState {
  ImportState(store::DbSession& session, const ImportOptions& import_options)
      : db(session), options(import_options) {}
  ~ImportState();
  ImportState(const ImportState&) = delete;
  ImportState& operator=(const ImportState&) = delete;

  // Waits for the batch being written (if any): its phases join the import's and its failure
  // is rethrown. Called before anything else uses the session.
  void AwaitWrite();

  // Adds `errors` as errors of row `label`.
  void Report(const std::string& label, model::FieldErrors& errors);
  // One error; beyond options.max_errors it is only counted.
  void AddError(ImportRowError error);
  void Reject(CiRow& row, const std::string& field, const std::string& message);
  // The label of CI row number `row` of the document ("cis[12]", a CSV "line 7").
  std::string LabelOf(std::size_t row) const;
  // The id of the new CI with pseudo id `pseudo` (< 0), or 0 when its row was not written.
  model::CiId NewCiId(model::CiId pseudo) const {
    const auto row = static_cast<std::size_t>(-pseudo - 1);
    return row < new_ids.size() ? new_ids[row] : 0;
  }
  // Records the seconds since `since` as phase `name`; returns now.
  std::chrono::steady_clock::time_point Phase(const char* name,
                                              std::chrono::steady_clock::time_point since);

  store::DbSession& db;
  const ImportOptions& options;
  std::map<std::string, model::CiType, std::less<>> types;
  std::vector<CiRow> rows;    // the batch of CIs being imported
  std::size_t ci_offset = 0;  // the index in the document of rows[0]
  // By the document's row: the id of the CI it created, once drawn (0 otherwise). A new CI is
  // known to the index and the claims by its pseudo id, -(its row + 1), for the whole import.
  std::vector<model::CiId> new_ids;
  std::vector<ImportRowError> errors;
  std::int64_t errors_omitted = 0;
  IdentityIndex index;
  // CIs read whole with their type's identities (when the import names most of the type, as a
  // nightly re-import does), by id: the matched ones are taken from here instead of read again.
  std::unordered_map<model::CiId, model::ConfigurationItem> prefetched;
  std::set<std::string, std::less<>> locked_types;    // import locks taken
  std::set<std::string, std::less<>> imported_types;  // types of the CI rows seen so far
  // CI (existing, or new by its pseudo id) -> the index in the document of the row
  // that claimed it, across batches.
  boost::unordered_flat_map<model::CiId, std::size_t> claimed;
  const boost::json::array* relations = nullptr;  // the batch of relations
  std::size_t relation_offset = 0;                // the index in the document of (*relations)[0]
  ImportCounts ci_counts;                         // of the batches written
  std::vector<model::CiId> ci_ids;                // of the batches written, in input order
  std::vector<int> csv_lines;                     // a CSV import's rows: the line each starts on
  ImportCounts relation_counts;
  std::int64_t rows_total = -1;
  std::int64_t ci_rows_expected = -1;  // of the whole import, when known (BatchImport)
  std::int64_t rows_done = 0;
  std::int64_t latest_existing = 0;  // micros: the newest updated_at of a matched CI
  model::Timestamp now;              // when the import writes
  std::vector<ImportPhase> phases;
  // The kept entries this import matches against (by type), each held until the import ends.
  std::map<std::string, std::shared_ptr<ImportCache::Type>, std::less<>> cached;
  // The CIs this import writes of the types in `cached` (new ones by their pseudo ids), added
  // to those entries once its transaction commits (KeepWritten), and the transaction's id.
  struct ToKeep {
    ImportCache::Type* entry;
    const model::CiType* type;
    model::CiId id;
    ImportCache::Type::Known known;
  };
  bool keep_written = false;  // the import commits its own transaction (KeepWritten)
  std::vector<ToKeep> to_keep;
  std::string xid;
  std::vector<std::unique_lock<std::mutex>> cache_holds;  // released before `cached`
  // Types whose kept entries this import brought up to date for its relation ends
  // (TakeKeptForEnds), which later batches use as they are.
  std::set<std::string, std::less<>> ends_kept;
  // Of those, the ones it read whole into their entries (for ends named by identity), which
  // RecordKept records once the import has committed.
  std::vector<std::pair<std::string, std::shared_ptr<ImportCache::Type>>> ends_filled;
  // A batched import writes each batch's CIs on a thread of their own while it reads,
  // validates and matches the next batch, which needs no session until its CIs are read or
  // written (AwaitWrite). The write owns the batch's rows.
  bool pipelined = false;
  std::future<std::vector<ImportPhase>> writing;
};

}  // namespace cmdb::import
