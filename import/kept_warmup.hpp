#pragma once
// The warm-up of what an instance keeps between imports (import_cache.hpp) after a start. The
// cache lives in memory, so a restart empties it and the first nightly sync after one would
// read its types whole on the request's path. Imports record the types they keep
// (import_kept_types, RecordKept); at start an instance reads the types recorded lately again
// in the background, a part at a time, and builds their entries as an import that reads a type
// whole would, as of a snapshot taken before the first part: what commits meanwhile is in the
// change log, which the next import reads from that snapshot on. An import of a type being
// warmed waits for its entry (it would otherwise read the type itself for as long).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "import/import_cache.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {

struct WarmupOptions {
  std::chrono::hours recent{48};  // types some instance kept in the last this long
  std::size_t part = 20000;       // CIs parsed and added at a time
  std::function<bool()> stop;     // polled at each part: true ends the warm-up (may be empty)
};

// Fills `entry`, just Reset for `type` and held by the caller, with every CI of the type read
// by one statement and taken `part` at a time (`expected`, the type's count, sizes its maps
// once): memory stays one part above what the entry keeps. Returns false, the entry Reset
// again, when `stop` (polled at each part; may be empty) ends it: `db` is then left in the
// middle of the read, and must be a connection the caller closes. The caller sets the
// snapshot the entry is as of, taken before the read. Throws what the database throws.
bool FillKept(store::DbSession& db, ImportCache::Type& entry, const model::CiType& type,
              std::size_t part, std::size_t expected, const std::function<bool()>& stop);

struct WarmedType {
  std::string type;
  std::size_t cis = 0;
  double seconds = 0;
};

// Builds the entry of each type recorded lately that `cache` keeps nothing of and no import
// is using, reading on `db` (statements of their own, outside any transaction). Returns the
// types built. Throws what the database throws; the entry being built is left empty then.
std::vector<WarmedType> WarmKeptTypes(store::DbSession& db, ImportCache& cache,
                                      const WarmupOptions& options);

}  // namespace cmdb::import
