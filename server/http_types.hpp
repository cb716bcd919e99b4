#pragma once
// The request and response as handlers see them: plain values with no Beast types, so that
// handlers, the router and their tests compile without Beast. The listener converts.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/access.hpp"

namespace cmdb::server {

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as received: path and query
  std::string path;                                          // percent-decoded path
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string request_id;
  std::string client_address;  // the peer's IP address
  // Who the request acts as: set by the router (the one writer) once the token is verified,
  // before the handler runs; null on public routes. Mutable so that the router can attach it
  // to the request it was handed without copying the body.
  mutable std::shared_ptr<const model::Principal> principal;

  // The first header of that (lowercase) name, or "" when absent.
  std::string_view Header(std::string_view name) const;
  // The first query parameter of that name.
  std::optional<std::string> Query(std::string_view name) const;
  // The media type of Content-Type without parameters, lowercased ("application/json").
  std::string MediaType() const;
};

// A body produced in parts while it is sent (a report of a million rows in constant memory):
// each call appends the next part to `out` and returns false once that part is the last.
// Called on worker threads, one call at a time, until it returns false, throws, or the client
// goes away (then the source is destroyed unfinished).
using BodySource = std::function<bool(std::string& out)>;

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body is sent chunked from this source instead of `body`.
  BodySource source;
};

// A request body taken in parts as it arrives instead of whole (an upload larger than the
// body limit): Write gets each part in order (at most 1 MiB), then Finish the end. A sink never
// throws: once Write returns false the sink has its answer (a problem), the rest of the body
// is not read, and Finish returns that answer. Abandon, instead of Finish, drops what the sink
// began (the body was too large) and answers `problem`; a sink destroyed without either drops
// it silently (the client went away). Called on worker threads, one call at a time.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual bool Write(std::string_view part) = 0;
  virtual Response Finish() = 0;
  virtual Response Abandon(Response problem) = 0;
};

// `text` percent-encoded for a query string (everything but A-Z a-z 0-9 - . _ ~).
std::string UrlEncode(std::string_view text);

// The value of cookie `name` in a Cookie header ("a=1; b=2"); "" when absent.
std::string CookieValue(std::string_view header, std::string_view name);

// Splits a request target into its decoded path and query. Returns false when the target is
// not origin-form or holds a malformed percent escape.
bool ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query);

}  // namespace cmdb::server
