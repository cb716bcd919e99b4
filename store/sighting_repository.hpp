#pragma once
// Which discovery source last saw which CI (0011_sighting_streaks.sql,
// 0014_sighting_blocks.sql): a CI in an open streak of a source is a bit of one of the
// source's blocks; a closed streak is a row naming the run that last saw it. A repository
// borrows one session; not thread-safe.

#include <cstdint>
#include <optional>
#include <vector>

#include "model/sighting_blocks.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// A source's sightings before a run writes its own.
struct SourceSightings {
  // The source's latest writing run and when it observed: where streaks that end now close.
  std::optional<std::int64_t> sighted_run;
  model::Timestamp sighted_at;
  model::SightingBlocks blocks;           // open streaks
  std::vector<std::int64_t> closed_rows;  // CIs with a closed streak, sorted
};

class SightingRepository {
 public:
  explicit SightingRepository(DbSession& db) : db_(db) {}

  // Locks the source's row (serialising the sightings of one source until the transaction
  // ends) and reads its sightings. kNotFound when the source was deleted.
  SourceSightings LockAndRead(std::int64_t source_id);
  // Writes `changes` (model::SightingChanges, computed against `before`) as run `run_id` of the
  // source, observing at `observed_at`.
  void Write(std::int64_t source_id, const SourceSightings& before,
             const model::SightingChanges& changes, std::int64_t run_id,
             model::Timestamp observed_at);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
