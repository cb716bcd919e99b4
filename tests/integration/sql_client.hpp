#pragma once
// Raw SQL for the database tests, through libpq: states the API cannot produce (a run left by
// a crashed instance, an event in the past) and checks of what was stored. Results are text.
// Not for product code, which goes through store/.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
typedef struct pg_result PGresult;  // NOLINT(modernize-use-using): libpq's declaration
typedef struct pg_conn PGconn;      // NOLINT(modernize-use-using): libpq's declaration
}

namespace cmdb::store {
class DbSession;
}

namespace cmdb::testing {

using SqlParam = std::optional<std::string>;  // nullopt binds NULL
using SqlParams = std::vector<SqlParam>;
inline SqlParam P(std::int64_t v) { return std::to_string(v); }
inline SqlParam P(std::string_view v) { return std::string(v); }
inline SqlParam P(const char* v) { return std::string(v); }

class SqlResult {
 public:
  explicit SqlResult(PGresult* result);
  SqlResult(SqlResult&& other) noexcept;
  SqlResult& operator=(SqlResult&&) = delete;
  SqlResult(const SqlResult&) = delete;
  SqlResult& operator=(const SqlResult&) = delete;
  ~SqlResult();

  int rows() const;
  bool IsNull(int row, int col) const;
  std::string_view Text(int row, int col) const;
  std::int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;

 private:
  PGresult* result_;
};

// Runs `query` with $1..$n on `conn`; throws model::Error (the store's SQLSTATE table) when it
// fails.
SqlResult Query(PGconn* conn, const std::string& query, const SqlParams& params = {});
// The same on the connection of a store session.
SqlResult Query(store::DbSession& session, const std::string& query, const SqlParams& params = {});

// A connection of its own.
class SqlConnection {
 public:
  explicit SqlConnection(const std::string& dsn);
  ~SqlConnection();
  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;
  SqlResult Query(const std::string& query, const SqlParams& params = {});

 private:
  PGconn* conn_;
};

}  // namespace cmdb::testing
