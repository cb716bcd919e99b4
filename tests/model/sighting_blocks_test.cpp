#include "model/sighting_blocks.hpp"

#include <algorithm>
#include <stdexcept>

#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

TEST(Sightings, BitsTextIsPostgresBitStringOrder) {
  SightingBits bits;
  bits.set(0);
  bits.set(1023);
  const std::string text = BitsText(bits);
  ASSERT_EQ(text.size(), 1024U);
  EXPECT_EQ(text.front(), '1');  // get_bit(bits, 0): the leftmost bit
  EXPECT_EQ(text.back(), '1');
  EXPECT_EQ(std::count(text.begin(), text.end(), '1'), 2);
  EXPECT_EQ(ParseBits(text), bits);
  EXPECT_THROW(ParseBits(text.substr(1)), std::invalid_argument);
  std::string bad = text;
  bad[5] = 'x';
  EXPECT_THROW(ParseBits(bad), std::invalid_argument);
}

}  // namespace
}  // namespace cmdb::model
