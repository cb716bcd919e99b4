#include "model/error.hpp"

#include <array>
#include <utility>

namespace cmdb::model {

namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 16> kCodeNames{{
    {ErrorCode::kInvalidArgument, "invalid_argument"},
    {ErrorCode::kValidationFailed, "validation_failed"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kAlreadyExists, "already_exists"},
    {ErrorCode::kConflict, "conflict"},
    {ErrorCode::kFailedPrecondition, "failed_precondition"},
    {ErrorCode::kVersionMismatch, "version_mismatch"},
    {ErrorCode::kPayloadTooLarge, "payload_too_large"},
    {ErrorCode::kHeadersTooLarge, "headers_too_large"},
    {ErrorCode::kMethodNotAllowed, "method_not_allowed"},
    {ErrorCode::kUnsupportedMediaType, "unsupported_media_type"},
    {ErrorCode::kUnauthenticated, "unauthenticated"},
    {ErrorCode::kPermissionDenied, "permission_denied"},
    {ErrorCode::kTooManyRequests, "too_many_requests"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kInternal, "internal"},
}};

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& [c, name] : kCodeNames) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (const auto& [c, n] : kCodeNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

Error::Error(ErrorCode code, const std::string& detail) : std::runtime_error(detail), code_(code) {}

Error::Error(ErrorCode code, const std::string& detail, std::vector<FieldError> errors)
    : std::runtime_error(detail), code_(code), errors_(std::move(errors)) {}

Error::Error(ErrorCode code, const std::string& detail, std::chrono::seconds retry_after)
    : std::runtime_error(detail), code_(code), retry_after_(retry_after) {}

void FieldErrors::Add(std::string field, std::string message) {
  // A hostile document could produce millions of errors; a client needs the first few hundred.
  constexpr std::size_t kMaxErrors = 500;
  if (errors_.size() < kMaxErrors) errors_.push_back({std::move(field), std::move(message)});
}

void FieldErrors::ThrowIfAny(const std::string& detail) {
  if (!errors_.empty()) throw Error(ErrorCode::kValidationFailed, detail, std::move(errors_));
}

}  // namespace cmdb::model
