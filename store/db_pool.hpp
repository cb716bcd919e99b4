#pragma once
// PostgreSQL connections. DbPool is a fixed set of connections shared by request workers;
// DbSession is one connection borrowed from it (or opened on its own, for tools and tests),
// the handle every repository takes. Each connection keeps the statements prepared on it,
// which go when it is reopened. DbPool is thread-safe; a DbSession is used by one thread at a
// time and must not outlive its pool.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace soci {
class session;
class connection_pool;
}  // namespace soci

namespace cmdb::store {

class DbPool;
class ConnectionState;

class DbSession {
 public:
  // Opens a connection of its own to `connection_string` (libpq keyword/value or URI form).
  // Throws Error{kUnavailable} when the database cannot be reached.
  static DbSession Connect(const std::string& connection_string);

  DbSession(DbSession&& other) noexcept;
  DbSession& operator=(DbSession&&) = delete;
  DbSession(const DbSession&) = delete;
  DbSession& operator=(const DbSession&) = delete;
  ~DbSession();  // gives a leased connection back

  // For store/ only: the SOCI session and what is kept per connection.
  soci::session& sql() { return *session_; }
  ConnectionState& state() { return *state_; }

 private:
  friend class DbPool;
  struct Owned;
  DbSession(DbPool* pool, std::size_t position, soci::session* session, ConnectionState* state);
  explicit DbSession(std::unique_ptr<Owned> owned);

  DbPool* pool_ = nullptr;
  std::size_t position_ = 0;
  soci::session* session_ = nullptr;
  ConnectionState* state_ = nullptr;
  std::unique_ptr<Owned> owned_;  // a connection of its own, when not leased
};

class DbPool {
 public:
  // Opens `size` connections to `connection_string`. Throws Error{kUnavailable} when the
  // database cannot be reached.
  DbPool(const std::string& connection_string, std::size_t size);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  // A free connection, reopened first when it was lost (server restart, network) so one
  // failure does not poison the pool; what was prepared on it is dropped then. Waits up to
  // `timeout`, then throws Error{kUnavailable}; kUnavailable too when reopening fails.
  DbSession Lease(std::chrono::milliseconds timeout = std::chrono::seconds{5});

  // While the database is down (DatabaseSupervisor), Lease throws Error{kUnavailable} at once
  // with `detail` and `retry_after`, instead of each caller finding out by itself.
  void SetDown(const std::string& detail, std::chrono::seconds retry_after);
  // The database answers again: leases work, and every connection opened before is reopened on
  // its next lease (its backend may have gone with the outage, and what was prepared on it).
  void SetUp();

  std::size_t size() const { return size_; }
  std::size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  friend class DbSession;
  void GiveBack(std::size_t position);

  std::size_t size_;
  std::unique_ptr<soci::connection_pool> pool_;
  std::vector<std::unique_ptr<ConnectionState>> states_;  // per position; its lessee's only
  std::atomic<std::size_t> in_use_{0};
  // Bumped by SetUp(); a position opened under an older epoch is reopened when leased.
  std::atomic<std::uint64_t> epoch_{0};
  std::vector<std::uint64_t> opened_in_;  // per position; its lessee's only
  std::atomic<bool> down_{false};
  mutable std::mutex down_mutex_;  // guards the two below
  std::string down_detail_;
  std::chrono::seconds down_retry_after_{0};
};

// Adds the options every cmdb connection uses (quiet notices, UTC) to a connection string.
std::string WithSessionOptions(const std::string& connection_string);

// Runs `SELECT 1`: whether the database answers. Throws Error{kUnavailable} when not.
void Ping(DbSession& session);

}  // namespace cmdb::store
