#include "server/problem.hpp"

#include <chrono>

#include <gtest/gtest.h>

#include "model/json.hpp"

namespace cmdb::server {
namespace {

using model::ErrorCode;

TEST(Problem, MapsEveryErrorCodeToItsStatus) {
  const std::vector<std::pair<ErrorCode, int>> table = {{ErrorCode::kInvalidArgument, 400},
                                                        {ErrorCode::kValidationFailed, 422},
                                                        {ErrorCode::kNotFound, 404},
                                                        {ErrorCode::kAlreadyExists, 409},
                                                        {ErrorCode::kConflict, 409},
                                                        {ErrorCode::kFailedPrecondition, 422},
                                                        {ErrorCode::kVersionMismatch, 412},
                                                        {ErrorCode::kPayloadTooLarge, 413},
                                                        {ErrorCode::kHeadersTooLarge, 431},
                                                        {ErrorCode::kMethodNotAllowed, 405},
                                                        {ErrorCode::kUnsupportedMediaType, 415},
                                                        {ErrorCode::kUnavailable, 503},
                                                        {ErrorCode::kInternal, 500}};
  for (const auto& [code, status] : table) {
    EXPECT_EQ(ProblemTypeFor(code).status, status) << static_cast<int>(code);
    // The response and its problem document always say the same status.
    Response r = MakeProblemResponse(code, "x", "/");
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(model::ParseJson(r.body).at("status"), status);
  }
}

TEST(Problem, RendersRfc9457BodyWithFieldErrors) {
  model::Error error(
      ErrorCode::kValidationFailed, "the CI is invalid",
      {{"attributes.ip", "is not an IPv4 or IPv6 address"}, {"name", "is required"}});
  Response r = MakeProblemResponse(error, "/api/v1/cis");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto body = model::ParseJson(r.body);
  EXPECT_EQ(body.at("type"), "/problems/validation-failed");
  EXPECT_EQ(body.at("status"), 422);
  EXPECT_EQ(body.at("detail"), "the CI is invalid");
  EXPECT_EQ(body.at("instance"), "/api/v1/cis");
  ASSERT_EQ(body.at("errors").as_array().size(), 2U);
  EXPECT_EQ(body.at("errors").at(0).at("field"), "attributes.ip");
}

TEST(Problem, ABusyRefusalTellsWhenToRetry) {
  Response busy = MakeProblemResponse(
      model::Error(ErrorCode::kUnavailable, "rebuilding", std::chrono::seconds{12}), "/x");
  EXPECT_EQ(busy.status, 503);
  ASSERT_EQ(busy.headers.size(), 1U);
  EXPECT_EQ(busy.headers[0].first, "Retry-After");
  EXPECT_EQ(busy.headers[0].second, "12");
  // A 503 whose error does not say (a connection lost under a request) still tells when.
  Response down = MakeProblemResponse(ErrorCode::kUnavailable, "no database", "/x");
  ASSERT_EQ(down.headers.size(), 1U);
  EXPECT_EQ(down.headers[0].first, "Retry-After");
  EXPECT_EQ(down.headers[0].second, std::to_string(kDefaultRetryAfterSeconds));
  EXPECT_TRUE(MakeProblemResponse(ErrorCode::kInternal, "bug", "/x").headers.empty());
}

}  // namespace
}  // namespace cmdb::server
