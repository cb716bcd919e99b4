#include "model/db_pool.hpp"

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "model/db_errors.hpp"
#include "model/error.hpp"

namespace cmdb::model {

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

DbSession::DbSession(DbPool* pool, std::size_t position, soci::session* session)
    : pool_(pool), position_(position), session_(session) {}

DbSession::DbSession(DbSession&& other) noexcept
    : pool_(other.pool_), position_(other.position_), session_(other.session_) {
  other.pool_ = nullptr;
}

DbSession::~DbSession() {
  if (pool_ != nullptr) pool_->GiveBack(position_);
}

DbPool::DbPool(const std::string& connection_string, std::size_t size)
    : size_(size), pool_(std::make_unique<soci::connection_pool>(size)) {
  const std::string conninfo = WithSessionOptions(connection_string);
  try {
    for (std::size_t i = 0; i < size; ++i) {
      pool_->at(i).open(soci::postgresql, conninfo);
    }
  } catch (const soci::soci_error& e) {
    throw Error(ErrorCode::kUnavailable,
                std::string("cannot connect to PostgreSQL: ") + e.get_error_message());
  }
}

DbPool::~DbPool() = default;

DbSession DbPool::Lease(std::chrono::milliseconds timeout) {
  std::size_t position = 0;
  if (!pool_->try_lease(position, static_cast<int>(timeout.count()))) {
    throw Error(ErrorCode::kUnavailable, "all database connections are busy; try again");
  }
  in_use_.fetch_add(1, std::memory_order_relaxed);
  soci::session& sql = pool_->at(position);
  // A connection lost since its last use (server restart, network) is reopened here so one
  // failure does not poison the pool.
  PGconn* conn = NativeConnection(sql);
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
    try {
      sql.reconnect();
    } catch (const soci::soci_error& e) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      pool_->give_back(position);
      throw Error(ErrorCode::kUnavailable,
                  std::string("database unreachable: ") + e.get_error_message());
    }
  }
  return {this, position, &sql};
}

void DbPool::GiveBack(std::size_t position) {
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  pool_->give_back(position);
}

}  // namespace cmdb::model
