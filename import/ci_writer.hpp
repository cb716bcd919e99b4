#pragma once
// The CI half of an import (internal to import/): each valid row matched against the estate by
// its type's identifier sets, merged into the CI it matched (or made a new one), and written
// set-based through store::ImportStore.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "import/import_state.hpp"
#include "store/import_store.hpp"

namespace cmdb::import {

// Takes each used type's import lock and, unless every row is new by the caller's word
// (create_only), loads the identities of its CIs.
void LockTypesAndLoadIdentities(ImportState& state);
// The kept entries (import_cache.hpp) a batch's relation ends named by name or identity are
// resolved against, for types the import writes no CI of: held while the batch's ends are
// resolved, and released before its relations are written, so that nothing waits on the
// database while holding one.
struct EndsKept {
  struct Held {
    std::shared_ptr<ImportCache::Type> entry;
    std::unique_lock<std::mutex> hold;
  };
  std::map<std::string, Held, std::less<>> types;
  // The identities kept of `type`, or nullptr: its ends are resolved from the database.
  const IdentityIndex* Of(std::string_view type) const;
};
// Of `types` (known; none the import writes CIs of; true where an end names the type's CIs by
// identity), the entries the instance keeps built, taken only when free (an import holding one
// may be waiting for this import's locks), and brought up to date from the change log as an
// import's own types are. An end by identity would otherwise have the batch read the
// identifying attributes of every CI of the type, so such a type not kept yet is read into its
// entry instead, once, and recorded by RecordKept. All this needs a transaction in which
// nothing but this import wrote; an entry brought up to date for an earlier batch of the
// import is used as it is. Phase "relations.kept_identities".
EndsKept TakeKeptForEnds(ImportState& state, const std::map<std::string, bool, std::less<>>& types);
// Decides per row: update the one CI it matches, create a new one, or reject it (matches
// several; names a CI another row of the import already claimed).
void MatchRows(ImportState& state);
// Reads the matched CIs and merges each row into its CI on all cores: the row is an update,
// unchanged, or rejected (the merge is invalid, the CI is gone). The CIs a row changes are
// locked FOR UPDATE (and merged again when a concurrent write got there first).
void LoadMatched(ImportState& state);

// Records what the batch's rows write of the types the import keeps (the CIs' names, keys and
// digests) for KeepWritten, when the import commits its own transaction (keep_written). Call
// after LoadMatched: every row still creating or updating a CI is written.
void RecordWritten(ImportState& state);
// Once the import's own transaction has committed (not a savepoint in a caller's, whose later
// writes the entries could not know): adds what it wrote to the entries it kept and marks them
// written by its transaction, whose rows in the change log the next import then skips.
// Records and returns its seconds, phase "keep_written" (0 when there was nothing to keep).
double KeepWritten(ImportState& state);
// Once the import's own transaction has committed (a request's or a background job's, not a
// savepoint in a caller's): records in the database the types whose identities the import
// left kept (import_kept_types), so that the instance builds them again when it restarts
// (import/kept_warmup.hpp). A type is recorded at most twice a day per instance; a failure is
// logged, and the import's answer stands.
void RecordKept(ImportState& state);

// A batch's CIs as they are written: the new ones with their ids, the changed ones with their
// next versions, all at `now`. Owns the batch's rows, which the CIs point into, so that the
// next batch can be read while this one is written.
struct CiWrite {
  std::vector<CiRow> rows;
  std::vector<const model::ConfigurationItem*> created;
  std::vector<store::CiUpdate> updates;
  model::Timestamp now;
};

// Draws the new CIs' ids (recorded by row in state.new_ids; the identity index and the claims
// keep the pseudo ids), sets versions and timestamps, and takes the batch's rows out of `state`.
CiWrite PrepareWrite(ImportState& state);
// Writes new and changed CIs with their versions through `db`; returns the phases it timed.
// Uses nothing of the import's state: it may run beside the next batch.
std::vector<ImportPhase> WriteCis(store::DbSession& db, const model::WriteContext& ctx,
                                  const CiWrite& write);

}  // namespace cmdb::import
