#include "auth/token.hpp"

#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace cmdb::auth {
namespace {

TEST(TokenText, NewTokensCarryTheirIdAnd32RandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string token = NewTokenText(42);
    ASSERT_EQ(token.rfind("cmdb_42_", 0), 0U) << token;
    EXPECT_EQ(token.size(), std::string("cmdb_42_").size() + 43);  // base64url of 32 bytes
    EXPECT_EQ(TokenId(token), 42);
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 200U);
  EXPECT_EQ(TokenPrefix(7), "cmdb_7_");
}

TEST(TokenText, AnythingElseHasNoId) {
  const std::string secret(43, 'a');
  for (const std::string& bad : std::vector<std::string>{
           std::string(""), "cmdb_", "cmdb__" + secret, "cmdb_x_" + secret, "cmdb_0_" + secret,
           "cmdb_12" + secret, "cmdb_12_short", "cmdb_12_" + secret + "!", "CMDB_12_" + secret,
           "cmdb_1234567890123456789_" + secret, "cmdb_12_" + std::string(200, 'a')}) {
    EXPECT_FALSE(TokenId(bad).has_value()) << bad;
  }
  EXPECT_EQ(TokenId("cmdb_12_" + secret + "_-"), 12);  // base64url uses _ and -
}

TEST(TokenText, BootstrapTokensAre32To128SafeCharacters) {
  EXPECT_TRUE(IsValidBootstrapToken(std::string(32, 'A')));
  EXPECT_TRUE(IsValidBootstrapToken(std::string(128, '_')));
  EXPECT_FALSE(IsValidBootstrapToken(std::string(31, 'A')));
  EXPECT_FALSE(IsValidBootstrapToken(std::string(129, 'A')));
  EXPECT_FALSE(IsValidBootstrapToken(std::string(40, 'A') + " "));
  EXPECT_FALSE(IsValidBootstrapToken(std::string(40, 'A') + "\xc3\xa9"));
  EXPECT_FALSE(IsValidBootstrapToken("cmdb_7_" + std::string(43, 'A')));  // an issued token's shape
}

TEST(TokenHash, IsHmacSha256UnderThePepper) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  const store::TokenDigest digest = KeyedHash("Jefe", "what do ya want for nothing?");
  const unsigned char expected[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                      0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                      0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                      0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(), expected));
  EXPECT_TRUE(SameDigest(digest, KeyedHash("Jefe", "what do ya want for nothing?")));
  EXPECT_FALSE(SameDigest(digest, KeyedHash("Jeff", "what do ya want for nothing?")));
}

}  // namespace
}  // namespace cmdb::auth
