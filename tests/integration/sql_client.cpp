#include "tests/integration/sql_client.hpp"

#include <charconv>
#include <stdexcept>

#include <libpq-fe.h>

#include "store/db_pool.hpp"
#include "store/pg.hpp"
#include "store/sqlstate.hpp"

namespace cmdb::testing {

SqlResult::SqlResult(PGresult* result) : result_(result) {}
SqlResult::SqlResult(SqlResult&& other) noexcept : result_(other.result_) {
  other.result_ = nullptr;
}
SqlResult::~SqlResult() {
  if (result_ != nullptr) PQclear(result_);
}
int SqlResult::rows() const { return PQntuples(result_); }
bool SqlResult::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }
std::string_view SqlResult::Text(int row, int col) const {
  return {PQgetvalue(result_, row, col), static_cast<std::size_t>(PQgetlength(result_, row, col))};
}
std::int64_t SqlResult::Int(int row, int col) const {
  const std::string_view text = Text(row, col);
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}
bool SqlResult::Bool(int row, int col) const { return Text(row, col) == "t"; }

SqlResult Query(PGconn* conn, const std::string& query, const SqlParams& params) {
  std::vector<const char*> values;
  for (const SqlParam& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* result = PQexecParams(conn, query.c_str(), static_cast<int>(params.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string message = PQresultErrorMessage(result);
    const std::string sqlstate = state != nullptr ? state : "";
    PQclear(result);
    store::ThrowDbError(sqlstate, message);
  }
  return SqlResult(result);
}

SqlResult Query(store::DbSession& session, const std::string& query, const SqlParams& params) {
  return Query(store::pg::Native(session.sql()), query, params);
}

SqlConnection::SqlConnection(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("cannot connect: " + message);
  }
}

SqlConnection::~SqlConnection() { PQfinish(conn_); }

SqlResult SqlConnection::Query(const std::string& query, const SqlParams& params) {
  return testing::Query(conn_, query, params);
}

}  // namespace cmdb::testing
