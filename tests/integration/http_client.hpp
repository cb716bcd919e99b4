#pragma once
// A deliberately small blocking HTTP/1.1 client for tests: one request per connection,
// "Connection: close", read to EOF. Also sends raw bytes, for malformed-request tests.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace cmdb::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;

  // The body parsed once; the reference lives as long as this result (so range-for over
  // r.json().at("items").as_array() is safe).
  const boost::json::value& json() const;
  std::string header(const std::string& name) const;

 private:
  mutable std::optional<boost::json::value> parsed_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

HttpResult HttpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const Headers& headers = {{"Content-Type", "application/json"}});

// The Authorization header every later request of this process carries unless it names one
// itself (the benchmarks set it once); empty: none. Not thread-safe against requests.
void SetDefaultAuthorization(std::string value);

// How long a request waits for the server's answer before failing (60 s unless set; the
// benchmarks' imports of a million CIs take longer). Not thread-safe against requests.
void SetAnswerTimeout(int seconds);

// An open TCP connection to 127.0.0.1:port, for tests that hold or half-send requests, from
// `source` when given (another loopback address, such as 127.0.0.2); -1 on failure.
int ConnectLoopback(std::uint16_t port, const std::string& source = "");

// Sends `raw` as is (from `source`, as ConnectLoopback) and returns everything the server
// sent back before closing.
std::string RawExchange(std::uint16_t port, const std::string& raw, const std::string& source = "");

// Parses a full response text (status line, headers, body).
HttpResult ParseResponse(const std::string& text);

}  // namespace cmdb::testing
