#pragma once
// The one table from PostgreSQL's SQLSTATE to model::ErrorCode, used for every statement the
// store runs (SOCI and libpq alike). Stateless; thread-safe.
//
// | SQLSTATE                                              | ErrorCode           |
// |-------------------------------------------------------|---------------------|
// | 23505 unique violation                                | kAlreadyExists      |
// | 40001 serialization failure, 40P01 deadlock           | kConflict           |
// | 23503 foreign key violation                           | kFailedPrecondition |
// | class 08 (connection), 57P01-57P03 (shutdown, start), |                     |
// | 53300 (too many connections), 57014 (cancelled),      |                     |
// | none at all (the connection was lost)                 | kUnavailable        |
// | class 22 (a value the column cannot store)            | kInvalidArgument    |
// | anything else                                         | kInternal           |

#include <string>
#include <string_view>

#include "model/error.hpp"

namespace cmdb::store {

model::ErrorCode ErrorCodeForSqlState(std::string_view sqlstate);

// Throws the model::Error for a failed statement: its code from the table, a detail safe for
// clients (the server's message only where the value was the client's).
[[noreturn]] void ThrowDbError(std::string_view sqlstate, const std::string& message);

}  // namespace cmdb::store
