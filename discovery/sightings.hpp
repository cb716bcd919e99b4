#pragma once
// What one writing run of a source changes in its open sighting streaks (the bitmaps of
// model/sighting_blocks.hpp). Pure: the run executor (jobs/) reads and writes the tables.

#include <cstdint>
#include <vector>

#include "model/sighting_blocks.hpp"

namespace cmdb::discovery {

using model::kSightingBlockShift;
using model::kSightingBlockSize;
using model::SightingBits;
using model::SightingBlocks;
using model::SightingChanges;

// `seen` and `closed_rows` sorted, without duplicates; CI ids are positive.
SightingChanges DiffSightings(const SightingBlocks& previous,
                              const std::vector<std::int64_t>& closed_rows,
                              const std::vector<std::int64_t>& seen);

}  // namespace cmdb::discovery
