#pragma once
// Who is calling: turns a request's Authorization header into the principal it acts as.
// A verified token is kept in memory for a second, and a request presenting it again is
// compared with it whole, in constant time, without a database query or an HMAC: revocation,
// expiry and a deactivated user take effect on every instance within that second. Failed
// attempts are counted per client address, and an address over its rate is refused (429)
// before any database work, while tokens already verified keep working. Thread-safe.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "model/access.hpp"
#include "store/user_repository.hpp"

namespace cmdb::store {
class DbPool;
}

namespace cmdb::auth {

struct AuthenticatorOptions {
  std::chrono::milliseconds cache_ttl{1000};
  // Failed attempts from one address: `failure_burst` at once, then one per `failure_refill`.
  int failure_burst = 20;
  std::chrono::milliseconds failure_refill{3000};
  std::size_t max_addresses = 10000;  // addresses tracked; the quietest are dropped beyond
  std::size_t max_cached = 100000;    // verified tokens kept
};

// What the router asks (an interface, so that the router's tests need no database).
class Verifier {
 public:
  virtual ~Verifier() = default;
  // The principal of `authorization` (the header's value) when a verification of it is still
  // fresh; nullptr when the database must be asked. Never blocks on the database.
  virtual std::shared_ptr<const model::Principal> Cached(std::string_view authorization) const = 0;
  // The principal of `authorization`, asking the database when the cache cannot answer.
  // Throws model::Error: kUnauthenticated for a missing, malformed, unknown, expired or
  // revoked token or a deactivated user; kTooManyRequests (with Retry-After) when `client`
  // failed too often.
  virtual std::shared_ptr<const model::Principal> Authenticate(std::string_view authorization,
                                                               std::string_view client) = 0;
  // Drops the cached verification of every token (a revocation on this instance takes effect
  // at once here; other instances drop theirs within the cache's lifetime).
  virtual void Forget() = 0;
};

class Authenticator : public Verifier {
 public:
  Authenticator(store::DbPool& pool, std::string pepper, AuthenticatorOptions options = {});

  std::shared_ptr<const model::Principal> Cached(std::string_view authorization) const override;
  std::shared_ptr<const model::Principal> Authenticate(std::string_view authorization,
                                                       std::string_view client) override;
  void Forget() override;

  std::uint64_t failures() const;
  std::uint64_t refusals() const;

 private:
  struct Verified {
    std::shared_ptr<const model::Principal> principal;
    std::chrono::steady_clock::time_point verified;
    std::optional<model::Timestamp> expires_at;
    std::string token;  // the text verified, for a cmdb_<id>_ token (compared in constant time)
  };
  // The cached principal of `token` when verified within cache_ttl and not expired.
  std::shared_ptr<const model::Principal> FromCache(std::string_view token) const;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };

  // A digest's first bytes: HMAC output under a key no client knows, so clients cannot aim
  // tokens at one bucket.
  struct DigestHash {
    std::size_t operator()(const store::TokenDigest& d) const {
      std::size_t h = 0;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };

  // The token text of a "Bearer <token>" header; throws kUnauthenticated.
  static std::string_view BearerToken(std::string_view authorization);
  // The failures `b` allows at `now`, refilled since it was last updated.
  double Available(const Bucket& b, std::chrono::steady_clock::time_point now) const;
  // Seconds until `client` may fail again; 0 when it may now.
  std::chrono::seconds Blocked(std::string_view client);
  void RecordFailure(std::string_view client);

  store::DbPool& pool_;
  const std::string pepper_;
  const AuthenticatorOptions options_;

  mutable std::shared_mutex cache_mutex_;
  std::unordered_map<std::int64_t, Verified> by_id_;  // cmdb_<id>_<secret> tokens, by id
  std::unordered_map<store::TokenDigest, Verified, DigestHash> by_digest_;  // others, by hash

  mutable std::mutex buckets_mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // by client address
  std::uint64_t failures_ = 0;
  std::uint64_t refusals_ = 0;
};

}  // namespace cmdb::auth
