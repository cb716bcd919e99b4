#pragma once
// What an instance keeps between imports of a CI type, for the nightly sync that sends the
// same estate again: the identity index of the type's CIs and a digest of each one's writable
// fields, as of a PostgreSQL snapshot. An import of the type brings it up to date from the
// change log (graph_changes: every statement that inserts, updates or deletes CIs, by any
// writer, plain SQL included) under the type's import lock, then matches its rows against it
// instead of reading the type, and a row whose digest is the CI's is unchanged without being
// read. The rows that differ are read and merged as before. Shared by the imports of one
// instance; a type's entry is used by one import at a time, or built by the warm-up after a
// start (kept_warmup.hpp).

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "import/identity_index.hpp"
#include "model/ci_type.hpp"
#include "model/configuration_item.hpp"

namespace cmdb::import {

// SHA-256 (first 16 bytes) of a CI's writable fields but its type — name, status, owner,
// tags, attributes (keys in order, at every depth) and redundancy — in a length-prefixed
// form: equal digests mean equal fields.
using CiDigest = std::array<std::uint8_t, 16>;
CiDigest DigestOf(const model::ConfigurationItem& ci);

class ImportCache {
 public:
  // One type's CIs as of `snapshot` (empty: not built).
  struct Type {
    std::mutex in_use;  // held by the import using the entry, until it ends
    std::chrono::steady_clock::time_point used;  // when an import last began using it
    std::string snapshot;
    // The transaction (pg_current_xact_id() text) of the import that last wrote CIs of the
    // type and added them here once it committed (empty: none since `snapshot`). Its rows in
    // the change log are skipped: the nightly sync right after the import that created the
    // CIs does not read them all again.
    std::string written_by;
    // When this instance last recorded in the database that it keeps the type
    // (import_kept_types, which an instance warms again at start); never: the epoch.
    std::chrono::steady_clock::time_point recorded{};
    std::vector<std::vector<std::string>> identify_by;  // the type's sets it was built with
    IdentityIndex index;
    struct Known {
      CiDigest digest{};
      std::string name;
      std::vector<std::string> keys;  // under identify_by, as IdentityIndex::Keys
    };
    std::unordered_map<model::CiId, Known> cis;

    // Empties the entry for `type` (its identify_by recorded).
    void Reset(const model::CiType& type);
    // Adds CIs of `type`, replacing those known (digests and keys computed on all cores):
    // after Reset (no snapshot yet) every CI of the type, then the CIs changed since.
    void Remember(const model::CiType& type, const std::vector<model::ConfigurationItem>& read);
    // Remember's first case a part at a time: after Reset, CIs of the type not added yet (the
    // type read in parts, in id order); the maps are sized for `expected` CIs in all.
    void RememberPart(const model::CiType& type, const std::vector<model::ConfigurationItem>& read,
                      std::size_t expected);
    // Removes a CI, if known.
    void Forget(const model::CiType& type, model::CiId id);
    // Adds (or replaces) CI `id` as `known`.
    void Add(const model::CiType& type, model::CiId id, Known known);
  };

  // The entry of `type`, created empty on first use.
  std::shared_ptr<Type> Of(const std::string& type);
  // The entry of `type` if there is one (none is created).
  std::shared_ptr<Type> Find(std::string_view type);
  // Drops the entries no import used since `now - idle` and none is using: a type synced
  // nightly keeps its entry, one imported once does not hold memory for good. Returns the
  // CIs they held.
  std::size_t DropIdle(std::chrono::steady_clock::time_point now,
                       std::chrono::steady_clock::duration idle);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Type>, std::less<>> types_;
};

}  // namespace cmdb::import
