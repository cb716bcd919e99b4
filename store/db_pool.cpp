#include "store/db_pool.hpp"

#include <soci/connection-pool.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "model/error.hpp"
#include "store/connection_state.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;

ConnectionState::ConnectionState() = default;
ConnectionState::~ConnectionState() = default;
void ConnectionState::Reset() {
  prepared.clear();
  native_prepared.clear();
}

std::string WithSessionOptions(const std::string& connection_string) {
  // Both libpq forms accept "options": as a keyword, or as a URI query parameter.
  const std::string options = "-c client_min_messages=warning -c TimeZone=UTC";
  if (connection_string.rfind("postgres://", 0) == 0 ||
      connection_string.rfind("postgresql://", 0) == 0) {
    return connection_string + (connection_string.find('?') == std::string::npos ? "?" : "&") +
           "options=-c%20client_min_messages%3Dwarning%20-c%20TimeZone%3DUTC";
  }
  return connection_string + " options='" + options + "'";
}

namespace {

[[noreturn]] void ThrowCannotConnect(const soci::soci_error& e) {
  throw Error(ErrorCode::kUnavailable,
              std::string("cannot connect to PostgreSQL: ") + e.get_error_message());
}

}  // namespace

// A connection of a DbSession's own, with its state.
struct DbSession::Owned {
  soci::session session;
  ConnectionState state;
};

DbSession::DbSession(DbPool* pool, std::size_t position, soci::session* session,
                     ConnectionState* state)
    : pool_(pool), position_(position), session_(session), state_(state) {}

DbSession::DbSession(std::unique_ptr<Owned> owned)
    : session_(&owned->session), state_(&owned->state), owned_(std::move(owned)) {}

DbSession::DbSession(DbSession&& other) noexcept
    : pool_(other.pool_),
      position_(other.position_),
      session_(other.session_),
      state_(other.state_),
      owned_(std::move(other.owned_)) {
  other.pool_ = nullptr;
  other.session_ = nullptr;
  other.state_ = nullptr;
}

DbSession::~DbSession() {
  if (pool_ != nullptr) pool_->GiveBack(position_);
  // An owned connection's statements go before the session they were prepared on.
  if (owned_) owned_->state.Reset();
}

DbSession DbSession::Connect(const std::string& connection_string) {
  auto owned = std::make_unique<Owned>();
  try {
    owned->session.open(soci::postgresql, WithSessionOptions(connection_string));
  } catch (const soci::soci_error& e) {
    ThrowCannotConnect(e);
  }
  return DbSession(std::move(owned));
}

DbPool::DbPool(const std::string& connection_string, std::size_t size)
    : size_(size), pool_(std::make_unique<soci::connection_pool>(size)) {
  const std::string conninfo = WithSessionOptions(connection_string);
  try {
    for (std::size_t i = 0; i < size; ++i) {
      pool_->at(i).open(soci::postgresql, conninfo);
      states_.push_back(std::make_unique<ConnectionState>());
      opened_in_.push_back(0);
    }
  } catch (const soci::soci_error& e) {
    ThrowCannotConnect(e);
  }
}

DbPool::~DbPool() {
  // Prepared statements go before the sessions they belong to.
  for (auto& state : states_) state->Reset();
}

void DbPool::SetDown(const std::string& detail, std::chrono::seconds retry_after) {
  std::lock_guard lock(down_mutex_);
  down_detail_ = detail;
  down_retry_after_ = retry_after;
  down_.store(true, std::memory_order_release);
}

void DbPool::SetUp() {
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  down_.store(false, std::memory_order_release);
}

DbSession DbPool::Lease(std::chrono::milliseconds timeout) {
  if (down_.load(std::memory_order_acquire)) {
    std::lock_guard lock(down_mutex_);
    throw Error(ErrorCode::kUnavailable, down_detail_, down_retry_after_);
  }
  std::size_t position = 0;
  if (!pool_->try_lease(position, static_cast<int>(timeout.count()))) {
    throw Error(ErrorCode::kUnavailable, "all database connections are busy; try again");
  }
  in_use_.fetch_add(1, std::memory_order_relaxed);
  soci::session& session = pool_->at(position);
  ConnectionState& state = *states_[position];
  const std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
  if (opened_in_[position] != epoch || !pg::IsConnected(session)) {
    // A new backend knows none of the old one's prepared statements; they are dropped while
    // their session object still exists.
    state.Reset();
    try {
      session.reconnect();
    } catch (const soci::soci_error& e) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      pool_->give_back(position);
      throw Error(ErrorCode::kUnavailable,
                  std::string("database unreachable: ") + e.get_error_message(),
                  std::chrono::seconds{5});
    }
    opened_in_[position] = epoch;
  }
  return {this, position, &session, &state};
}

void DbPool::GiveBack(std::size_t position) {
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  pool_->give_back(position);
}

void Ping(DbSession& session) { sql::Execute(session, "SELECT 1"); }

}  // namespace cmdb::store
