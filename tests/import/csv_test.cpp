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

// A file read in parts (a background import's stored chunks) gives the records of the whole,
// wherever the parts split: inside a quoted field, between the quotes of "", inside a CRLF.
TEST(Csv, ReadInPartsGivesTheRecordsOfTheWhole) {
  const std::string text =
      "\xEF\xBB\xBFname,notes,tags\r\nweb-01,\"says \"\"hi\"\", twice\r\nand more\",a;b\r\n\r\n"
      "db-02,,\"x\"\n\"quoted \"\"\"\"\",\"\",last";
  const std::vector<CsvRecord> whole = ParseCsv(text);
  ASSERT_EQ(whole.size(), 4U);
  EXPECT_EQ(whole[1].fields[1], "says \"hi\", twice\r\nand more");
  EXPECT_EQ(whole[3].fields[0], "quoted \"\"");
  EXPECT_EQ(whole[3].line, 6);
  for (std::size_t part = 1; part <= text.size(); ++part) {
    CsvReader reader;
    std::vector<CsvRecord> got;
    for (std::size_t at = 0; at < text.size(); at += part) {
      reader.Write(std::string_view(text).substr(at, part));
      for (CsvRecord& r : reader.Take()) got.push_back(std::move(r));
    }
    reader.Finish();
    for (CsvRecord& r : reader.Take()) got.push_back(std::move(r));
    ASSERT_EQ(got.size(), whole.size()) << "parts of " << part;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].line, whole[i].line) << "parts of " << part;
      EXPECT_EQ(got[i].fields, whole[i].fields) << "parts of " << part;
    }
  }
}

// A record is held whole until it ends, so a reader refuses one past its limit as soon as it
// has read that much of it, naming the line the record starts on, however the parts split it.
TEST(Csv, RefusesARecordPastItsLimitNamingTheLine) {
  const std::string fits =
      "name,notes\n" + std::string(20, 'a') + "\n\"" + std::string(15, 'b') + "\nc\"\n";
  CsvReader ok(24);  // each record is at most 24 bytes with its line end
  ok.Write(fits);
  ok.Finish();
  EXPECT_EQ(ok.Take().size(), 3U);
  for (std::size_t part : {std::size_t{1}, std::size_t{7}, std::size_t{100}}) {
    const std::string text = fits + "x,\"" + std::string(30, 'y') + "\"\n";
    CsvReader reader(24);
    std::size_t read = 0;
    try {
      for (; read < text.size(); read += part) {
        reader.Write(std::string_view(text).substr(read, part));
      }
      FAIL() << "parts of " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_STREQ(e.what(), "CSV line 5: a record is longer than 24 bytes") << "parts of " << part;
    }
    EXPECT_LT(read, text.size()) << "refused before the end, parts of " << part;
  }
  EXPECT_THROW(ParseCsv("a\n" + std::string(kMaxCsvRecordBytes + 1, 'z')), Error);
}

}  // namespace
}  // namespace cmdb::import
