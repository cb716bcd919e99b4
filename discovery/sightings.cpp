#include "discovery/sightings.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace cmdb::discovery {

SightingChanges DiffSightings(const SightingBlocks& previous,
                              const std::vector<std::int64_t>& closed_rows,
                              const std::vector<std::int64_t>& seen) {
  SightingBlocks now;
  for (std::int64_t ci : seen) {
    now[ci >> kSightingBlockShift].set(static_cast<std::size_t>(ci & (kSightingBlockSize - 1)));
  }
  SightingChanges out;
  auto add_ids = [](std::int64_t block, const SightingBits& bits, std::vector<std::int64_t>& to) {
    for (std::size_t i = 0; i < bits.size(); ++i) {
      if (bits.test(i)) to.push_back(block * kSightingBlockSize + static_cast<std::int64_t>(i));
    }
  };
  // Both maps are ordered by block, so `closed` comes out sorted.
  auto p = previous.begin();
  auto n = now.begin();
  while (p != previous.end() || n != now.end()) {
    if (n == now.end() || (p != previous.end() && p->first < n->first)) {
      add_ids(p->first, p->second, out.closed);
      out.erase.push_back(p->first);
      ++p;
    } else if (p == previous.end() || n->first < p->first) {
      out.write.emplace(n->first, n->second);
      ++n;
    } else {
      if (p->second != n->second) {
        add_ids(p->first, p->second & ~n->second, out.closed);
        out.erase.push_back(p->first);
        out.write.emplace(n->first, n->second);
      }
      ++p;
      ++n;
    }
  }
  std::set_intersection(seen.begin(), seen.end(), closed_rows.begin(), closed_rows.end(),
                        std::back_inserter(out.reopened));
  return out;
}

std::string BitsText(const SightingBits& bits) {
  std::string text(bits.size(), '0');
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits.test(i)) text[i] = '1';
  }
  return text;
}

SightingBits ParseBits(std::string_view text) {
  SightingBits bits;
  if (text.size() != bits.size()) {
    throw std::invalid_argument("a sighting block has " + std::to_string(text.size()) +
                                " bits, not " + std::to_string(bits.size()));
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '1') {
      bits.set(i);
    } else if (text[i] != '0') {
      throw std::invalid_argument("a sighting block is not a bit string");
    }
  }
  return bits;
}

}  // namespace cmdb::discovery
