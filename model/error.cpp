#include "model/error.hpp"

#include <utility>

namespace cmdb::model {

Error::Error(ErrorCode code, const std::string& detail) : std::runtime_error(detail), code_(code) {}

Error::Error(ErrorCode code, const std::string& detail, std::vector<FieldError> errors)
    : std::runtime_error(detail), code_(code), errors_(std::move(errors)) {}

void FieldErrors::Add(std::string field, std::string message) {
  // A hostile document could produce millions of errors; a client needs the first few hundred.
  constexpr std::size_t kMaxErrors = 500;
  if (errors_.size() < kMaxErrors) errors_.push_back({std::move(field), std::move(message)});
}

void FieldErrors::ThrowIfAny(const std::string& detail) {
  if (!errors_.empty()) throw Error(ErrorCode::kValidationFailed, detail, std::move(errors_));
}

}  // namespace cmdb::model
