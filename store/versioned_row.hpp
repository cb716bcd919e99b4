#pragma once
// The optimistic-lock step every write of a versioned object begins with (internal to
// store/): lock the row for the rest of the transaction, 404 when it is not there, 412 when
// If-Match names another version. One helper for CIs, CI types, relations, changes,
// incidents, articles, discovery sources and drift findings.

#include <cstdint>
#include <optional>
#include <string>

#include "model/error.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

// Throws Error{kVersionMismatch} when `if_match` is given and is not `current`.
void CheckIfMatch(std::optional<std::int64_t> if_match, std::int64_t current,
                  const std::string& what);

// Runs `query` (a SELECT ... WHERE <key> = $1 FOR UPDATE) with `key`, reads its row with
// `from_row` and checks `if_match` against the result's `version`. `what` names the object in
// messages ("CI 42"). Error{kNotFound}, Error{kVersionMismatch}.
template <typename FromRow>
auto LockVersioned(DbSession& db, const std::string& query, const std::string& key,
                   std::optional<std::int64_t> if_match, const std::string& what,
                   FromRow&& from_row) {
  sql::Params params;
  params.Add(key);
  soci::row row;
  if (!sql::OneRow(db, query, params, row)) {
    throw model::Error(model::ErrorCode::kNotFound, what + " does not exist");
  }
  auto value = from_row(row);
  CheckIfMatch(if_match, value.version, what);
  return value;
}

}  // namespace cmdb::store
