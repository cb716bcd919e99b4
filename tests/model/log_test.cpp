#include "model/log.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/json.hpp"

namespace cmdb::model {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](std::string_view line) { lines.emplace_back(line); });
  }
  void TearDown() override { SetLogSink({}); }
  std::vector<std::string> lines;
};

// Whatever a message or field holds, each entry is one line of valid JSON (UTF-8 included)
// that gives the text back.
TEST_F(LogTest, EveryEntryIsOneLineOfValidJsonWhateverItHolds) {
  const std::string hostile = "a \"quoted\" \\ back\\slash\nnew line\ttab \x01\x1f end";
  Log(LogLevel::kWarn, hostile, {{"error", hostile}, {"job", 42}, {"ok", true}});
  Log(LogLevel::kError, "bytes \xff\xfe of a bad path \xc3", {{"path", "/api/\xc0\xaf"}});
  ASSERT_EQ(lines.size(), 2U);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_NO_THROW(ParseJson(line)) << line;
  }
  const json::value first = ParseJson(lines[0]);
  EXPECT_EQ(first.at("level"), "warn");
  EXPECT_EQ(first.at("msg").as_string(), hostile);
  EXPECT_EQ(first.at("error").as_string(), hostile);
  EXPECT_EQ(first.at("job"), 42);
  EXPECT_TRUE(ParseTimestamp(first.at("ts").as_string()));
  const json::value second = ParseJson(lines[1]);
  EXPECT_EQ(second.at("msg"), "bytes \xef\xbf\xbd\xef\xbf\xbd of a bad path \xef\xbf\xbd");
}

}  // namespace
}  // namespace cmdb::model
