#pragma once
// API tokens as text and as the keyed hash the database keeps (OpenSSL: the random source,
// HMAC-SHA256 and the constant-time comparison). Pure functions; thread-safe.
//
// A token is "cmdb_<id>_<secret>": <id> finds the stored row, <secret> is 32 random bytes in
// base64url (43 characters). The database keeps HMAC-SHA256(pepper, whole token text) only;
// the pepper lives in the data folder or CMDB_TOKEN_PEPPER, never in the database.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/user_repository.hpp"

namespace cmdb::auth {

// `bytes` random bytes from OpenSSL's CSPRNG, base64url without padding.
std::string RandomText(std::size_t bytes);

// "cmdb_<id>_<secret>" with a fresh secret.
std::string NewTokenText(std::int64_t id);
// The id of a "cmdb_<id>_<secret>" token; nullopt for any other text (a bootstrap token).
std::optional<std::int64_t> TokenId(std::string_view token);
// "cmdb_<id>_": what lists show of a token.
std::string TokenPrefix(std::int64_t id);

// Whether `token` may be used as CMDB_BOOTSTRAP_TOKEN: 32 to 128 of A-Za-z0-9_-, and not
// shaped like an issued cmdb_<id>_<secret> token.
bool IsValidBootstrapToken(std::string_view token);

// HMAC-SHA256(pepper, token).
store::TokenDigest KeyedHash(std::string_view pepper, std::string_view token);
// Compares two digests in constant time.
bool SameDigest(const store::TokenDigest& a, const store::TokenDigest& b);

// The web UI's anti-forgery token of a session: HMAC-SHA256(pepper, "csrf:" + token) in hex.
// A page of another site cannot know it (the session cookie is HttpOnly and not sent to it),
// and it changes with the token.
std::string CsrfToken(std::string_view pepper, std::string_view session_token);
// Whether `given` is the anti-forgery token of `session_token`, compared in constant time.
bool CsrfTokenMatches(std::string_view pepper, std::string_view session_token,
                      std::string_view given);

// The pepper: `configured` (CMDB_TOKEN_PEPPER) when set, else <data_dir>/token-pepper, created
// with 32 random bytes (mode 0600) when missing. Throws model::Error naming the file.
std::string LoadPepper(const std::string& configured, const std::string& data_dir);

// The pepper as LoadPepper finds it, without creating one: "" when there is none.
std::string ReadPepper(const std::string& configured, const std::string& data_dir);

// Makes `pepper` (a restored backup's) the one LoadPepper finds: writes <data_dir>/token-pepper
// when there is none. Throws Error{kFailedPrecondition} when `configured` (CMDB_TOKEN_PEPPER) or
// the file holds another.
void InstallPepper(const std::string& configured, const std::string& data_dir,
                   const std::string& pepper);

}  // namespace cmdb::auth
