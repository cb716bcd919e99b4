#include "store/sql.hpp"

#include <limits>

#include <gtest/gtest.h>

#include "model/error.hpp"

namespace cmdb::store::sql {
namespace {

using model::Error;

TEST(IdsFromArrayText, ReadsWhatPostgresqlWritesForABigintArray) {
  EXPECT_EQ(IdsFromArrayText("{}"), std::vector<std::int64_t>{});
  EXPECT_EQ(IdsFromArrayText("{42}"), std::vector<std::int64_t>{42});
  EXPECT_EQ(IdsFromArrayText("{1,-2,9223372036854775807}"),
            (std::vector<std::int64_t>{1, -2, 9223372036854775807}));
  // The inverse of the literal the repositories send.
  const std::vector<std::int64_t> ids{7, 100000, 3};
  EXPECT_EQ(IdsFromArrayText(IdArray(ids)), ids);
}

TEST(IdRuns, CoversExactlyTheIdsWithConsecutiveRuns) {
  IdRuns one = ToIdRuns({5, 3, 4, 6});
  EXPECT_EQ(one.first, "{3}");
  EXPECT_EQ(one.last, "{6}");
  EXPECT_EQ(one.runs, 1U);
  // Gaps (ids another session drew in between) start new runs; duplicates do not.
  IdRuns gaps = ToIdRuns({1, 2, 3, 4, 7, 7, 9, 10, -1});
  EXPECT_EQ(gaps.first, "{-1,1,7,9}");
  EXPECT_EQ(gaps.last, "{-1,4,7,10}");
  EXPECT_EQ(gaps.runs, 4U);
  IdRuns none = ToIdRuns({});
  EXPECT_EQ(none.first, "{}");
  EXPECT_EQ(none.runs, 0U);
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(ToIdRuns({max, max - 1}).last, "{" + std::to_string(max) + "}");
}

TEST(IdsFromArrayText, RefusesAnythingElse) {
  for (const char* bad : {"", "{", "}", "[1,2]", "{1,}", "{,1}", "{1,,2}", "{1 ,2}", "{a}", "{1}x",
                          "{99999999999999999999}", "{NULL}"}) {
    EXPECT_THROW(IdsFromArrayText(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace cmdb::store::sql
