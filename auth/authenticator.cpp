#include "auth/authenticator.hpp"

#include <algorithm>
#include <cmath>

#include <openssl/crypto.h>

#include "auth/accounts.hpp"
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

std::shared_ptr<const model::Principal> Authenticator::FromCache(std::string_view token) const {
  // A cmdb_<id>_ token is looked up by its id and compared whole, in constant time, with the
  // text verified: no HMAC on the I/O thread. Any other (a bootstrap token) by its keyed hash.
  const std::optional<std::int64_t> id = TokenId(token);
  std::optional<store::TokenDigest> digest;
  if (!id) digest = KeyedHash(pepper_, token);
  std::shared_lock lock(cache_mutex_);
  const Verified* v = nullptr;
  if (id) {
    auto it = by_id_.find(*id);
    if (it == by_id_.end() || it->second.token.size() != token.size() ||
        CRYPTO_memcmp(it->second.token.data(), token.data(), token.size()) != 0) {
      return {};
    }
    v = &it->second;
  } else {
    auto it = by_digest_.find(*digest);
    if (it == by_digest_.end()) return {};
    v = &it->second;
  }
  if (Clock::now() - v->verified >= options_.cache_ttl) return {};
  if (v->expires_at && *v->expires_at <= model::Timestamp::Now()) return {};
  return v->principal;
}

std::shared_ptr<const model::Principal> Authenticator::Cached(
    std::string_view authorization) const {
  try {
    return FromCache(BearerToken(authorization));
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
  if (auto principal = FromCache(token)) return principal;
  if (std::chrono::seconds wait = Blocked(client); wait.count() > 0) {
    throw Error(ErrorCode::kTooManyRequests,
                "too many failed authentications from " + std::string(client) + "; retry later",
                wait);
  }
  const store::TokenDigest digest = KeyedHash(pepper_, token);
  const std::optional<std::int64_t> id = TokenId(token);
  const model::Timestamp now = model::Timestamp::Now();
  std::optional<store::TokenGrant> grant;
  std::string why = "the token is not valid";
  {
    store::DbSession session = pool_.Lease();
    store::UserRepository users(session);
    grant = FindMatchingGrant(users, token, digest);
    if (grant) why = Refusal(*grant, now);
    if (why.empty() &&
        (!grant->last_used_at || grant->last_used_at->micros < now.micros - 60'000'000)) {
      users.TouchToken(grant->principal.token_id);
    }
  }
  if (!why.empty()) {
    if (grant) {
      // This very token is no longer good: its stale verification must not outlive this answer.
      // (A wrong secret for a valid id leaves that id's verified entry alone.)
      std::unique_lock lock(cache_mutex_);
      if (id) {
        by_id_.erase(*id);
      } else {
        by_digest_.erase(digest);
      }
    }
    RecordFailure(client);
    throw Error(ErrorCode::kUnauthenticated, why);
  }
  auto principal = std::make_shared<const model::Principal>(std::move(grant->principal));
  {
    std::unique_lock lock(cache_mutex_);
    if (by_id_.size() + by_digest_.size() >= options_.max_cached) {
      by_id_.clear();
      by_digest_.clear();
    }
    Verified entry{principal, Clock::now(), grant->expires_at, ""};
    if (id) {
      entry.token = std::string(token);
      by_id_[*id] = std::move(entry);
    } else {
      by_digest_[digest] = std::move(entry);
    }
  }
  return principal;
}

void Authenticator::Forget() {
  std::unique_lock lock(cache_mutex_);
  by_id_.clear();
  by_digest_.clear();
}

double Authenticator::Available(const Bucket& b, Clock::time_point now) const {
  const double refill = std::chrono::duration<double>(options_.failure_refill).count();
  return std::min<double>(
      options_.failure_burst,
      b.tokens + std::chrono::duration<double>(now - b.updated).count() / refill);
}

std::chrono::seconds Authenticator::Blocked(std::string_view client) {
  std::lock_guard lock(buckets_mutex_);
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) return std::chrono::seconds{0};
  const double available = Available(it->second, Clock::now());
  if (available >= 1.0) return std::chrono::seconds{0};
  ++refusals_;
  const double refill = std::chrono::duration<double>(options_.failure_refill).count();
  return std::chrono::seconds{static_cast<long>(std::ceil((1.0 - available) * refill))};
}

void Authenticator::RecordFailure(std::string_view client) {
  std::lock_guard lock(buckets_mutex_);
  ++failures_;
  const auto now = Clock::now();
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_addresses) {
      // Forget the addresses that have recovered their whole burst: they are as if new.
      std::erase_if(buckets_, [&](const auto& entry) {
        return Available(entry.second, now) >= options_.failure_burst;
      });
      if (buckets_.size() >= options_.max_addresses) buckets_.clear();
    }
    it = buckets_
             .emplace(std::string(client), Bucket{static_cast<double>(options_.failure_burst), now})
             .first;
  }
  Bucket& b = it->second;
  const double available = Available(b, now);
  b.tokens = std::max(0.0, available - 1.0);
  b.updated = now;
  if (available >= 1.0 && b.tokens < 1.0) {  // once as the address crosses its rate
    model::Log(model::LogLevel::kWarn,
               "authentication failures over the rate; refusing the address for a while",
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
