#pragma once
// Translation of database failures into model::Error, and access to the libpq handle under
// a SOCI session for the few places (COPY, multi-statement migrations) that need it.

#include <string>

extern "C" {
typedef struct pg_conn PGconn;  // NOLINT(modernize-use-using): matches libpq's declaration
}

namespace soci {
class session;
class soci_error;
}  // namespace soci

namespace cmdb::model {

// The libpq connection behind a SOCI PostgreSQL session.
PGconn* NativeConnection(soci::session& sql);

// Maps a SOCI error to the canonical code by SQLSTATE (unique violation → kAlreadyExists,
// serialization failure/deadlock → kConflict, foreign key → kFailedPrecondition, connection
// class 08 → kUnavailable, anything else → kInternal) and throws it.
[[noreturn]] void ThrowDbError(const soci::soci_error& error);

// Same for a failed libpq result, given its SQLSTATE and message.
[[noreturn]] void ThrowDbError(const std::string& sqlstate, const std::string& message);

// Runs a statement (several, separated by ';') through libpq, for DDL and COPY set-up.
// Throws via ThrowDbError on failure.
void ExecuteRaw(soci::session& sql, const std::string& statements);

}  // namespace cmdb::model
