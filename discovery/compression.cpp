#include "discovery/compression.hpp"

#include <limits>

#include <lz4.h>

#include "model/error.hpp"

namespace cmdb::discovery {

using model::Error;
using model::ErrorCode;

std::string Lz4Compress(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE)) {
    throw Error(ErrorCode::kPayloadTooLarge, "a value over LZ4's 2 GB limit cannot be stored");
  }
  const int size = static_cast<int>(data.size());
  std::string out(static_cast<std::size_t>(LZ4_compressBound(size)), '\0');
  const int written =
      LZ4_compress_default(data.data(), out.data(), size, static_cast<int>(out.size()));
  if (written <= 0) throw Error(ErrorCode::kInternal, "LZ4 compression failed");
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string Lz4Decompress(std::string_view block, std::size_t size) {
  if (size > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE) ||
      block.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error(ErrorCode::kInternal, "a stored LZ4 block claims an impossible size");
  }
  std::string out(size, '\0');
  const int read = LZ4_decompress_safe(block.data(), out.data(), static_cast<int>(block.size()),
                                       static_cast<int>(size));
  if (read < 0 || static_cast<std::size_t>(read) != size) {
    throw Error(ErrorCode::kInternal, "a stored LZ4 block is damaged");
  }
  return out;
}

}  // namespace cmdb::discovery
