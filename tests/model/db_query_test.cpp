#include "model/db_query.hpp"

#include <limits>

#include <gtest/gtest.h>

#include "model/compression.hpp"
#include "model/error.hpp"

namespace cmdb::model {
namespace {

TEST(IdsFromArrayText, ReadsWhatPostgresqlWritesForABigintArray) {
  EXPECT_EQ(IdsFromArrayText("{}"), std::vector<std::int64_t>{});
  EXPECT_EQ(IdsFromArrayText("{42}"), std::vector<std::int64_t>{42});
  EXPECT_EQ(IdsFromArrayText("{1,-2,9223372036854775807}"),
            (std::vector<std::int64_t>{1, -2, 9223372036854775807}));
  // The inverse of the literal the repositories send.
  const std::vector<std::int64_t> ids{7, 100000, 3};
  EXPECT_EQ(IdsFromArrayText(IdArrayLiteral(ids)), ids);
}

TEST(IdRuns, CoversExactlyTheIdsWithConsecutiveRuns) {
  IdRunLiterals one = IdRuns({5, 3, 4, 6});
  EXPECT_EQ(one.first, "{3}");
  EXPECT_EQ(one.last, "{6}");
  EXPECT_EQ(one.runs, 1U);
  // Gaps (ids another session drew in between) start new runs; duplicates do not.
  IdRunLiterals gaps = IdRuns({1, 2, 3, 4, 7, 7, 9, 10, -1});
  EXPECT_EQ(gaps.first, "{-1,1,7,9}");
  EXPECT_EQ(gaps.last, "{-1,4,7,10}");
  EXPECT_EQ(gaps.runs, 4U);
  IdRunLiterals none = IdRuns({});
  EXPECT_EQ(none.first, "{}");
  EXPECT_EQ(none.runs, 0U);
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(IdRuns({max, max - 1}).last, "{" + std::to_string(max) + "}");
}

TEST(IdsFromArrayText, RefusesAnythingElse) {
  for (const char* bad : {"", "{", "}", "[1,2]", "{1,}", "{,1}", "{1,,2}", "{1 ,2}", "{a}", "{1}x",
                          "{99999999999999999999}", "{NULL}"}) {
    EXPECT_THROW(IdsFromArrayText(bad), Error) << bad;
  }
}

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

TEST(ErrorCodeName, EveryCodeHasANameThatReadsBack) {
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kValidationFailed, ErrorCode::kNotFound,
        ErrorCode::kAlreadyExists, ErrorCode::kConflict, ErrorCode::kFailedPrecondition,
        ErrorCode::kVersionMismatch, ErrorCode::kPayloadTooLarge, ErrorCode::kUnsupportedMediaType,
        ErrorCode::kUnavailable, ErrorCode::kInternal}) {
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code) << ErrorCodeName(code);
  }
  EXPECT_EQ(ErrorCodeName(ErrorCode::kValidationFailed), "validation_failed");
  EXPECT_EQ(ErrorCodeFromName("no_such_code"), std::nullopt);
}

}  // namespace
}  // namespace cmdb::model
