#pragma once
// The CI half of an import (internal to import/): each valid row matched against the estate by
// its type's identifier sets, merged into the CI it matched (or made a new one), and written
// set-based through store::ImportStore.

#include "import/import_state.hpp"

namespace cmdb::import {

// Takes each used type's import lock and, unless every row is new by the caller's word
// (create_only), loads the identities of its CIs.
void LockTypesAndLoadIdentities(ImportState& state);
// Decides per row: update the one CI it matches, create a new one, or reject it (matches
// several; names a CI another row of the import already claimed).
void MatchRows(ImportState& state);
// Reads the matched CIs and merges each row into its CI on all cores: the row is an update,
// unchanged, or rejected (the merge is invalid, the CI is gone). The CIs a row changes are
// locked FOR UPDATE (and merged again when a concurrent write got there first).
void LoadMatched(ImportState& state);
// Allocates the new CIs' ids and writes new and changed CIs with their versions.
void WriteCis(ImportState& state);

}  // namespace cmdb::import
