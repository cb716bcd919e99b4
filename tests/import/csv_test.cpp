#include "import/csv.hpp"

#include <gtest/gtest.h>

#include "model/error.hpp"

namespace cmdb::import {
namespace {

using model::Error;
using model::ErrorCode;

TEST(Csv, ReadsQuotedFieldsWithCommasQuotesAndLineBreaks) {
  auto records = ParseCsv("\xEF\xBB\xBFname,notes\r\n\"db, 01\",\"say \"\"hi\"\"\nthere\"\r\nx,\n");
  ASSERT_EQ(records.size(), 3U);
  EXPECT_EQ(records[0].fields, (std::vector<std::string>{"name", "notes"}));
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"db, 01", "say \"hi\"\nthere"}));
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(records[2].line, 4);
}

TEST(Csv, SkipsBlankLinesAndKeepsTheLastLineWithoutNewline) {
  auto records = ParseCsv("a,b\n\n1,2");
  ASSERT_EQ(records.size(), 2U);
  EXPECT_EQ(records[1].line, 3);
}

TEST(Csv, RejectsUnterminatedQuotesNamingTheLine) {
  try {
    ParseCsv("a\n\"open\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos);
  }
  EXPECT_THROW(ParseCsv("a\nab\"c\n"), Error);
  EXPECT_THROW(ParseCsv("a\n\"ab\"c\n"), Error);
}

}  // namespace
}  // namespace cmdb::import
