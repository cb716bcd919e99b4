#include "tests/integration/http_client.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/json.hpp"

namespace cmdb::testing {

const boost::json::value& HttpResult::json() const {
  if (!parsed_) parsed_ = model::ParseJson(body);
  return *parsed_;
}

std::string HttpResult::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

int ConnectLoopback(std::uint16_t port, const std::string& source) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (!source.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace {
int answer_timeout = 60;
}  // namespace

void SetAnswerTimeout(int seconds) { answer_timeout = seconds; }

std::string RawExchange(std::uint16_t port, const std::string& raw, const std::string& source) {
  int fd = ConnectLoopback(port, source);
  if (fd < 0) throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  timeval tv{answer_timeout, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (e.g. 413); read what it said
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  std::array<char, 65536> buf{};
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

HttpResult ParseResponse(const std::string& text) {
  HttpResult result;
  std::size_t header_end = text.find("\r\n\r\n");
  if (header_end == std::string::npos || text.compare(0, 9, "HTTP/1.1 ") != 0) {
    throw std::runtime_error("not an HTTP response: " + text.substr(0, 200));
  }
  result.status = std::stoi(text.substr(9, 3));
  std::size_t pos = text.find("\r\n") + 2;
  while (pos < header_end) {
    std::size_t end = text.find("\r\n", pos);
    std::string line = text.substr(pos, end - pos);
    std::size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    result.headers[name] = value;
    pos = end + 2;
  }
  result.body = text.substr(header_end + 4);
  if (result.header("transfer-encoding") == "chunked") {
    // Streamed: the chunks joined; a body that ends before its last chunk is a failure.
    std::string joined;
    std::size_t at = 0;
    for (;;) {
      const std::size_t line_end = result.body.find("\r\n", at);
      if (line_end == std::string::npos) throw std::runtime_error("chunked body cut short");
      const std::size_t size = std::stoul(result.body.substr(at, line_end - at), nullptr, 16);
      if (size == 0) break;
      if (line_end + 2 + size + 2 > result.body.size()) {
        throw std::runtime_error("chunked body cut short");
      }
      joined.append(result.body, line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
    result.body = std::move(joined);
  }
  return result;
}

namespace {

// With CMDB_RESPONSE_LOG set to a folder, every response HttpRequest receives is appended to
// responses-<pid>.jsonl there, one JSON line each (JSON bodies parsed, others left out), for
// tests/openapi/check_responses.py to validate against docs/openapi.json.
void Record(const std::string& method, const std::string& target, const HttpResult& result) {
  static const char* const folder =
      std::getenv("CMDB_RESPONSE_LOG");  // NOLINT(concurrency-mt-unsafe)
  if (folder == nullptr || *folder == '\0') return;
  static std::mutex mutex;
  static std::ofstream out = [] {
    std::filesystem::create_directories(folder);
    return std::ofstream(std::string(folder) + "/responses-" + std::to_string(getpid()) + ".jsonl",
                         std::ios::app);
  }();
  boost::json::object line{{"method", method},
                           {"target", target},
                           {"status", result.status},
                           {"content_type", result.header("content-type")}};
  const std::string& type = result.header("content-type");
  if (type.rfind("application/json", 0) == 0 || type.rfind("application/problem+json", 0) == 0) {
    boost::system::error_code ec;
    boost::json::parse_options deep;
    deep.max_depth = 100000;  // the hostile-input tests store deeply nested attributes
    boost::json::value parsed = boost::json::parse(result.body, ec, {}, deep);
    if (ec) {
      line["invalid_json"] = result.body.substr(0, 200);
    } else {
      line["body"] = std::move(parsed);
    }
  }
  std::lock_guard lock(mutex);
  out << boost::json::serialize(line) << '\n' << std::flush;
}

}  // namespace

namespace {
std::string& DefaultAuthorization() {
  static std::string value;
  return value;
}
}  // namespace

void SetDefaultAuthorization(std::string value) { DefaultAuthorization() = std::move(value); }

HttpResult HttpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const Headers& headers) {
  std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  bool authorized = false;
  for (const auto& [name, value] : headers) {
    raw.append(name).append(": ").append(value) += "\r\n";
    authorized |= strcasecmp(name.c_str(), "authorization") == 0;
  }
  if (!authorized && !DefaultAuthorization().empty()) {
    raw += "Authorization: " + DefaultAuthorization() + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  raw += "\r\n" + body;
  HttpResult result = ParseResponse(RawExchange(port, raw));
  Record(method, target, result);
  return result;
}

}  // namespace cmdb::testing
