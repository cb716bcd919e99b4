#pragma once
// The one error type thrown across layers. It carries a canonical code (Abseil's names),
// a detail that is safe to show to API clients and, for validation failures, the list of
// offending fields. Immutable once thrown; thread-safe to read.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cmdb::model {

enum class ErrorCode {
  kInvalidArgument,     // malformed request: bad JSON, bad query parameter
  kValidationFailed,    // well-formed but semantically invalid body; carries field errors
  kNotFound,            // the addressed object does not exist
  kAlreadyExists,       // unique key taken
  kConflict,            // object in use, serialization failure, concurrent update
  kFailedPrecondition,  // a referenced object is missing (foreign key)
  kVersionMismatch,     // If-Match named a stale version
  kPayloadTooLarge,     // request body over the configured limit
  kHeadersTooLarge,     // request headers over the configured limit
  kMethodNotAllowed,    // the path exists, the method does not
  kUnsupportedMediaType,
  kUnauthenticated,   // no valid credentials (401 with WWW-Authenticate: Bearer)
  kPermissionDenied,  // signed in, but the roles or a workflow rule do not allow it (403)
  kTooManyRequests,   // a client over its rate (429 with Retry-After)
  kUnavailable,       // database unreachable, pool exhausted
  kInternal,
};

// A stable name for a code ("validation_failed"), for errors stored in the database (a
// background job's failure), and back; nullopt for an unknown name.
std::string_view ErrorCodeName(ErrorCode code);
std::optional<ErrorCode> ErrorCodeFromName(std::string_view name);

// One offending field of a validation failure, as in problem+json `errors`.
struct FieldError {
  std::string field;
  std::string message;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& detail);
  Error(ErrorCode code, const std::string& detail, std::vector<FieldError> errors);
  // A refusal the client should retry after `retry_after` (kUnavailable: the server is busy);
  // HTTP answers carry it as the Retry-After header.
  Error(ErrorCode code, const std::string& detail, std::chrono::seconds retry_after);

  ErrorCode code() const { return code_; }
  const std::vector<FieldError>& field_errors() const { return errors_; }
  // Zero when the error says nothing about retrying.
  std::chrono::seconds retry_after() const { return retry_after_; }

 private:
  ErrorCode code_;
  std::vector<FieldError> errors_;
  std::chrono::seconds retry_after_{0};
};

// Collects field errors while validating a whole document, so a client hears about every
// bad field at once. ThrowIfAny() throws kValidationFailed when anything was added.
class FieldErrors {
 public:
  void Add(std::string field, std::string message);
  bool empty() const { return errors_.empty(); }
  std::size_t size() const { return errors_.size(); }
  const std::vector<FieldError>& items() const { return errors_; }
  std::vector<FieldError> Take() { return std::move(errors_); }
  void ThrowIfAny(const std::string& detail);

 private:
  std::vector<FieldError> errors_;
};

}  // namespace cmdb::model
