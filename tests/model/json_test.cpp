#include "model/json.hpp"

#include <gtest/gtest.h>

#include "model/error.hpp"

namespace cmdb::model {
namespace {

ErrorCode CodeOf(std::string_view text) {
  try {
    ParseJson(text);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;
}

TEST(ParseJson, AcceptsOrdinaryDocuments) {
  json::value v = ParseJson(R"({"a": [1, 2.5, "x", null, true]})");
  EXPECT_EQ(v.at("a").as_array().size(), 5U);
}

TEST(ParseJson, RejectsNestingDeeperThanTheLimitWithoutRecursing) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  try {
    ParseJson(deep);
    FAIL() << "deep document accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("nesting deeper"), std::string::npos);
  }
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(ParseJson(ok));
}

TEST(ParseJson, RejectsInvalidUtf8TrailingGarbageAndComments) {
  EXPECT_EQ(CodeOf("\"\xC3\x28\""), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("\"\xED\xA0\x80\""), ErrorCode::kInvalidArgument);  // UTF-16 surrogate
  EXPECT_EQ(CodeOf("{} {}"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("{\"a\": 1,}"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("// hi\n{}"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(""), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("{\"a\": 1"), ErrorCode::kInvalidArgument);
}

// Found by fuzz/fuzz_json: 1e616 parsed as infinity, which cannot be written back as JSON nor
// stored; it is refused, naming where it is.
TEST(ParseJson, RefusesNumbersBeyondTheRangeOfADouble) {
  try {
    ParseJson(R"({"attributes": {"a/b": [1, 2e999]}})");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    ASSERT_EQ(e.field_errors().size(), 1U);
    EXPECT_EQ(e.field_errors()[0].field, "/attributes/a~1b/1");
  }
  EXPECT_THROW(ParseJson("-1e400"), Error);
  EXPECT_EQ(ParseJson("1e308"), json::value(1e308));
  EXPECT_EQ(ParseJson("1e-400"), json::value(0.0));  // underflow is zero, a real number
}

TEST(ParseJson, KeepsNonLatinScriptsAndEscapes) {
  json::value v = ParseJson(R"({"n": "сервер \u00e9 日本 <b>\"q\"</b>"})");
  EXPECT_EQ(v.at("n").as_string(), "сервер é 日本 <b>\"q\"</b>");
}

TEST(AppendJson, WritesTextThatParsesBackToTheSameValues) {
  std::string every;  // every ASCII character, then UTF-8 from three scripts and a surrogate pair
  for (int c = 0; c < 128; ++c) every += static_cast<char>(c);
  every += "\xc3\xa9 \xd0\x96 \xe4\xb8\xad \xf0\x9d\x84\x9e <b>\"x\"</b>";
  std::string out = "[";
  AppendJsonString(out, every);
  out += ',';
  AppendJsonString(out, "");
  out += ',';
  const json::value document = ParseJson(R"({"a": [1, 2.5, null, true, "q\"\\"], "b": {}})");
  AppendJson(out, document);
  out += ',';
  AppendJson(out, document.at("a").as_array());
  out += ',';
  AppendJson(out, document.at("b").as_object());
  out += ']';
  const json::value back = ParseJson(out);
  ASSERT_EQ(back.as_array().size(), 5U);
  EXPECT_EQ(back.at(0).as_string(), every);
  EXPECT_EQ(back.at(1).as_string(), "");
  EXPECT_EQ(back.at(2), document);
  EXPECT_EQ(back.at(3), document.at("a"));
  EXPECT_EQ(back.at(4), document.at("b"));
  // Control characters are escaped, not written raw; other text is left as it is.
  for (char c : out) EXPECT_GE(static_cast<unsigned char>(c), 0x20U);
  EXPECT_NE(out.find("\xe4\xb8\xad"), std::string::npos);
  // A large value crosses the serializer's buffer several times.
  json::array big;
  for (int i = 0; i < 5000; ++i) big.emplace_back("item " + std::to_string(i));
  std::string text;
  AppendJson(text, big);
  EXPECT_EQ(ParseJson(text), big);
}

TEST(MergePatch, FollowsRfc7396Examples) {
  // The test cases of RFC 7396 appendix A.
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  };
  const std::vector<Case> cases = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MergePatch(ParseJson(c.target), ParseJson(c.patch)), ParseJson(c.result))
        << c.target << " + " << c.patch;
  }
}

}  // namespace
}  // namespace cmdb::model
