#include "store/pg.hpp"

#include <gtest/gtest.h>

namespace cmdb::store::pg {
namespace {

TEST(Bytea, HexTextOfEveryByteDecodes) {
  std::string bytes;
  std::string hex = "\\x";  // PostgreSQL's text output of a bytea
  constexpr std::string_view kDigits = "0123456789abcdef";
  for (int c = 0; c < 256; ++c) {
    bytes += static_cast<char>(c);
    hex += kDigits[static_cast<std::size_t>(c) >> 4U];
    hex += kDigits[static_cast<std::size_t>(c) & 15U];
  }
  EXPECT_EQ(DecodeBytea(hex), bytes);
  EXPECT_EQ(DecodeBytea("\\x4869"), "Hi");
  EXPECT_EQ(DecodeBytea("\\x4A6b"), "Jk");  // PostgreSQL writes lowercase; both are read
  EXPECT_EQ(DecodeBytea("\\x"), "");
}

TEST(CopyBuffer, EscapesWhatCopyTextFormatReservesAndNothingElse) {
  CopyBuffer b;
  b.Field("plain");
  b.Field("a\\b\tc\nd\re");  // backslash, tab, newline, carriage return
  b.Field("");
  b.Null();
  b.Int(-42);
  b.EndRow();
  b.Field("\\\\");             // escapes at the start and end, back to back
  b.Field("\"\xc3\xa9\x01'");  // quotes, UTF-8 and other control bytes pass as they are
  b.EndRow();
  EXPECT_EQ(b.data(),
            "plain\ta\\\\b\\tc\\nd\\re\t\t\\N\t-42\n"
            "\\\\\\\\\t\"\xc3\xa9\x01'\n");
  EXPECT_EQ(b.rows(), 2U);
}

TEST(CopyBuffer, WritesByteaAsEscapedHex) {
  CopyBuffer b;
  b.Int(1);
  b.Bytea(std::string("\x00\x01\xfe\\", 4));
  b.Bytea("");
  b.EndRow();
  EXPECT_EQ(b.data(), "1\t\\\\x0001fe5c\t\\\\x\n");
}

}  // namespace
}  // namespace cmdb::store::pg
