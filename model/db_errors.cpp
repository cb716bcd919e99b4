#include "model/db_errors.hpp"

#include <memory>

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "model/error.hpp"

namespace cmdb::model {

PGconn* NativeConnection(soci::session& sql) {
  auto* backend = static_cast<soci::postgresql_session_backend*>(sql.get_backend());
  return backend != nullptr ? backend->conn_ : nullptr;
}

void ThrowDbError(const std::string& sqlstate, const std::string& message) {
  if (sqlstate == "23505") throw Error(ErrorCode::kAlreadyExists, "the object already exists");
  if (sqlstate == "40001" || sqlstate == "40P01") {
    throw Error(ErrorCode::kConflict, "a concurrent update conflicted with this one; retry");
  }
  if (sqlstate == "23503") {
    throw Error(ErrorCode::kFailedPrecondition, "a referenced object does not exist");
  }
  if (sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P03") {
    throw Error(ErrorCode::kUnavailable, "the database is unavailable");
  }
  if (sqlstate == "57014") throw Error(ErrorCode::kUnavailable, "the query took too long");
  if (sqlstate.rfind("22", 0) == 0) {
    // Data exceptions: a value the database cannot store (validation should have caught it).
    throw Error(ErrorCode::kInvalidArgument, "the database rejected a value: " + message);
  }
  throw Error(ErrorCode::kInternal, "database error " + sqlstate + ": " + message);
}

void ThrowDbError(const soci::soci_error& error) {
  if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&error)) {
    ThrowDbError(pg->sqlstate(), error.get_error_message());
  }
  // SOCI reports a lost connection without a SQLSTATE.
  throw Error(ErrorCode::kUnavailable, "database error: " + error.get_error_message());
}

void ExecuteRaw(soci::session& sql, const std::string& statements) {
  PGconn* conn = NativeConnection(sql);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn, statements.c_str()), &PQclear);
  ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    ThrowDbError(state != nullptr ? state : "08000", PQerrorMessage(conn));
  }
}

}  // namespace cmdb::model
