#include "import/ci_writer.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "import/kept_warmup.hpp"
#include "model/json.hpp"
#include "model/log.hpp"
#include "model/parallel.hpp"
#include "store/graph_store.hpp"
#include "store/import_store.hpp"

namespace cmdb::import {

using model::CiId;
using model::CiType;
using model::ConfigurationItem;
using model::FieldErrors;
namespace json = boost::json;

namespace {

// The writable fields of the row as given (type excluded): what the merge applies.
json::object WritableFieldsGiven(const CiRow& row) {
  json::object raw;
  if (row.given == nullptr || !row.given->is_object()) return raw;
  for (const auto& [key, value] : row.given->get_object()) {
    if (key == "name" || key == "status" || key == "owner" || key == "tags" ||
        key == "attributes" || key == "redundancy") {
      raw[key] = value;
    }
  }
  return raw;
}

// How a row was matched, for messages: "identify_by [\"serial\"]" or "name".
std::string MatchedBy(const CiType& type, int used_set) {
  return used_set >= 0
             ? "identify_by " + model::ToJsonText(model::IdentifyByToJson(type).as_array().at(
                                    static_cast<std::size_t>(used_set)))
             : std::string("name");
}

// Merges `row` into `current` (the CI it matched), validates and diffs the result. A row that
// repeats what is recorded (a nightly re-import) is unchanged without a merge, validation and
// diff: its diff stays empty.
void Merge(const ImportState& state, CiRow& row, ConfigurationItem current, FieldErrors& errors) {
  row.merged = std::make_unique<CiRow::Merged>();
  if (row.given != nullptr && row.given->is_object() &&
      model::MergeChangesNothing(current, row.given->get_object())) {
    row.merged->current = std::move(current);
    return;
  }
  json::value merged = model::MergePatch(model::WritableCiJson(current), WritableFieldsGiven(row));
  ConfigurationItem next = model::CiFromJson(merged, errors, model::ReadOnlyFields::kIgnore);
  model::ValidateCi(state.types.at(current.type), next, errors);
  if (!errors.empty()) return;
  next.id = current.id;
  next.version = current.version;
  next.created_at = current.created_at;
  row.merged->diff = model::DiffCis(&current, &next);
  row.merged->current = std::move(current);
  row.merged->next = std::move(next);
}

// Changed CIs read back to bring a kept entry up to date; beyond, the type is read again whole.
constexpr std::size_t kMaxCatchUp = 200000;
// CIs parsed and added at a time when a kept entry is built from the type read whole.
constexpr std::size_t kKeptPart = 20000;

// A kept entry held by this import until it ends (import_cache.hpp); `current` when it was
// brought up to date from the change log, else it was reset and waits to be built.
struct Kept {
  std::shared_ptr<ImportCache::Type> entry;
  std::unique_lock<std::mutex> hold;
  std::string snapshot;  // what it will be up to date with
  bool current = false;
  std::chrono::steady_clock::time_point started;
};

// Whether `entry` (held) was built, with the identifier sets `type` has now.
bool IsBuilt(const ImportCache::Type& entry, const CiType& type) {
  return !entry.snapshot.empty() && entry.identify_by == type.identify_by;
}

// Reads into `entry` (held, built) the CIs of `type` changed since its snapshot; false when
// the type is better read whole.
bool CatchUp(ImportState& state, const CiType& type, store::ImportStore& store,
             ImportCache::Type& entry) {
  const std::optional<store::LoggedChanges> changes = store::ReadChangeLog(
      state.db, entry.snapshot, /*audit_kinds=*/true, kMaxCatchUp, entry.written_by);
  // The log names the CIs of every type: only those of this type now are read again (the
  // others are forgotten, in case they were of it).
  const std::vector<CiId> ours =
      changes ? store.OfType(changes->ci_ids, type.name) : std::vector<CiId>{};
  if (!changes || ours.size() > std::max<std::size_t>(10000, entry.cis.size() / 4)) {
    // Pruned past the snapshot, a TRUNCATE, or so much changed (the import that created the
    // type's CIs) that reading the type whole is quicker.
    return false;
  }
  if (!changes->ci_ids.empty()) {
    for (CiId id : changes->ci_ids) entry.Forget(type, id);
    std::vector<ConfigurationItem> read = store.ReadCurrent(ours, /*lock=*/false);
    // One that left the type since OfType read it: its change is read again next time.
    std::erase_if(read, [&](const ConfigurationItem& ci) { return ci.type != type.name; });
    entry.Remember(type, read);
  }
  return true;
}

// Takes the kept entry of `type` and brings it up to date from the change log; nullopt when
// the import reads the type itself: no cache, or a transaction that wrote before the import
// (its rows are not yet anyone's to keep).
std::optional<Kept> CatchUpKept(ImportState& state, const CiType& type, store::ImportStore& store) {
  if (state.options.cache == nullptr || !store.WroteNothing()) return std::nullopt;
  Kept kept;
  kept.started = std::chrono::steady_clock::now();
  kept.entry = state.options.cache->Of(type.name);
  kept.hold = std::unique_lock(kept.entry->in_use);
  ImportCache::Type& entry = *kept.entry;
  entry.used = kept.started;
  // Taken before the change log and the CIs are read: whatever commits in between is read
  // now and again next time, never missed.
  kept.snapshot = store.Snapshot();
  kept.current = IsBuilt(entry, type) && CatchUp(state, type, store, entry);
  if (!kept.current) entry.Reset(type);
  return kept;
}

// The rows of `type` are matched against the kept entry, which is now up to date.
void UseKept(ImportState& state, const CiType& type, Kept kept, std::size_t rows) {
  kept.entry->snapshot = std::move(kept.snapshot);
  kept.entry->written_by.clear();  // committed before the snapshot: seen by it
  state.index.UseBase(type, kept.entry->index, rows);
  state.cached.emplace(type.name, std::move(kept.entry));
  state.cache_holds.push_back(std::move(kept.hold));
  // Only an entry kept from an earlier import is reported; one built from this import's read
  // of the type is not (yet) what it matched against.
  if (kept.current) state.Phase("kept_identities", kept.started);
}

// The rows of the whole import that name CIs of a type `rows` rows of this batch name: those
// rows, or when more batches follow (an import read as a stream, its CI rows counted
// beforehand), the type's share of this batch in the rows still to come.
std::size_t RowsOfTypeInImport(const ImportState& state, std::size_t rows) {
  if (state.ci_rows_expected < 0 || state.rows.empty()) return rows;
  const auto still_to_come = static_cast<std::size_t>(std::max<std::int64_t>(
      0, state.ci_rows_expected - static_cast<std::int64_t>(state.ci_offset)));
  if (still_to_come <= state.rows.size()) return rows;
  return rows * still_to_come / state.rows.size();  // at most 1e6 x 1e6
}

}  // namespace

void LockTypesAndLoadIdentities(ImportState& state) {
  std::map<std::string, std::size_t> used;  // type -> rows of the batch
  for (const CiRow& row : state.rows) {
    if (row.action != Action::kRejected) ++used[row.draft.type];
  }
  store::ImportStore store(state.db);
  for (const auto& [name, rows] : used) {
    // Held until the caller's transaction ends: later batches need not take it again.
    if (!state.locked_types.insert(name).second) continue;
    state.AwaitWrite();  // the session is needed
    store.LockType(name);
    if (state.options.create_only) continue;
    const model::CiType& type = state.types.at(name);
    // The rows of the whole import naming the type decide whether it is read whole; the maps
    // are sized for this batch and grow with the next ones (an estimate may be far above the
    // type's real share of a batched import, and over-sized maps cost every batch).
    const std::size_t named = RowsOfTypeInImport(state, rows);
    std::optional<Kept> kept = CatchUpKept(state, type, store);
    if (kept && kept->current) {
      UseKept(state, type, std::move(*kept), state.rows.size());
      continue;
    }
    // When the rows name at least half as many CIs as the type has (a nightly re-import
    // names all of them), every CI of the type is read whole once. When the instance keeps
    // the type, it goes into the kept entry (below), and LoadMatched reads only the matched
    // CIs whose digests differ. Otherwise it goes into the import's index, and LoadMatched
    // takes the matched CIs from that read instead of reading them again (two reads of the
    // same rows were half of a re-import's time). Below half, only the identifying attributes
    // are read, and the matched CIs afterwards; a kept entry stays empty (ten rows into
    // 600,000 VMs keep nothing).
    const std::int64_t existing = store.CountOfType(name);
    if (static_cast<std::int64_t>(named) * 2 < existing) {
      state.index.Load(state.db, type, state.rows.size());
      continue;
    }
    if (kept) {
      // Kept for the next import: the type is read a part at a time into the entry, whose
      // digests then tell the matched rows that change nothing, and LoadMatched reads only the
      // others. Memory stays one part above what is kept, however large the type.
      FillKept(state.db, *kept->entry, type, kKeptPart, static_cast<std::size_t>(existing), {});
      UseKept(state, type, std::move(*kept), state.rows.size());
      continue;
    }
    std::vector<ConfigurationItem> cis;
    if (existing > 0) cis = store.ReadType(name);
    state.index.Load(type, cis, state.rows.size());
    state.prefetched.reserve(state.prefetched.size() + cis.size());
    for (ConfigurationItem& ci : cis) {
      const CiId id = ci.id;
      state.prefetched.emplace(id, std::move(ci));
    }
  }
}

const IdentityIndex* EndsKept::Of(std::string_view type) const {
  auto it = types.find(type);
  return it != types.end() ? &it->second.entry->index : nullptr;
}

EndsKept TakeKeptForEnds(ImportState& state,
                         const std::map<std::string, bool, std::less<>>& types) {
  EndsKept kept;
  if (state.options.cache == nullptr || types.empty()) return kept;
  const auto started = std::chrono::steady_clock::now();
  store::ImportStore store(state.db);
  // The change log read in this transaction holds its own uncommitted rows. Those of an
  // import that commits its own transaction are of the types it writes, never these; a
  // caller's transaction may have written anything.
  const bool may_catch_up = state.keep_written || store.WroteNothing();
  std::string snapshot;
  for (const auto& [name, by_identity] : types) {
    if (state.cached.contains(name)) continue;  // held by this import already
    const CiType& type = state.types.at(name);
    const bool first = !state.ends_kept.contains(name);
    // Ends named by identity would otherwise read the identifying attributes of every CI of
    // the type for this batch: the type is read into its entry instead, once for the batches
    // and imports after this one.
    const bool fill = first && by_identity && may_catch_up;
    std::shared_ptr<ImportCache::Type> entry =
        fill ? state.options.cache->Of(name) : state.options.cache->Find(name);
    if (entry == nullptr) continue;
    std::unique_lock hold(entry->in_use, std::try_to_lock);
    if (!hold.owns_lock()) continue;
    if (first) {
      if (!may_catch_up) continue;
      // Taken before the first change log or type is read, as an import's own (CatchUpKept).
      if (snapshot.empty()) snapshot = store.Snapshot();
      entry->used = started;
      if (!IsBuilt(*entry, type) || !CatchUp(state, type, store, *entry)) {
        entry->Reset(type);  // the next import of the type reads it whole, unless this one does
        if (!fill) continue;
        FillKept(state.db, *entry, type, kKeptPart,
                 static_cast<std::size_t>(store.CountOfType(name)), {});
        state.ends_filled.emplace_back(name, entry);
      }
      entry->snapshot = snapshot;
      entry->written_by.clear();  // committed before the snapshot: seen by it
      state.ends_kept.insert(name);
    } else if (!IsBuilt(*entry, type)) {
      continue;
    }
    kept.types.emplace(name, EndsKept::Held{std::move(entry), std::move(hold)});
  }
  if (!kept.types.empty()) state.Phase("relations.kept_identities", started);
  return kept;
}

void MatchRows(ImportState& state) {
  auto& claimed = state.claimed;
  // No rehash on the way; grown at least twice over when batches come (reserving exactly what
  // each batch adds rehashed the whole map at every batch).
  const std::size_t needed = claimed.size() + state.rows.size();
  if (static_cast<double>(needed) >
      static_cast<double>(claimed.bucket_count()) * claimed.max_load_factor()) {
    claimed.reserve(std::max(needed, 2 * claimed.size()));
  }
  for (std::size_t i = 0; i < state.rows.size(); ++i) {
    CiRow& row = state.rows[i];
    if (row.action == Action::kRejected) continue;
    const CiType& type = state.types.at(row.draft.type);
    int used_set = 0;
    const IdentityIndex::Ids* found = state.index.Match(type, row.draft.name, row.keys, used_set);
    const std::size_t matched = found != nullptr ? found->size() : 0;
    if (matched > 1) {
      state.Reject(row, "",
                   "matches " + std::to_string(matched) + " CIs by " + MatchedBy(type, used_set) +
                       "; make the identifier unique or import by id");
      continue;
    }
    if (matched == 1) {
      const CiId id = found->front();
      auto [it, inserted] = claimed.emplace(id, state.ci_offset + i);
      if (!inserted) {
        state.Reject(row, "",
                     "names the same CI as " + state.LabelOf(it->second) + " (by " +
                         MatchedBy(type, used_set) + ")");
        continue;
      }
      row.id = id;
      row.action = Action::kUpdate;
      continue;
    }
    row.id = -static_cast<CiId>(state.ci_offset + i + 1);
    claimed.emplace(row.id, state.ci_offset + i);
    state.index.Add(type, row.id, row.draft.name, row.keys);
    row.action = Action::kCreate;
  }
}

namespace {

// Merges each matched row into its CI of `current` on all cores (each touches its own CiRow):
// the row becomes an update or unchanged, or is rejected (its merge is invalid). Problems are
// reported afterwards, in the order of the CIs.
void MergeMatched(ImportState& state, std::vector<ConfigurationItem> current,
                  const std::unordered_map<CiId, CiRow*>& by_id) {
  const std::size_t n = current.size();
  std::vector<FieldErrors> errors(n);
  std::vector<CiRow*> row_of(n);
  model::ParallelFor(n,
                     [&](std::size_t i) {
                       CiRow& row = *by_id.at(current[i].id);
                       row_of[i] = &row;
                       Merge(state, row, std::move(current[i]), errors[i]);
                     },
                     {});
  for (std::size_t i = 0; i < n; ++i) {
    CiRow& row = *row_of[i];
    if (!errors[i].empty()) {
      state.Report(row.label, errors[i]);
      row.action = Action::kRejected;
      continue;
    }
    row.action = row.merged->diff.empty() ? Action::kUnchanged : Action::kUpdate;
    state.latest_existing = std::max(state.latest_existing, row.merged->current.updated_at.micros);
  }
}

// The matched rows of kept types whose fields are those of their CI, by digest: unchanged,
// without reading the CI (the nightly sync's rows). The others are read and merged.
void SkipUnchangedByDigest(ImportState& state) {
  if (state.cached.empty()) return;
  std::vector<CiRow*> rows;
  std::vector<const ImportCache::Type::Known*> kept;
  for (CiRow& row : state.rows) {
    if (row.action != Action::kUpdate) continue;
    auto entry = state.cached.find(row.draft.type);
    if (entry == state.cached.end()) continue;
    auto known = entry->second->cis.find(row.id);
    if (known == entry->second->cis.end()) continue;
    rows.push_back(&row);
    kept.push_back(&known->second);
  }
  model::ParallelFor(rows.size(),
                     [&](std::size_t i) {
                       if (DigestOf(rows[i]->draft) == kept[i]->digest) {
                         rows[i]->action = Action::kUnchanged;
                       }
                     },
                     {});
}

}  // namespace

void LoadMatched(ImportState& state) {
  SkipUnchangedByDigest(state);
  std::vector<CiId> ids;
  std::unordered_map<CiId, CiRow*> by_id;
  for (CiRow& row : state.rows) {
    if (row.action == Action::kUpdate) {
      ids.push_back(row.id);
      by_id[row.id] = &row;
    }
  }
  if (ids.empty()) return;
  state.AwaitWrite();
  // Read without locks: most rows of a nightly re-import change nothing, and locking a row
  // writes it (100,000 rows: 0.6-0.85 s). Only the rows that change are locked, and those a
  // concurrent write changed since the read are read again under the lock and merged again.
  store::ImportStore store(state.db);
  for (CiRow& row : state.rows) {
    if (row.action == Action::kUpdate) row.merged.reset();  // not read yet
  }
  // Read without locks, or taken from the CIs read with their type's identities.
  std::vector<ConfigurationItem> current;
  std::vector<CiId> unread;
  current.reserve(ids.size());
  for (CiId id : ids) {
    auto it = state.prefetched.find(id);
    if (it == state.prefetched.end()) {
      unread.push_back(id);
      continue;
    }
    current.push_back(std::move(it->second));
    state.prefetched.erase(it);
  }
  for (ConfigurationItem& ci : store.ReadCurrent(unread, /*lock=*/false)) {
    current.push_back(std::move(ci));
  }
  std::sort(current.begin(), current.end(),
            [](const ConfigurationItem& a, const ConfigurationItem& b) { return a.id < b.id; });
  MergeMatched(state, std::move(current), by_id);
  std::vector<CiId> changing;
  for (CiId id : ids) {
    if (by_id.at(id)->action == Action::kUpdate) changing.push_back(id);
  }
  const std::unordered_map<CiId, std::int64_t> locked = store.LockVersions(changing);
  std::vector<CiId> moved;
  for (CiId id : changing) {
    auto it = locked.find(id);
    CiRow& row = *by_id.at(id);
    if (it == locked.end()) {
      row.merged.reset();  // deleted since the read
    } else if (it->second != row.merged->current.version) {
      moved.push_back(id);
    }
  }
  if (!moved.empty()) MergeMatched(state, store.ReadCurrent(moved, /*lock=*/true), by_id);
  for (CiRow& row : state.rows) {
    if (row.action == Action::kUpdate && row.merged == nullptr) {
      state.Reject(row, "", "the CI it matched was deleted while importing");
    }
  }
}

void RecordWritten(ImportState& state) {
  if (!state.keep_written || state.cached.empty()) return;
  // On this thread only: it runs while the previous batch is written, and PostgreSQL's COPY
  // needs the other core.
  for (CiRow& row : state.rows) {
    if (row.action != Action::kCreate && row.action != Action::kUpdate) continue;
    auto entry = state.cached.find(row.draft.type);
    if (entry == state.cached.end()) continue;
    const model::CiType& type = state.types.at(row.draft.type);
    ImportCache::Type::Known known;
    if (row.action == Action::kCreate) {
      known.digest = DigestOf(row.draft);
      known.name = row.draft.name;
      known.keys = std::move(row.keys);  // matched already
    } else {
      const ConfigurationItem& next = row.merged->next;
      known.digest = DigestOf(next);
      known.name = next.name;
      known.keys = IdentityIndex::Keys(type, next.attributes);
    }
    state.to_keep.push_back({entry->second.get(), &type, row.id, std::move(known)});
  }
}

namespace {

// KeepWritten's work.
void AddToKept(ImportState& state) {
  // An entry that held no CI (its type had none: the import that created them) takes this
  // import's own index of the type whole, under the CIs' ids; no row of it updated a CI. The
  // other entries add what the import wrote, replacing the CIs it changed.
  std::map<ImportCache::Type*, std::size_t> fresh;  // -> how many CIs it gets
  for (auto& [name, entry] : state.cached) {
    if (entry->cis.empty()) fresh.emplace(entry.get(), 0);
  }
  for (const ImportState::ToKeep& keep : state.to_keep) {
    if (auto it = fresh.find(keep.entry); it != fresh.end()) ++it->second;
  }
  for (auto& [name, entry] : state.cached) {
    auto it = fresh.find(entry.get());
    if (it == fresh.end()) continue;
    state.index.MoveAddedInto(state.types.at(name), entry->index, state.new_ids);
    entry->cis.reserve(it->second);
  }
  for (ImportState::ToKeep& keep : state.to_keep) {
    const CiId id = keep.id < 0 ? state.NewCiId(keep.id) : keep.id;
    if (id == 0) continue;  // not written
    if (fresh.contains(keep.entry)) {
      keep.entry->cis.emplace(id, std::move(keep.known));
    } else {
      keep.entry->Add(*keep.type, id, std::move(keep.known));
    }
  }
  state.to_keep.clear();
  for (auto& [name, entry] : state.cached) entry->written_by = state.xid;
}

}  // namespace

double KeepWritten(ImportState& state) {
  if (!state.keep_written || state.xid.empty()) return 0;  // kept nothing, or wrote nothing
  const auto started = std::chrono::steady_clock::now();
  try {
    AddToKept(state);
  } catch (...) {
    // The import has committed: its answer stands, and the entries are built again whole.
    for (auto& [name, entry] : state.cached) {
      entry->snapshot.clear();
      entry->written_by.clear();
    }
  }
  state.Phase("keep_written", started);
  return state.phases.back().seconds;
}

void RecordKept(ImportState& state) {
  // Recorded again twice a day at most: the record says a type was kept lately, not when.
  constexpr auto kEvery = std::chrono::hours(12);
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> types;
  std::vector<ImportCache::Type*> entries;
  // Whether `entry` is to be recorded (then added).
  auto consider = [&](const std::string& name, ImportCache::Type* entry) {
    if (entry->snapshot.empty()) return false;  // reset: nothing kept
    if (entry->recorded != std::chrono::steady_clock::time_point{} &&
        now - entry->recorded < kEvery) {
      return false;
    }
    types.push_back(name);
    entries.push_back(entry);
    return true;
  };
  for (auto& [name, entry] : state.cached) consider(name, entry.get());  // held
  // The entries read for relation ends were released with their batch: each is looked at
  // only if free (one in use is the business of the import using it).
  std::vector<std::unique_lock<std::mutex>> holds;
  for (const auto& [name, entry] : state.ends_filled) {
    std::unique_lock hold(entry->in_use, std::try_to_lock);
    if (hold.owns_lock() && consider(name, entry.get())) holds.push_back(std::move(hold));
  }
  if (types.empty()) return;
  try {
    store::ImportStore(state.db).RecordKeptTypes(types);
    for (ImportCache::Type* entry : entries) entry->recorded = now;
  } catch (const std::exception& e) {
    // The import has committed; only the warm-up after a restart misses the types.
    model::Log(model::LogLevel::kWarn, "could not record the types kept for imports",
               {{"error", e.what()}});
  }
}

CiWrite PrepareWrite(ImportState& state) {
  state.AwaitWrite();
  CiWrite write;
  store::ImportStore store(state.db);
  // Versions of one CI never overlap: the import writes after every CI it matched.
  write.now = model::Timestamp{std::max(store.Now().micros, state.latest_existing + 1)};
  state.now = write.now;  // the relations' too
  std::size_t created = 0;
  for (const CiRow& row : state.rows) created += row.action == Action::kCreate ? 1 : 0;
  // What RecordWritten took is written from here on: KeepWritten will need the transaction.
  if (!state.to_keep.empty() && state.xid.empty()) state.xid = store.TransactionId();
  std::vector<CiId> ids;
  if (created > 0) {
    const auto started = std::chrono::steady_clock::now();
    ids = store.NextCiIds(created);
    state.Phase("allocate_ids", started);
  }
  write.created.reserve(created);
  if (created > 0) state.new_ids.resize(state.ci_offset + state.rows.size(), 0);
  std::size_t next_id = 0;
  for (CiRow& row : state.rows) {
    if (row.action == Action::kCreate) {
      const CiId id = ids[next_id++];
      // The index and the claims keep the pseudo id; relations translate it (NewCiId).
      state.new_ids[static_cast<std::size_t>(-row.id - 1)] = id;
      row.id = id;
      row.draft.id = id;
      row.draft.version = 1;
      row.draft.created_at = write.now;
      row.draft.updated_at = write.now;
      write.created.push_back(&row.draft);
    } else if (row.action == Action::kUpdate) {
      row.merged->next.version = row.merged->current.version + 1;
      row.merged->next.updated_at = write.now;
      write.updates.push_back({&row.merged->next, &row.merged->diff});
    }
  }
  write.rows = std::move(state.rows);  // the CIs above stay where they are
  state.rows.clear();
  return write;
}

std::vector<ImportPhase> WriteCis(store::DbSession& db, const model::WriteContext& ctx,
                                  const CiWrite& write) {
  std::vector<ImportPhase> phases;
  store::ImportStore store(db);
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  if (!write.created.empty()) {
    auto t = std::chrono::steady_clock::now();
    // Each new CI is its own first version: no second row (0025_ci_current_versions.sql).
    const double encode_seconds = store.InsertCis(write.created, ctx);
    phases.push_back({"encode_cis", encode_seconds});  // overlapped with copy_cis
    phases.push_back({"copy_cis", since(t)});
  }
  if (!write.updates.empty()) {
    phases.push_back({"end_versions", store.UpdateCis(write.updates, write.now, ctx)});
  }
  return phases;
}

}  // namespace cmdb::import
