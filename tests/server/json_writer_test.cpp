#include "server/json_writer.hpp"

#include <limits>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace cmdb::server {
namespace {

TEST(JsonWriter, WritesNestedContainersWithCommasInPlace) {
  JsonWriter w;
  w.BeginObject()
      .Field("id", std::int64_t{42})
      .Field("ok", true)
      .Key("none")
      .Null()
      .Key("list")
      .BeginArray()
      .Int(1)
      .Int(-2)
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .String("x")
      .EndArray()
      .Key("empty")
      .BeginArray()
      .EndArray()
      .EndObject();
  EXPECT_EQ(w.str(), R"({"id":42,"ok":true,"none":null,"list":[1,-2,{},[],"x"],"empty":[]})");
}

TEST(JsonWriter, EscapesWhatJsonRequiresAndKeepsUtf8) {
  // Quotes, backslashes, every control character, markup, non-Latin scripts and emoji.
  std::string hostile = "a\"b\\c</script><b>&amp;'\n\r\t\b\f é 日本語 🚀 \x7f";
  for (char c = 1; c < 0x20; ++c) hostile += c;
  hostile += std::string(1, '\0') + "end";
  JsonWriter w;
  w.BeginObject().Field(hostile, hostile).Field("max", std::numeric_limits<std::int64_t>::max());
  w.Field("min", std::numeric_limits<std::int64_t>::min()).EndObject();
  const boost::json::value parsed = boost::json::parse(w.str());
  const boost::json::object& o = parsed.as_object();
  ASSERT_EQ(o.size(), 3U);
  EXPECT_EQ(std::string(o.at(hostile).as_string()), hostile);
  EXPECT_EQ(o.at("max").as_int64(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(o.at("min").as_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(w.str().find('\n'), std::string::npos);  // control characters never appear raw
}

TEST(JsonWriter, GrowsPastWhatWasReservedAndWritesEmptyStrings) {
  JsonWriter w(8);
  w.BeginArray();
  std::string expected = "[";
  for (int i = 0; i < 2000; ++i) {
    const std::string s = i % 3 == 0 ? "" : std::string(static_cast<std::size_t>(i % 50), 'x');
    w.String(s).Int(i);
    expected += (i > 0 ? ",\"" : "\"") + s + "\"," + std::to_string(i);
  }
  w.EndArray();
  expected += "]";
  EXPECT_EQ(w.str(), expected);
  EXPECT_EQ(boost::json::parse(w.str()).as_array().size(), 4000U);
}

}  // namespace
}  // namespace cmdb::server
