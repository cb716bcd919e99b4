#include "store/sqlstate.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;

ErrorCode ErrorCodeForSqlState(std::string_view s) {
  if (s == "23505") return ErrorCode::kAlreadyExists;
  if (s == "40001" || s == "40P01") return ErrorCode::kConflict;
  if (s == "23503") return ErrorCode::kFailedPrecondition;
  if (s.empty() || s.substr(0, 2) == "08" || s == "57P01" || s == "57P02" || s == "57P03" ||
      s == "53300" || s == "57014") {
    return ErrorCode::kUnavailable;
  }
  if (s.substr(0, 2) == "22") return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

void ThrowDbError(std::string_view sqlstate, const std::string& message) {
  switch (ErrorCodeForSqlState(sqlstate)) {
    case ErrorCode::kAlreadyExists:
      throw Error(ErrorCode::kAlreadyExists, "the object already exists");
    case ErrorCode::kConflict:
      throw Error(ErrorCode::kConflict, "a concurrent update conflicted with this one; retry");
    case ErrorCode::kFailedPrecondition:
      throw Error(ErrorCode::kFailedPrecondition, "a referenced object does not exist");
    case ErrorCode::kUnavailable:
      throw Error(ErrorCode::kUnavailable,
                  sqlstate == "57014" ? "the query took too long" : "the database is unavailable");
    case ErrorCode::kInvalidArgument:
      // Data exceptions: a value the database cannot store (validation should have caught it).
      throw Error(ErrorCode::kInvalidArgument, "the database rejected a value: " + message);
    default:
      throw Error(ErrorCode::kInternal, "database error " + std::string(sqlstate) + ": " + message);
  }
}

}  // namespace cmdb::store
