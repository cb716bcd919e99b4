#pragma once
// Bulk import of CIs and relations: every row validated first, CIs upserted by their type's
// `identify_by` sets (tried in order; by name only when the row carries no complete set),
// written set-based with COPY and recorded in history with source "import". Atomic by
// default: one bad row rejects the whole import. Borrows one session; not thread-safe.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/history.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {

struct ImportOptions {
  bool atomic = true;  // false: commit the good rows, report the bad ones
  // Every valid row is a new CI: the caller matched them against the estate already (a
  // discovery run), so the identities of the existing CIs are not loaded.
  bool create_only = false;
  model::WriteContext ctx{"anonymous", "import"};
  // Told when each phase begins: its name, how many of the kImportSteps phases are done, and
  // the rows (CIs + relations) of the import. Called on the importing thread.
  std::function<void(std::string_view phase, int done, int total, std::int64_t rows)> progress;
};

// The phases of an import, in order: parse, validate, lock_and_load_identities, match,
// load_matched, write_cis_and_history, relations, commit.
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

// The answer of an import, as POST /api/v1/import returns it and a background job stores it.
boost::json::object ImportResultToJson(const ImportResult& result);

}  // namespace cmdb::import
