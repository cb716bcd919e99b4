#include "model/ci_type.hpp"

#include <gtest/gtest.h>

#include "model/json.hpp"

namespace cmdb::model {
namespace {

CiType Linux() {
  return ParseCiType(ParseJson(R"({
    "name": "linux_host", "description": "A Linux host",
    "attributes": {
      "hostname": {"type": "string", "required": true, "pattern": "^[a-z0-9-]+$", "max_length": 63},
      "serial":   {"type": "string"},
      "ip":       {"type": "ip"},
      "memory_mb":{"type": "integer", "min": 0, "max": 4194304},
      "load":     {"type": "number", "min": 0},
      "managed":  {"type": "boolean"},
      "born":     {"type": "date"},
      "seen":     {"type": "datetime"},
      "env":      {"type": "enum", "values": ["prod", "staging", "dev"]},
      "extra":    {"type": "json"},
      "ports":    {"type": "integer", "list": true, "min": 1, "max": 65535},
      "domain":   {"type": "string"}},
    "identify_by": [["serial"], ["hostname", "domain"], ["ip"]]})"));
}

std::vector<FieldError> Validate(const CiType& type, std::string_view attrs) {
  FieldErrors errors;
  ValidateAttributes(type, ParseJson(attrs).as_object(), errors);
  return errors.Take();
}

TEST(CiType, ParsesEveryAttributeTypeAndIdentifierSets) {
  CiType t = Linux();
  EXPECT_EQ(t.attributes.size(), 12U);
  EXPECT_EQ(t.identify_by.size(), 3U);
  EXPECT_EQ(t.attributes.at("ports").list, true);
  // The JSON form reads back into the same definition.
  CiType again = ParseCiType(CiTypeToJson(t));
  EXPECT_EQ(CiTypeToJson(again).at("attributes"), CiTypeToJson(t).at("attributes"));
}

TEST(CiType, ReportsEveryBadFieldOfADefinitionAtOnce) {
  try {
    ParseCiType(ParseJson(R"({"name": "Bad Name", "colour": 1,
      "attributes": {"a": {"type": "strin"}, "b": {"type": "enum"}, "c": {"type": "integer", "min": 5, "max": 1},
                     "d": {"type": "string", "pattern": "(unclosed"}, "name": {"type": "string"},
                     "e": {"type": "boolean", "min": 1}, "9x": {"type": "string"}},
      "identify_by": [["nope"], []]})"));
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kValidationFailed);
    std::set<std::string> fields;
    for (const auto& f : e.field_errors()) fields.insert(f.field);
    for (const char* expected :
         {"name", "colour", "attributes.a.type", "attributes.b.values", "attributes.c.min",
          "attributes.d.pattern", "attributes.name", "attributes.e.min", "attributes.9x",
          "identify_by[0]", "identify_by[1]"}) {
      EXPECT_TRUE(fields.contains(expected)) << expected;
    }
  }
}

TEST(CiType, AcceptsValidAttributes) {
  EXPECT_TRUE(Validate(Linux(), R"({"hostname": "db-01", "ip": "2001:db8::1", "memory_mb": 65536,
      "load": 0.5, "managed": true, "born": "2024-02-29", "seen": "2026-01-01T10:00:00+02:00",
      "env": "prod", "extra": {"any": [1, {"x": null}]}, "ports": [22, 443]})")
                  .empty());
}

TEST(CiType, RejectsWrongTypesRangesAndUnknownAttributes) {
  auto errors = Validate(Linux(), R"({"hostname": "DB_01", "ip": "10.0.0.300", "memory_mb": 1.5,
      "load": -1, "managed": "yes", "born": "2023-02-29", "seen": "2026-01-01", "env": "qa",
      "ports": [22, 70000], "colour": "red"})");
  std::map<std::string, std::string> by_field;
  for (const auto& e : errors) by_field[e.field] = e.message;
  EXPECT_NE(by_field["attributes.hostname"].find("pattern"), std::string::npos);
  EXPECT_TRUE(by_field.contains("attributes.ip"));
  EXPECT_NE(by_field["attributes.memory_mb"].find("integer"), std::string::npos);
  EXPECT_NE(by_field["attributes.load"].find("at least 0"), std::string::npos);
  EXPECT_TRUE(by_field.contains("attributes.managed"));
  EXPECT_TRUE(by_field.contains("attributes.born"));
  EXPECT_TRUE(by_field.contains("attributes.seen"));
  EXPECT_NE(by_field["attributes.env"].find("prod, staging, dev"), std::string::npos);
  EXPECT_TRUE(by_field.contains("attributes.ports[1]"));
  EXPECT_NE(by_field["attributes.colour"].find("not an attribute"), std::string::npos);
  EXPECT_EQ(errors.size(), 10U);
}

TEST(CiType, ReportsMissingRequiredAttributes) {
  auto errors = Validate(Linux(), R"({"serial": "X"})");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "attributes.hostname");
  EXPECT_NE(errors[0].message.find("required"), std::string::npos);
}

TEST(CiType, IntegerBoundsAndOverflow) {
  auto errors = Validate(Linux(), R"({"hostname": "a", "memory_mb": 18446744073709551615})");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "attributes.memory_mb");
}

TEST(CiType, PatternsUseLinearTimeMatching) {
  // (a+)+$ backtracks exponentially in backtracking engines; RE2 answers at once.
  CiType t = ParseCiType(
      ParseJson(R"({"name": "t", "attributes": {"s": {"type": "string", "pattern": "^(a+)+$"}}})"));
  std::string hostile(5000, 'a');
  hostile += "!";
  EXPECT_EQ(Validate(t, "{\"s\": \"" + hostile + "\"}").size(), 1U);
}

TEST(CiType, ConvertsCsvCells) {
  CiType t = Linux();
  std::string message;
  EXPECT_EQ(*AttributeFromText(t.attributes.at("memory_mb"), "512", message), json::value(512));
  EXPECT_EQ(*AttributeFromText(t.attributes.at("managed"), "true", message), json::value(true));
  EXPECT_EQ(*AttributeFromText(t.attributes.at("ports"), "22; 80;443", message),
            ParseJson("[22, 80, 443]"));
  EXPECT_EQ(*AttributeFromText(t.attributes.at("hostname"), "123", message), json::value("123"));
  EXPECT_FALSE(AttributeFromText(t.attributes.at("memory_mb"), "lots", message));
  EXPECT_NE(message.find("not a number"), std::string::npos);
}

TEST(CiType, FindsNulCharactersAnywhereInAValue) {
  EXPECT_FALSE(ContainsNul(ParseJson(R"({"a": ["b", {"c": "d"}]})")));
  EXPECT_TRUE(ContainsNul(ParseJson(R"({"a": ["b", {"c": "d\u0000"}]})")));
  EXPECT_TRUE(ContainsNul(ParseJson(R"({"a\u0000": 1})")));
  EXPECT_TRUE(ContainsNul(ParseJson(R"("\u0000")")));
}

TEST(CiType, IdentifiersAreLowercaseAndBounded) {
  EXPECT_TRUE(IsValidIdentifier("linux_host2"));
  EXPECT_FALSE(IsValidIdentifier("Linux"));
  EXPECT_FALSE(IsValidIdentifier("2x"));
  EXPECT_FALSE(IsValidIdentifier(""));
  EXPECT_FALSE(IsValidIdentifier(std::string(64, 'a')));
  EXPECT_FALSE(IsValidIdentifier("a-b"));
}

}  // namespace
}  // namespace cmdb::model
