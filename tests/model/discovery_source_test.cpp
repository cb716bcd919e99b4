#include "model/discovery_source.hpp"

#include <set>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

namespace json = boost::json;

TEST(SourceConfigParsing, NamesEveryBadField) {
  FieldErrors errors;
  ParseSourceConfig(
      json::parse(R"({"ci_type": "Bad Type", "on_unmatched": "merge", "mapping": {"a": 3},
      "stale_after_runs": 0, "junk_values": [1], "fill_missing": "yes", "path": "relative", "x": 1})"),
      SourceKind::kAgent, errors);
  std::set<std::string> fields;
  for (const auto& e : errors.items()) fields.insert(e.field);
  EXPECT_EQ(fields,
            (std::set<std::string>{"config.ci_type", "config.on_unmatched", "config.mapping.a",
                                   "config.stale_after_runs", "config.junk_values",
                                   "config.fill_missing", "config.path", "config.x"}));
  FieldErrors none;
  SourceConfig nmap = ParseSourceConfig(json::value(nullptr), SourceKind::kNmapXml, none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(nmap.stale_after_runs, 3);
  EXPECT_EQ(nmap.ci_type, "server");
}

}  // namespace
}  // namespace cmdb::model
