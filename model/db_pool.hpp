#pragma once
// A fixed set of PostgreSQL sessions shared by request workers. Thread-safe.
// Lease() waits up to `timeout` for a free session and throws Error{kUnavailable} after it;
// the returned DbSession gives the session back when destroyed.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace soci {
class session;
class connection_pool;
}  // namespace soci

namespace cmdb::model {

class DbPool;

// A leased session (RAII). Move-only; must not outlive its pool.
class DbSession {
 public:
  DbSession(DbPool* pool, std::size_t position, soci::session* session);
  DbSession(DbSession&& other) noexcept;
  DbSession& operator=(DbSession&&) = delete;
  DbSession(const DbSession&) = delete;
  DbSession& operator=(const DbSession&) = delete;
  ~DbSession();

  soci::session& sql() { return *session_; }

 private:
  DbPool* pool_;
  std::size_t position_;
  soci::session* session_;
};

class DbPool {
 public:
  // Opens `size` sessions to `connection_string` (libpq keyword/value or URI form).
  // Throws Error{kUnavailable} when the database cannot be reached.
  DbPool(const std::string& connection_string, std::size_t size);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  DbSession Lease(std::chrono::milliseconds timeout = std::chrono::seconds{5});

  std::size_t size() const { return size_; }
  std::size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  friend class DbSession;
  void GiveBack(std::size_t position);

  std::size_t size_;
  std::unique_ptr<soci::connection_pool> pool_;
  std::atomic<std::size_t> in_use_{0};
};

// Adds the options every cmdb connection uses (quiet notices, UTC) to a connection string.
std::string WithSessionOptions(const std::string& connection_string);

}  // namespace cmdb::model
