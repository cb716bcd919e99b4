#pragma once
// How an import read as a stream (a background job's payload, a synchronous request's body) is
// cut into batches.

#include <cstddef>

namespace cmdb::import {

// Rows per batch: what bounds the import's memory (a CI row costs a few kB while it is
// validated, merged and written; a relation row a few hundred bytes).
struct BatchSizes {
  std::size_t cis = 20000;
  // A JSON import's first batch of CIs; each next one doubles, up to `cis`. The first write
  // (beside which the next batches are read) starts after this many rows, not `cis`.
  std::size_t first_cis = 2048;
  std::size_t relations = 100000;
};

}  // namespace cmdb::import
