#include "store/sqlstate.hpp"

#include <gtest/gtest.h>

namespace cmdb::store {
namespace {

using model::Error;
using model::ErrorCode;

TEST(SqlState, TheOneTableMapsEachClassOfFailure) {
  const std::vector<std::pair<std::string_view, ErrorCode>> table = {
      {"23505", ErrorCode::kAlreadyExists},       // unique_violation
      {"40001", ErrorCode::kConflict},            // serialization_failure
      {"40P01", ErrorCode::kConflict},            // deadlock_detected
      {"23503", ErrorCode::kFailedPrecondition},  // foreign_key_violation
      {"08006", ErrorCode::kUnavailable},         // connection_failure
      {"08P01", ErrorCode::kUnavailable},         // protocol_violation
      {"57P01", ErrorCode::kUnavailable},         // admin_shutdown
      {"57P02", ErrorCode::kUnavailable},         // crash_shutdown
      {"57P03", ErrorCode::kUnavailable},         // cannot_connect_now
      {"53300", ErrorCode::kUnavailable},         // too_many_connections
      {"57014", ErrorCode::kUnavailable},         // query_canceled (statement_timeout)
      {"", ErrorCode::kUnavailable},              // none: the connection was lost
      {"22P02", ErrorCode::kInvalidArgument},     // invalid_text_representation
      {"22001", ErrorCode::kInvalidArgument},     // string_data_right_truncation
      {"42P01", ErrorCode::kInternal},            // undefined_table: a bug of ours
      {"XX000", ErrorCode::kInternal},
  };
  for (const auto& [sqlstate, code] : table) {
    EXPECT_EQ(ErrorCodeForSqlState(sqlstate), code) << "'" << sqlstate << "'";
    try {
      ThrowDbError(sqlstate, "server message");
      ADD_FAILURE() << "no throw for " << sqlstate;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << "'" << sqlstate << "'";
    }
  }
}

TEST(SqlState, OnlyAValueTheClientSentIsEchoedBack) {
  try {
    ThrowDbError("22P02", "invalid input syntax for type bigint: \"x\"");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid input syntax"), std::string::npos);
  }
  try {
    ThrowDbError("23505", "duplicate key value violates unique constraint \"secret_index\"");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret_index"), std::string::npos);
  }
}

}  // namespace
}  // namespace cmdb::store
