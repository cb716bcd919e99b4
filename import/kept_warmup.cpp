#include "import/kept_warmup.hpp"

#include <mutex>
#include <optional>

#include "model/ci_type.hpp"
#include "store/ci_type_repository.hpp"
#include "store/import_store.hpp"

namespace cmdb::import {

using Clock = std::chrono::steady_clock;

bool FillKept(store::DbSession& db, ImportCache::Type& entry, const model::CiType& type,
              std::size_t part, std::size_t expected, const std::function<bool()>& stop) {
  bool whole = true;
  store::ImportStore(db).ReadTypeInParts(type.name, part,
                                         [&](std::vector<model::ConfigurationItem> read) {
                                           if (stop && stop()) {
                                             whole = false;
                                             return false;
                                           }
                                           entry.RememberPart(type, read, expected);
                                           return true;
                                         });
  if (!whole) entry.Reset(type);
  return whole;
}

namespace {

// Builds `entry` for `type`, which it holds; false when `stop` ended it (the entry is empty).
bool Build(store::DbSession& db, ImportCache::Type& entry, const model::CiType& type,
           const WarmupOptions& options) {
  store::ImportStore store(db);
  // Taken before the first part: whatever commits after it is in the change log from here on,
  // read by the next import's catch-up, and never missed.
  const std::string snapshot = store.Snapshot();
  entry.Reset(type);
  const auto expected = static_cast<std::size_t>(store.CountOfType(type.name));
  if (!FillKept(db, entry, type, options.part, expected, options.stop)) return false;
  entry.snapshot = snapshot;
  entry.written_by.clear();
  entry.used = Clock::now();
  return true;
}

}  // namespace

std::vector<WarmedType> WarmKeptTypes(store::DbSession& db, ImportCache& cache,
                                      const WarmupOptions& options) {
  std::vector<WarmedType> warmed;
  store::ImportStore store(db);
  store::CiTypeRepository types(db);
  for (const std::string& name : store.KeptTypesSince(options.recent)) {
    if (options.stop && options.stop()) break;
    const std::optional<model::CiType> type = types.Find(name);
    if (!type) continue;  // deleted since
    const auto started = Clock::now();
    std::shared_ptr<ImportCache::Type> entry = cache.Of(name);
    // An import using the entry, or one that left it built: nothing to warm.
    std::unique_lock hold(entry->in_use, std::try_to_lock);
    if (!hold.owns_lock() || !entry->snapshot.empty()) continue;
    try {
      if (!Build(db, *entry, *type, options)) break;
    } catch (...) {
      entry->Reset(*type);
      throw;
    }
    warmed.push_back(
        {name, entry->cis.size(), std::chrono::duration<double>(Clock::now() - started).count()});
  }
  return warmed;
}

}  // namespace cmdb::import
