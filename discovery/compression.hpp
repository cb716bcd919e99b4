#pragma once
// LZ4 block compression for large values cmdb writes and reads back itself (a discovery run's
// decision log): compressed on cmdb's side, where a run has a core to spare, instead of by
// PostgreSQL's TOAST, which compresses on the one backend every write of the run waits for.

#include <cstddef>
#include <string>
#include <string_view>

namespace cmdb::discovery {

// `data` compressed as one LZ4 block. Throws Error{kPayloadTooLarge} over LZ4's 2 GB limit.
std::string Lz4Compress(std::string_view data);

// The `size` bytes that Lz4Compress compressed into `block`. Throws Error{kInternal} when the
// block is damaged or does not decompress to exactly `size` bytes.
std::string Lz4Decompress(std::string_view block, std::size_t size);

}  // namespace cmdb::discovery
