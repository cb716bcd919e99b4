#pragma once
// Users, their API tokens (as keyed hashes) and the server's settings in PostgreSQL. A
// repository borrows one leased session; not thread-safe.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/access.hpp"
#include "model/history.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

using TokenDigest = std::array<unsigned char, 32>;
// A digest as 64 lowercase hex digits.
std::string DigestHex(const TokenDigest& digest);

// What authenticating a token needs: its stored hash and everything the principal is made of.
struct TokenGrant {
  TokenDigest digest{};
  model::Principal principal;  // roles: the token's, intersected with the user's
  bool user_active = false;
  std::optional<model::Timestamp> expires_at;
  std::optional<model::Timestamp> revoked_at;
  std::optional<model::Timestamp> last_used_at;
};

// A token to store: the caller made its text and hash (store/ does no cryptography).
struct TokenDraft {
  std::int64_t id = 0;  // from ReserveTokenId
  std::int64_t user_id = 0;
  std::string name;
  std::optional<model::RoleSet> roles;
  std::optional<model::Timestamp> expires_at;
  TokenDigest digest{};
  std::string prefix;
};

class UserRepository {
 public:
  explicit UserRepository(DbSession& db) : db_(db) {}

  // kAlreadyExists for a taken name; kFailedPrecondition for a missing source.
  model::User Create(const model::User& user);
  std::optional<model::User> Find(const std::string& name);
  std::vector<model::User> List(std::int64_t after, int limit);  // up to limit + 1, id order
  // Stores `user` (name and id unchanged) when its stored version is `if_match` (if given),
  // locking the row. `change` gets the stored user and changes it. Deactivating revokes
  // nothing by itself: a token of an inactive user is refused at every use.
  model::User Update(const std::string& name, std::optional<std::int64_t> if_match,
                     const std::function<void(model::User&)>& change);
  // Takes the transaction-scoped lock that serialises bootstraps of instances starting at once.
  void LockBootstrap();
  // Whether an active user holds the admin role.
  bool AnyActiveAdmin();
  bool AnyActiveAdminOtherThan(std::int64_t user_id);

  std::int64_t ReserveTokenId();
  model::ApiToken InsertToken(const TokenDraft& draft, const std::string& created_by);
  std::vector<model::ApiToken> ListTokens(std::int64_t user_id);  // newest first, at most 1000
  std::optional<model::ApiToken> FindToken(std::int64_t id);
  // Sets revoked_at once; false when the token does not exist.
  bool RevokeToken(std::int64_t id);
  // Revokes every live token of the user; returns how many.
  int RevokeTokensOf(std::int64_t user_id);
  std::optional<TokenGrant> FindGrant(std::int64_t token_id);
  std::optional<TokenGrant> FindGrantByDigest(const TokenDigest& digest);
  // Records a use now unless one was recorded within the last minute.
  void TouchToken(std::int64_t token_id);

  std::optional<std::string> Setting(const std::string& key);
  // Stores `value` unless the key is set; returns the stored value.
  std::string SettingOrInsert(const std::string& key, const std::string& value);

 private:
  // The grant of the token row that `condition` ($1 bound to `value`) selects.
  std::optional<TokenGrant> FindGrantWhere(const char* condition, const std::string& value);

  DbSession& db_;
};

}  // namespace cmdb::store
