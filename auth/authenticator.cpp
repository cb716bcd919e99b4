#include "auth/authenticator.hpp"

#include <algorithm>
#include <cmath>

#include "auth/token.hpp"
#include "model/error.hpp"
#include "model/log.hpp"
#include "store/db_pool.hpp"

namespace cmdb::auth {

using model::Error;
using model::ErrorCode;
using Clock = std::chrono::steady_clock;

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

Authenticator::Authenticator(store::DbPool& pool, std::string pepper, AuthenticatorOptions options)
    : pool_(pool), pepper_(std::move(pepper)), options_(options) {}

std::string_view Authenticator::BearerToken(std::string_view authorization) {
  if (authorization.empty()) {
    throw Error(ErrorCode::kUnauthenticated,
                "this endpoint needs a token: send the header 'Authorization: Bearer <token>'");
  }
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() + 1 ||
      !IEquals(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    throw Error(ErrorCode::kUnauthenticated,
                "the Authorization header must be 'Bearer <token>' (RFC 6750)");
  }
  std::string_view token = authorization.substr(kScheme.size() + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const bool well_formed =
      !token.empty() && token.size() <= 256 && std::all_of(token.begin(), token.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
      });
  if (!well_formed) {
    throw Error(ErrorCode::kUnauthenticated,
                "the bearer token is malformed: cmdb tokens look like cmdb_<id>_<secret>");
  }
  return token;
}

std::shared_ptr<const model::Principal> Authenticator::FromCache(
    const store::TokenDigest& key) const {
  std::shared_lock lock(cache_mutex_);
  auto it = cache_.find(key);
  if (it == cache_.end() || Clock::now() - it->second.verified >= options_.cache_ttl) return {};
  if (it->second.expires_at && *it->second.expires_at <= model::Timestamp::Now()) return {};
  return it->second.principal;
}

std::shared_ptr<const model::Principal> Authenticator::Cached(
    std::string_view authorization) const {
  try {
    return FromCache(KeyedHash(pepper_, BearerToken(authorization)));
  } catch (const Error&) {
    return {};
  }
}

std::shared_ptr<const model::Principal> Authenticator::Authenticate(std::string_view authorization,
                                                                    std::string_view client) {
  std::string_view token;
  try {
    token = BearerToken(authorization);
  } catch (const Error&) {
    if (!authorization.empty()) RecordFailure(client);
    throw;
  }
  const store::TokenDigest digest = KeyedHash(pepper_, token);
  if (auto principal = FromCache(digest)) return principal;
  if (std::chrono::seconds wait = Blocked(client); wait.count() > 0) {
    throw Error(ErrorCode::kTooManyRequests,
                "too many failed authentications from " + std::string(client) + "; retry later",
                wait);
  }
  std::optional<store::TokenGrant> grant;
  {
    store::DbSession session = pool_.Lease();
    store::UserRepository users(session);
    if (std::optional<std::int64_t> id = TokenId(token)) {
      grant = users.FindGrant(*id);
    } else {
      grant = users.FindGrantByDigest(digest);
    }
    // The stored hash is compared in constant time: nothing about it leaks through timing.
    if (grant && !SameDigest(grant->digest, digest)) grant.reset();
    if (grant && !grant->revoked_at && grant->user_active &&
        (!grant->last_used_at ||
         grant->last_used_at->micros < model::Timestamp::Now().micros - 60'000'000)) {
      users.TouchToken(grant->principal.token_id);
    }
  }
  const model::Timestamp now = model::Timestamp::Now();
  std::string why;
  if (!grant) {
    why = "the token is not valid";
  } else if (grant->revoked_at) {
    why = "the token was revoked at " + model::FormatTimestamp(*grant->revoked_at);
  } else if (grant->expires_at && *grant->expires_at <= now) {
    why = "the token expired at " + model::FormatTimestamp(*grant->expires_at);
  } else if (!grant->user_active) {
    why = "the token's user '" + grant->principal.user + "' is deactivated";
  } else if (grant->principal.roles.empty()) {
    why = "the token carries no role its user still holds";
  }
  if (!why.empty()) {
    {
      std::unique_lock lock(cache_mutex_);
      cache_.erase(digest);  // a stale verification of it must not outlive this answer
    }
    RecordFailure(client);
    throw Error(ErrorCode::kUnauthenticated, why);
  }
  auto principal = std::make_shared<const model::Principal>(std::move(grant->principal));
  {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() >= options_.max_cached) cache_.clear();
    cache_[digest] = Verified{principal, Clock::now(), grant->expires_at};
  }
  return principal;
}

void Authenticator::Forget() {
  std::unique_lock lock(cache_mutex_);
  cache_.clear();
}

std::chrono::seconds Authenticator::Blocked(std::string_view client) {
  std::lock_guard lock(buckets_mutex_);
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) return std::chrono::seconds{0};
  Bucket& b = it->second;
  const auto now = Clock::now();
  const double refill = std::chrono::duration<double>(options_.failure_refill).count();
  b.tokens =
      std::min<double>(options_.failure_burst,
                       b.tokens + std::chrono::duration<double>(now - b.updated).count() / refill);
  b.updated = now;
  if (b.tokens >= 1.0) return std::chrono::seconds{0};
  ++refusals_;
  return std::chrono::seconds{static_cast<long>(std::ceil((1.0 - b.tokens) * refill))};
}

void Authenticator::RecordFailure(std::string_view client) {
  std::lock_guard lock(buckets_mutex_);
  ++failures_;
  const auto now = Clock::now();
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_addresses) {
      // Forget the addresses that have recovered their whole burst: they are as if new.
      const double refill = std::chrono::duration<double>(options_.failure_refill).count();
      std::erase_if(buckets_, [&](const auto& entry) {
        return entry.second.tokens +
                   std::chrono::duration<double>(now - entry.second.updated).count() / refill >=
               options_.failure_burst;
      });
      if (buckets_.size() >= options_.max_addresses) buckets_.clear();
    }
    it = buckets_
             .emplace(std::string(client), Bucket{static_cast<double>(options_.failure_burst), now})
             .first;
  }
  Bucket& b = it->second;
  const double refill = std::chrono::duration<double>(options_.failure_refill).count();
  b.tokens =
      std::min<double>(options_.failure_burst,
                       b.tokens + std::chrono::duration<double>(now - b.updated).count() / refill);
  b.updated = now;
  b.tokens = std::max(0.0, b.tokens - 1.0);
  if (b.tokens < 1.0) {
    model::Log(model::LogLevel::kWarn,
               "authentication failures over the rate; refusing for a while",
               {{"client", std::string(client)}});
  }
}

std::uint64_t Authenticator::failures() const {
  std::lock_guard lock(buckets_mutex_);
  return failures_;
}

std::uint64_t Authenticator::refusals() const {
  std::lock_guard lock(buckets_mutex_);
  return refusals_;
}

}  // namespace cmdb::auth
