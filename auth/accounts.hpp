#pragma once
// Issuing tokens and the accounts a server starts with: the pepper check, the first admin
// (CMDB_BOOTSTRAP_TOKEN or a random token), the demo users. Functions over a leased session;
// thread-safe as long as each call has its own session.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "model/access.hpp"
#include "store/db_pool.hpp"
#include "store/user_repository.hpp"

namespace cmdb::auth {

inline constexpr int kDefaultTokenDays = 90;

struct IssuedToken {
  model::ApiToken token;
  std::string text;  // shown once, never stored
};

// Issues a new token "cmdb_<id>_<secret>" for `user`. `roles` (nullopt: the user's) must be a
// subset of the user's roles (kValidationFailed naming "roles" otherwise).
IssuedToken IssueToken(store::DbSession& db, const std::string& pepper, const model::User& user,
                       const std::string& name, std::optional<model::RoleSet> roles,
                       std::optional<model::Timestamp> expires_at, const std::string& created_by);

// The stored grant of `token` (by its id, or by `digest` for a bootstrap token) when the
// stored hash equals `digest` (compared in constant time); nullopt otherwise.
std::optional<store::TokenGrant> FindMatchingGrant(store::UserRepository& users,
                                                   std::string_view token,
                                                   const store::TokenDigest& digest);
// Why `grant` does not authenticate at `now` (revoked, expired, user deactivated, no role
// left); "" when it does.
std::string Refusal(const store::TokenGrant& grant, model::Timestamp now);

// Records the pepper's fingerprint on first use and refuses (kUnavailable) a pepper that does
// not match it: an instance with another pepper could verify no token.
void CheckPepper(store::DbSession& db, const std::string& pepper);

struct BootstrapOutcome {
  bool created = false;            // user admin was created or re-activated as admin
  std::string token;               // its token (the bootstrap token or a random one), if created
  bool bootstrap_ignored = false;  // CMDB_BOOTSTRAP_TOKEN was set but an admin exists
};
// While no active admin exists: creates (or re-activates) user `admin` with role admin and a
// token that is `bootstrap_token` when given (checked: 32-128 of A-Za-z0-9_-), else random.
BootstrapOutcome Bootstrap(store::DbSession& db, const std::string& pepper,
                           const std::string& bootstrap_token);

// One demo user per role (and a second-line handler), each with a token; `keep` holds tokens
// from an earlier start (role -> token), kept when they still verify. Returns role -> token.
std::map<std::string, std::string> DemoAccounts(store::DbSession& db, const std::string& pepper,
                                                const std::map<std::string, std::string>& keep);

// Writes `text` to `path` readable by the owner only (0600), replacing it atomically.
void WriteSecretFile(const std::string& path, const std::string& text);

}  // namespace cmdb::auth
