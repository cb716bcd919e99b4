#include "model/error.hpp"

#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

TEST(ErrorCodeName, EveryCodeHasANameThatReadsBack) {
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kValidationFailed, ErrorCode::kNotFound,
        ErrorCode::kAlreadyExists, ErrorCode::kConflict, ErrorCode::kFailedPrecondition,
        ErrorCode::kVersionMismatch, ErrorCode::kPayloadTooLarge, ErrorCode::kHeadersTooLarge,
        ErrorCode::kMethodNotAllowed, ErrorCode::kUnsupportedMediaType, ErrorCode::kUnavailable,
        ErrorCode::kInternal}) {
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code) << ErrorCodeName(code);
  }
  EXPECT_EQ(ErrorCodeName(ErrorCode::kValidationFailed), "validation_failed");
  EXPECT_EQ(ErrorCodeFromName("no_such_code"), std::nullopt);
}

}  // namespace
}  // namespace cmdb::model
