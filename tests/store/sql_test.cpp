#include "store/sql.hpp"

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

TEST(IdsFromArrayText, RefusesAnythingElse) {
  for (const char* bad : {"", "{", "}", "[1,2]", "{1,}", "{,1}", "{1,,2}", "{1 ,2}", "{a}", "{1}x",
                          "{99999999999999999999}", "{NULL}"}) {
    EXPECT_THROW(IdsFromArrayText(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace cmdb::store::sql
