#include "model/timestamp.hpp"

#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

TEST(Timestamp, FormatsAndParsesRoundTrip) {
  auto ts = ParseTimestamp("2026-11-27T17:32:26.123456Z");
  ASSERT_TRUE(ts);
  EXPECT_EQ(FormatTimestamp(*ts), "2026-11-27T17:32:26.123456Z");
  EXPECT_EQ(FormatTimestamp(Timestamp{0}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("2024-02-29T00:00:00Z")), "2024-02-29T00:00:00Z");
}

TEST(Timestamp, AppliesOffsets) {
  EXPECT_EQ(ParseTimestamp("2026-01-01T01:30:00+01:30"), ParseTimestamp("2026-01-01T00:00:00Z"));
  EXPECT_EQ(ParseTimestamp("2025-12-31T23:00:00-01:00"), ParseTimestamp("2026-01-01T00:00:00Z"));
  EXPECT_EQ(ParseTimestamp("2026-01-01"), ParseTimestamp("2026-01-01T00:00:00Z"));
}

TEST(Timestamp, RejectsImpossibleOrMalformedText) {
  for (const char* bad :
       {"", "yesterday", "2026-02-30T00:00:00Z", "2023-02-29", "2026-13-01", "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00", "2026-01-01T00:00Z", "2026-01-01T00:00:00+5",
        "2026-01-01T00:00:00Zjunk", "99999-01-01", "2026-01-01T00:00:00.Z"}) {
    EXPECT_FALSE(ParseTimestamp(bad)) << bad;
  }
}

TEST(Timestamp, ValidatesCalendarDates) {
  EXPECT_TRUE(IsValidDate("2024-02-29"));
  EXPECT_FALSE(IsValidDate("2100-02-29"));
  EXPECT_FALSE(IsValidDate("2026-04-31"));
  EXPECT_FALSE(IsValidDate("2026-4-01"));
}

}  // namespace
}  // namespace cmdb::model
