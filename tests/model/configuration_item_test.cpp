#include "model/configuration_item.hpp"

#include <vector>

#include <gtest/gtest.h>

#include "model/json.hpp"

namespace cmdb::model {
namespace {

ConfigurationItem Parse(std::string_view text, FieldErrors& errors,
                        ReadOnlyFields ro = ReadOnlyFields::kReject) {
  return CiFromJson(ParseJson(text), errors, ro);
}

TEST(ConfigurationItem, ReadsAllWritableFields) {
  FieldErrors errors;
  ConfigurationItem ci = Parse(R"({"type": "server", "name": "db-01", "status": "maintenance",
      "owner": "dba", "tags": ["prod", "db", "prod"], "attributes": {"ip": "10.0.0.5", "x": null},
      "redundancy": {"min_healthy": 2}})",
                               errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(ci.status, "maintenance");
  EXPECT_EQ(ci.tags, (std::vector<std::string>{"prod", "db"}));
  EXPECT_EQ(ci.attributes.size(), 1U);  // null means absent
  EXPECT_EQ(ci.min_healthy, 2);
}

TEST(ConfigurationItem, NamesEveryBadField) {
  FieldErrors errors;
  Parse(R"({"name": "", "status": "broken", "owner": 5, "tags": "prod", "attributes": [],
      "redundancy": {"min_healthy": 0}, "id": 7, "colour": "red"})",
        errors);
  std::set<std::string> fields;
  for (const auto& e : errors.items()) fields.insert(e.field);
  EXPECT_EQ(fields, (std::set<std::string>{"type", "name", "status", "owner", "tags", "attributes",
                                           "redundancy.min_healthy", "id", "colour"}));
}

TEST(ConfigurationItem, RejectsControlCharactersButKeepsAnyScript) {
  FieldErrors errors;
  ConfigurationItem ci = Parse(R"({"type": "server", "name": "сервер <\"db\"> 日本"})", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(ci.name, "сервер <\"db\"> 日本");
  FieldErrors bad;
  Parse(R"({"type": "server", "name": "a\u0000b"})", bad);
  ASSERT_EQ(bad.size(), 1U);
  EXPECT_EQ(bad.items()[0].field, "name");
}

TEST(ConfigurationItem, ImportIgnoresServerFields) {
  FieldErrors errors;
  Parse(R"({"type": "server", "name": "a", "id": 5, "version": 3, "created_at": "x"})", errors,
        ReadOnlyFields::kIgnore);
  EXPECT_TRUE(errors.empty());
}

ConfigurationItem Base() {
  FieldErrors errors;
  ConfigurationItem ci = Parse(R"({"type": "server", "name": "db-01", "owner": "dba",
      "tags": ["prod"], "attributes": {"memory_mb": 32768, "os": "Debian 12"}})",
                               errors);
  ci.id = 4;
  ci.version = 2;
  return ci;
}

// The re-import shortcut answers "nothing changes" only when the full merge agrees.
TEST(ConfigurationItem, MergeChangesNothingOnlyWhenTheMergeChangesNothing) {
  ConfigurationItem current = Base();
  current.min_healthy = 2;
  current.attributes["disks"] = ParseJson(R"([{"size": 100}])");
  current.attributes["labels"] = ParseJson(R"({"rack": "A1"})");
  struct Case {
    const char* patch;
    bool shortcut;  // what MergeChangesNothing must answer
  };
  const std::vector<Case> cases = {
      {R"({})", true},
      {R"({"type": "server", "id": 4, "version": 9, "name": "db-01"})", true},
      {R"({"name": "db-01", "status": "active", "owner": "dba", "tags": ["prod"],
           "attributes": {"memory_mb": 32768, "disks": [{"size": 100}], "gone": null},
           "redundancy": {"min_healthy": 2}})",
       true},
      {R"({"name": "db-02"})", false},
      {R"({"status": "retired"})", false},
      {R"({"owner": null})", false},
      {R"({"owner": "ops"})", false},
      {R"({"tags": []})", false},
      {R"({"tags": ["prod", "prod"]})", false},  // same after normalisation: left to the merge
      {R"({"tags": null})", false},
      {R"({"attributes": {"memory_mb": 65536}})", false},
      {R"({"attributes": {"memory_mb": 32768.0}})", false},
      {R"({"attributes": {"os": null}})", false},
      {R"({"attributes": {"cpu_count": 4}})", false},
      {R"({"attributes": {"labels": {"rack": "A1"}}})", false},  // objects merge: not decided here
      {R"({"attributes": null})", false},
      {R"({"redundancy": null})", false},
      {R"({"redundancy": {"min_healthy": 3}})", false},
      {R"({"owner": ""})", false},
  };
  for (const Case& c : cases) {
    const json::value patch = ParseJson(c.patch);
    EXPECT_EQ(MergeChangesNothing(current, patch.get_object()), c.shortcut) << c.patch;
    // Soundness: whenever the shortcut says so, the merge and diff find nothing either.
    FieldErrors errors;
    ConfigurationItem merged =
        CiFromJson(MergePatch(WritableCiJson(current), patch), errors, ReadOnlyFields::kIgnore);
    if (c.shortcut) {
      EXPECT_TRUE(errors.empty()) << c.patch;
      EXPECT_TRUE(DiffCis(&current, &merged).empty()) << c.patch;
    }
  }
}

TEST(ConfigurationItem, MergePatchChangesOnlyWhatItNames) {
  FieldErrors errors;
  ConfigurationItem next = ApplyCiPatch(
      Base(), ParseJson(R"({"attributes": {"memory_mb": 65536, "os": null}, "owner": null})"),
      errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(next.id, 4);
  EXPECT_EQ(next.version, 2);
  EXPECT_EQ(next.name, "db-01");
  EXPECT_FALSE(next.owner);
  EXPECT_EQ(next.attributes, ParseJson(R"({"memory_mb": 65536})").as_object());
}

TEST(ConfigurationItem, MergePatchCannotChangeTypeOrServerFields) {
  FieldErrors errors;
  ApplyCiPatch(Base(), ParseJson(R"({"type": "vm", "version": 9})"), errors);
  std::set<std::string> fields;
  for (const auto& e : errors.items()) fields.insert(e.field);
  EXPECT_EQ(fields, (std::set<std::string>{"type", "version"}));
  FieldErrors same_type;
  ApplyCiPatch(Base(), ParseJson(R"({"type": "server"})"), same_type);
  EXPECT_TRUE(same_type.empty());
}

TEST(ConfigurationItem, DiffListsOldAndNewValuesPerField) {
  ConfigurationItem before = Base();
  FieldErrors errors;
  ConfigurationItem after = ApplyCiPatch(
      before, ParseJson(R"({"status": "retired", "attributes": {"memory_mb": 65536, "os": null,
                            "cpu_count": 8}})"),
      errors);
  json::object diff = DiffCis(&before, &after);
  EXPECT_EQ(json::value(diff), ParseJson(R"({
      "status": {"old": "active", "new": "retired"},
      "memory_mb": {"old": 32768, "new": 65536},
      "os": {"old": "Debian 12", "new": null},
      "cpu_count": {"old": null, "new": 8}})"));
  EXPECT_TRUE(DiffCis(&before, &before).empty());
  json::object created = DiffCis(nullptr, &before);
  EXPECT_EQ(created.at("name"), ParseJson(R"({"old": null, "new": "db-01"})"));
  json::object deleted = DiffCis(&before, nullptr);
  EXPECT_EQ(deleted.at("memory_mb"), ParseJson(R"({"old": 32768, "new": null})"));
}

}  // namespace
}  // namespace cmdb::model
