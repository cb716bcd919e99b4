#pragma once
// A discovery source's open sighting streaks as bitmaps of blocks of CI ids
// (0014_sighting_blocks.sql), what one writing run changes in them, and the text form of a
// block that PostgreSQL's bit(1024) takes. Value types; thread-safe.

#include <bitset>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cmdb::model {

inline constexpr int kSightingBlockShift = 10;
inline constexpr std::int64_t kSightingBlockSize = std::int64_t{1} << kSightingBlockShift;

// Bit i is the CI block * kSightingBlockSize + i.
using SightingBits = std::bitset<kSightingBlockSize>;
// block -> the CIs of the block in an open streak; no empty bitmaps.
using SightingBlocks = std::map<std::int64_t, SightingBits>;

// What a run writes, given the source's blocks and the CIs that have a row of a closed streak
// (discovery/sightings.hpp computes it).
struct SightingChanges {
  SightingBlocks write;                // blocks new or changed by this run, to store
  std::vector<std::int64_t> erase;     // blocks to delete first: changed, or empty now
  std::vector<std::int64_t> closed;    // CIs the previous run saw and this one did not
  std::vector<std::int64_t> reopened;  // CIs seen again whose closed row goes
};

// The text form of PostgreSQL's bit(1024): one '0' or '1' per bit, bit 0 first.
std::string BitsText(const SightingBits& bits);
// Throws std::invalid_argument unless `text` is exactly that.
SightingBits ParseBits(std::string_view text);

}  // namespace cmdb::model
