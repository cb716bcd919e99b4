#include "discovery/sightings.hpp"

#include <algorithm>
#include <iterator>

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

}  // namespace cmdb::discovery
