#pragma once
// The one place that knows HTTP status codes: model::ErrorCode -> problem+json (RFC 9457).

#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "model/error.hpp"
#include "server/http_types.hpp"

namespace cmdb::server {

struct ProblemType {
  int status;
  std::string_view slug;  // "/problems/<slug>"
  std::string_view title;
};

ProblemType ProblemTypeFor(model::ErrorCode code);

// The problem+json document for `error` (also embedded in a failed import job).
boost::json::object ProblemJson(const model::Error& error, std::string_view instance);

// Retry-After of a 503 whose error does not say (a connection lost under a request).
inline constexpr int kDefaultRetryAfterSeconds = 5;

// A problem+json response for `error`; `instance` is the request path. A 503 always carries
// Retry-After.
Response MakeProblemResponse(const model::Error& error, std::string_view instance);

// A problem+json response built from a code and detail directly (listener-level failures).
Response MakeProblemResponse(model::ErrorCode code, const std::string& detail,
                             std::string_view instance);

}  // namespace cmdb::server
