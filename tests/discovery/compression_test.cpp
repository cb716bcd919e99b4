#include "discovery/compression.hpp"

#include <gtest/gtest.h>

#include "model/error.hpp"

namespace cmdb::discovery {
namespace {

using model::Error;

TEST(Lz4, RoundTripsAndRefusesDamagedBlocks) {
  std::string text;
  for (int i = 0; i < 20000; ++i)
    text += "{\"seq\":" + std::to_string(i) + ",\"outcome\":\"matched\"},";
  const std::string block = Lz4Compress(text);
  EXPECT_LT(block.size(), text.size() / 4);
  EXPECT_EQ(Lz4Decompress(block, text.size()), text);
  std::string bytes;
  for (int c = 0; c < 256; ++c) bytes += static_cast<char>(c);
  EXPECT_EQ(Lz4Decompress(Lz4Compress(bytes), bytes.size()), bytes);
  EXPECT_EQ(Lz4Decompress(Lz4Compress(""), 0), "");
  // A wrong size, a truncated block or garbage: an error, never a buffer overrun.
  EXPECT_THROW(Lz4Decompress(block, text.size() - 1), Error);
  EXPECT_THROW(Lz4Decompress(block, text.size() + 1), Error);
  EXPECT_THROW(Lz4Decompress(block.substr(0, block.size() / 2), text.size()), Error);
  EXPECT_THROW(Lz4Decompress(std::string(64, '\xff'), 1000), Error);
}

}  // namespace
}  // namespace cmdb::discovery
