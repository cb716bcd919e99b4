#pragma once
// A source's open sighting streaks as bitmaps of CI blocks (0014_sighting_blocks.sql), and
// what one writing run changes in them. Pure: run_worker.cpp reads and writes the tables.

#include <bitset>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cmdb::discovery {

inline constexpr int kSightingBlockShift = 10;
inline constexpr std::int64_t kSightingBlockSize = std::int64_t{1} << kSightingBlockShift;

// Bit i is the CI block * kSightingBlockSize + i.
using SightingBits = std::bitset<kSightingBlockSize>;
// block -> the CIs of the block in an open streak; no empty bitmaps.
using SightingBlocks = std::map<std::int64_t, SightingBits>;

// What a run that saw `seen` writes, given the source's blocks and the CIs that have a row
// of a closed streak (`closed_rows`) before it.
struct SightingChanges {
  SightingBlocks write;                // blocks new or changed by this run, to store
  std::vector<std::int64_t> erase;     // blocks to delete first: changed, or empty now
  std::vector<std::int64_t> closed;    // CIs the previous run saw and this one did not
  std::vector<std::int64_t> reopened;  // CIs seen again whose closed row goes
};

// `seen` and `closed_rows` sorted, without duplicates; CI ids are positive.
SightingChanges DiffSightings(const SightingBlocks& previous,
                              const std::vector<std::int64_t>& closed_rows,
                              const std::vector<std::int64_t>& seen);

// The text form of PostgreSQL's bit(1024): one '0' or '1' per bit, bit 0 first.
std::string BitsText(const SightingBits& bits);
// Throws std::invalid_argument unless `text` is exactly that.
SightingBits ParseBits(std::string_view text);

}  // namespace cmdb::discovery
