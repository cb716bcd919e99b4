#include "import/document_stream.hpp"

#include <optional>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::import {
namespace {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using Keep = ImportDocumentStream::Keep;

// Every kept row of `doc` fed in parts of `part` bytes, taken after each part as a job does.
struct Read {
  json::array cis;
  json::array relations;
  std::int64_t cis_seen = 0;
  std::int64_t relations_seen = 0;
  bool relations_early = false;
};

Read ReadAll(const std::string& doc, std::size_t part, Keep keep) {
  ImportDocumentStream stream(keep);
  Read out;
  auto take = [&] {
    for (auto& v : stream.TakeCis()) out.cis.push_back(v);
    for (auto& v : stream.TakeRelations()) out.relations.push_back(v);
  };
  for (std::size_t at = 0; at < doc.size(); at += part) {
    stream.Write(std::string_view(doc).substr(at, part));
    take();
  }
  stream.Finish();
  take();
  out.cis_seen = stream.cis_seen();
  out.relations_seen = stream.relations_seen();
  out.relations_early = stream.relations_before_cis_ended();
  return out;
}

const std::string kDoc = R"({"cis": [
    {"type": "server", "name": "db-\"01\" <b>", "attributes": {"memory_mb": 1024, "ip": null,
     "tags": ["a", "b", {"deep": [1.5, true, -7, 18446744073709551615]}]}},
    "not an object", 42, [], {},
    {"type": "application", "name": "日本語 ✓ \u00e9"}
  ],
  "relations": [{"type": "runs_on", "from": 1, "to": {"type": "server", "name": "db"}}, null]})";

TEST(ImportDocumentStream, RowsAreTheDocumentsRowsWhateverThePartsAre) {
  const json::value whole = model::ParseJson(kDoc);
  for (std::size_t part :
       {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{64}, kDoc.size()}) {
    SCOPED_TRACE("parts of " + std::to_string(part) + " bytes");
    Read read = ReadAll(kDoc, part, {.cis = true, .relations = true});
    EXPECT_EQ(json::value(read.cis), whole.at("cis"));
    EXPECT_EQ(json::value(read.relations), whole.at("relations"));
    EXPECT_EQ(read.cis_seen, 6);
    EXPECT_EQ(read.relations_seen, 2);
    EXPECT_FALSE(read.relations_early);
  }
}

TEST(ImportDocumentStream, KeepsOnlyWhatItIsAskedToAndCountsTheRest) {
  Read cis_only = ReadAll(kDoc, 5, {.cis = true, .relations = false});
  EXPECT_EQ(cis_only.cis.size(), 6U);
  EXPECT_TRUE(cis_only.relations.empty());
  EXPECT_EQ(cis_only.relations_seen, 2);
  Read check_only = ReadAll(kDoc, 5, {});
  EXPECT_TRUE(check_only.cis.empty());
  EXPECT_TRUE(check_only.relations.empty());
  EXPECT_EQ(check_only.cis_seen, 6);
}

TEST(ImportDocumentStream, RelationsBeforeTheCisWaitForASecondReading) {
  const std::string doc =
      R"({"relations": [{"type": "runs_on", "from": 1, "to": 2}], "cis": [{"type": "vm", "name": "a"}]})";
  Read first = ReadAll(doc, 3, {.cis = true, .relations = true});
  EXPECT_EQ(first.cis.size(), 1U);
  EXPECT_TRUE(first.relations.empty());  // not kept: they might name CIs not yet written
  EXPECT_TRUE(first.relations_early);
  Read second = ReadAll(doc, 3, {.cis = false, .relations = true});
  EXPECT_EQ(second.relations.size(), 1U);
  // A document of relations only has none before its CIs that matter.
  Read only = ReadAll(R"({"relations": [{"type": "x"}]})", 4, {.cis = false, .relations = true});
  EXPECT_EQ(only.relations.size(), 1U);
}

TEST(ImportDocumentStream, LongStringsInPartsAreWhole) {
  const std::string name(300000, 'x');
  const std::string doc =
      R"({"cis": [{"type": "vm", "name": ")" + name + R"("}, ")" + name + R"("]})";
  Read read = ReadAll(doc, 4096, {.cis = true});
  ASSERT_EQ(read.cis.size(), 2U);
  EXPECT_EQ(read.cis[0].at("name").as_string().size(), name.size());
  EXPECT_EQ(read.cis[1].as_string().size(), name.size());
  EXPECT_EQ(read.cis_seen, 2);
}

// The code of the error reading `doc` throws; nullopt when it reads.
std::optional<ErrorCode> CodeOf(const std::string& doc, std::string* message = nullptr,
                                std::string* field = nullptr) {
  try {
    ReadAll(doc, 3, {.cis = true, .relations = true});
    return std::nullopt;
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    if (field != nullptr && !e.field_errors().empty()) *field = e.field_errors().front().field;
    return e.code();
  }
}

TEST(ImportDocumentStream, RefusesWhatIsNotJsonAsParseJsonDoes) {
  std::string message;
  EXPECT_EQ(CodeOf(R"({"cis": [)", &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  EXPECT_EQ(CodeOf(R"({"cis": [],})"), ErrorCode::kInvalidArgument);  // trailing comma
  EXPECT_EQ(CodeOf(R"({"cis": [] /* c */})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("{\"cis\": [\"\xff\"]}"), ErrorCode::kInvalidArgument);  // bad UTF-8
  EXPECT_EQ(CodeOf(R"({"cis": []} {})"), ErrorCode::kInvalidArgument);      // trailing garbage
  EXPECT_EQ(CodeOf(""), ErrorCode::kInvalidArgument);
  const std::string deep = R"({"cis": [)" + std::string(100, '[') + std::string(100, ']') + "]}";
  EXPECT_EQ(CodeOf(deep, &message), ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("nesting deeper than 64"), std::string::npos) << message;
  // A number beyond the double range (infinity) is no JSON value, as ParseJson says too.
  EXPECT_EQ(
      CodeOf(R"({"cis": [{"type": "vm", "name": "x", "attributes": {"n": 1e999}}]})", &message),
      ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("beyond the range of a double"), std::string::npos) << message;
}

TEST(ImportDocumentStream, RefusesWhatIsNotAnImportDocumentNamingTheField) {
  std::string field;
  EXPECT_EQ(CodeOf("[]"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("\"cis\""), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("{}", nullptr, &field), ErrorCode::kValidationFailed);
  EXPECT_EQ(field, "cis");
  EXPECT_EQ(CodeOf(R"({"cis": [], "colour": "red"})", nullptr, &field),
            ErrorCode::kValidationFailed);
  EXPECT_EQ(field, "colour");
  EXPECT_EQ(CodeOf(R"({"cis": {"a": [1]}})", nullptr, &field), ErrorCode::kValidationFailed);
  EXPECT_EQ(field, "cis");
  EXPECT_EQ(CodeOf(R"({"relations": "all"})", nullptr, &field), ErrorCode::kValidationFailed);
  EXPECT_EQ(field, "relations");
  EXPECT_EQ(CodeOf(R"({"cis": [], "cis": []})", nullptr, &field), ErrorCode::kValidationFailed);
  EXPECT_EQ(field, "cis");
  EXPECT_FALSE(CodeOf(R"({"cis": [], "relations": []})").has_value());
}

}  // namespace
}  // namespace cmdb::import
