#pragma once
// The request and response as handlers see them: plain values with no Beast types, so that
// handlers, the router and their tests compile without Beast. The listener converts.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cmdb::server {

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as received: path and query
  std::string path;                                          // percent-decoded path
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string request_id;

  // The first header of that (lowercase) name, or "" when absent.
  std::string_view Header(std::string_view name) const;
  // The first query parameter of that name.
  std::optional<std::string> Query(std::string_view name) const;
  // The media type of Content-Type without parameters, lowercased ("application/json").
  std::string MediaType() const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Splits a request target into its decoded path and query. Returns false when the target is
// not origin-form or holds a malformed percent escape.
bool ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query);

}  // namespace cmdb::server
