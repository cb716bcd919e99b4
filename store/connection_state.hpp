#pragma once
// What the store keeps per PostgreSQL connection (internal to store/): the statements
// prepared on it. Owned by the pool next to its connection, used only by the connection's
// lessee, and cleared when the connection is reopened (a new backend has none of them).

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace cmdb::store {

namespace sql {
class PreparedRows;
}

class ConnectionState {
 public:
  ConnectionState();
  ~ConnectionState();
  ConnectionState(const ConnectionState&) = delete;
  ConnectionState& operator=(const ConnectionState&) = delete;

  // Drops every prepared statement; called before the connection is reopened, while the
  // statements' session still exists.
  void Reset();

  std::map<std::string, std::unique_ptr<sql::PreparedRows>, std::less<>> prepared;
  // Names of the statements prepared through libpq directly (pg::ForEachPreparedRow).
  std::set<std::string, std::less<>> native_prepared;
};

}  // namespace cmdb::store
