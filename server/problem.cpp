#include "server/problem.hpp"

#include <boost/json.hpp>

namespace cmdb::server {

ProblemType ProblemTypeFor(model::ErrorCode code) {
  using model::ErrorCode;
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return {400, "invalid-request", "The request is malformed"};
    case ErrorCode::kValidationFailed:
      return {422, "validation-failed", "The request failed validation"};
    case ErrorCode::kNotFound:
      return {404, "not-found", "Resource not found"};
    case ErrorCode::kAlreadyExists:
      return {409, "already-exists", "Resource already exists"};
    case ErrorCode::kConflict:
      return {409, "conflict", "The request conflicts with the current state"};
    case ErrorCode::kFailedPrecondition:
      return {422, "reference-missing", "A referenced resource does not exist"};
    case ErrorCode::kVersionMismatch:
      return {412, "version-mismatch", "The resource has changed since that version"};
    case ErrorCode::kPayloadTooLarge:
      return {413, "payload-too-large", "The request body is too large"};
    case ErrorCode::kHeadersTooLarge:
      return {431, "headers-too-large", "The request headers are too large"};
    case ErrorCode::kMethodNotAllowed:
      return {405, "method-not-allowed", "The method is not allowed on this resource"};
    case ErrorCode::kUnsupportedMediaType:
      return {415, "unsupported-media-type", "Unsupported content type"};
    case ErrorCode::kUnauthenticated:
      return {401, "unauthenticated", "Authentication is required"};
    case ErrorCode::kPermissionDenied:
      return {403, "forbidden", "The action is not allowed"};
    case ErrorCode::kTooManyRequests:
      return {429, "too-many-requests", "Too many requests"};
    case ErrorCode::kUnavailable:
      return {503, "unavailable", "Service unavailable"};
    case ErrorCode::kInternal:
      return {500, "internal", "Internal server error"};
  }
  return {500, "internal", "Internal server error"};
}

boost::json::object ProblemJson(const model::Error& error, std::string_view instance) {
  ProblemType type = ProblemTypeFor(error.code());
  boost::json::object body{{"type", "/problems/" + std::string(type.slug)},
                           {"title", type.title},
                           {"status", type.status},
                           {"detail", error.what()},
                           {"instance", instance}};
  if (!error.field_errors().empty()) {
    boost::json::array errors;
    for (const auto& e : error.field_errors()) {
      errors.push_back(boost::json::object{{"field", e.field}, {"message", e.message}});
    }
    body["errors"] = std::move(errors);
  }
  return body;
}

Response MakeProblemResponse(const model::Error& error, std::string_view instance) {
  boost::json::object body = ProblemJson(error, instance);
  Response response;
  response.status = ProblemTypeFor(error.code()).status;
  response.content_type = "application/problem+json";
  response.body = boost::json::serialize(body);
  if (error.retry_after().count() > 0) {
    response.headers.emplace_back("Retry-After", std::to_string(error.retry_after().count()));
  } else if (response.status == 503) {
    // Every 503 is temporary (the database is away or the server busy): say when to come back.
    response.headers.emplace_back("Retry-After", std::to_string(kDefaultRetryAfterSeconds));
  }
  if (error.code() == model::ErrorCode::kUnauthenticated) {
    // RFC 6750: the scheme, and why the credentials (if any) were refused.
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cmdb\"");
  }
  return response;
}

Response MakeProblemResponse(model::ErrorCode code, const std::string& detail,
                             std::string_view instance) {
  return MakeProblemResponse(model::Error(code, detail), instance);
}

}  // namespace cmdb::server
