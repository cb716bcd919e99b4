#include <algorithm>
#include <array>
#include <charconv>

#include <boost/json.hpp>

#include "model/error.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

boost::json::value ParseJsonBody(const Request& request) {
  std::string media = request.MediaType();
  bool json = media == "application/json" ||
              (media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0);
  if (!json) {
    throw Error(
        ErrorCode::kUnsupportedMediaType,
        "send the body as application/json" +
            (media.empty() ? std::string(" (no Content-Type was given)") : " (not " + media + ")"));
  }
  if (request.body.empty()) throw Error(ErrorCode::kInvalidArgument, "the request body is empty");
  return model::ParseJson(request.body);
}

Response JsonResponse(int status, const boost::json::value& body) {
  Response response;
  response.status = status;
  response.body = boost::json::serialize(body);
  return response;
}

std::int64_t ParseId(std::string_view text, std::string_view what) {
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + " '" + std::string(text.substr(0, 40)) +
                    "' is out of range: ids are positive 64-bit integers");
  }
  if (ec != std::errc() || ptr != text.data() + text.size() || value <= 0 || text[0] == '+') {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) +
                                                 " must be a positive integer, not '" +
                                                 std::string(text.substr(0, 40)) + "'");
  }
  return value;
}

std::optional<std::int64_t> ParseIfMatch(const Request& request) {
  std::string_view v = request.Header("if-match");
  if (v.empty() || v == "*") return std::nullopt;
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::int64_t version = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
  if (ec != std::errc() || ptr != v.data() + v.size() || version <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "If-Match must be an ETag from this server, such as \"3\"");
  }
  return version;
}

int ParseIntParam(const Request& request, const char* name, int fallback, int min, int max) {
  std::optional<std::string> given = request.Query(name);
  if (!given) return fallback;
  const std::string& text = *given;
  const char* end = text.data() + text.size();
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be an integer from " +
                                                 std::to_string(min) + " to " +
                                                 std::to_string(max));
  }
  return value;
}

int ParseLimit(const Request& request) { return ParseIntParam(request, "limit", 100, 1, 1000); }

std::optional<model::Timestamp> ParseAsOf(const Request& request) {
  std::optional<std::string> text = request.Query("as_of");
  if (!text) return std::nullopt;
  std::optional<model::Timestamp> ts = model::ParseTimestamp(*text);
  if (!ts) {
    throw Error(ErrorCode::kInvalidArgument,
                "as_of must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z");
  }
  if (*ts > model::Timestamp::Now()) {
    throw Error(ErrorCode::kInvalidArgument,
                "as_of is in the future; history can only be read up to now");
  }
  return ts;
}

std::optional<model::Timestamp> TimeParam(const Request& request, const char* name) {
  std::optional<std::string> text = request.Query(name);
  if (!text || text->empty()) return std::nullopt;
  std::optional<model::Timestamp> at = model::ParseTimestamp(*text);
  if (!at) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(name) + " must be an RFC 3339 time, such as 2026-12-01T00:00:00Z");
  }
  return at;
}

std::string EncodeCursor(std::int64_t after) {
  // Opaque to clients; "i" + id in hex keeps it URL-safe without escaping.
  std::array<char, 24> buf{};
  auto [ptr, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), after, 16);
  return "i" + std::string(buf.data(), ptr);
}

std::int64_t DecodeCursor(const Request& request) {
  std::optional<std::string> cursor = request.Query("cursor");
  if (!cursor) return 0;
  std::int64_t after = 0;
  if (cursor->size() < 2 || (*cursor)[0] != 'i') {
    throw Error(ErrorCode::kInvalidArgument, "cursor is not one this server returned");
  }
  auto [ptr, ec] = std::from_chars(cursor->data() + 1, cursor->data() + cursor->size(), after, 16);
  if (ec != std::errc() || ptr != cursor->data() + cursor->size() || after < 0) {
    throw Error(ErrorCode::kInvalidArgument, "cursor is not one this server returned");
  }
  return after;
}

void CheckQueryParams(const Request& request, std::initializer_list<std::string_view> allowed,
                      bool allow_attr) {
  for (const auto& [key, value] : request.query) {
    bool ok = false;
    for (std::string_view name : allowed) ok = ok || key == name;
    if (allow_attr && key.rfind("attr.", 0) == 0) ok = true;
    if (!ok) {
      std::string list;
      for (std::string_view name : allowed) list += (list.empty() ? "" : ", ") + std::string(name);
      if (allow_attr) list += ", attr.<name>";
      throw Error(ErrorCode::kInvalidArgument, "unknown query parameter '" + key.substr(0, 60) +
                                                   "'; this endpoint takes " +
                                                   (list.empty() ? std::string("none") : list));
    }
  }
}

std::string ETag(std::int64_t version) { return "\"" + std::to_string(version) + "\""; }

std::optional<std::int64_t> OptionalIdParam(const Request& request, const char* name) {
  std::optional<std::string> v = request.Query(name);
  if (!v || v->empty()) return std::nullopt;
  return ParseId(*v, name);
}

std::optional<bool> ParseBoolParam(const Request& request, const char* name) {
  std::optional<std::string> v = request.Query(name);
  if (!v || v->empty()) return std::nullopt;
  if (*v == "true" || *v == "1") return true;
  if (*v == "false" || *v == "0") return false;
  throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be true or false");
}

std::optional<std::string> OneOfParam(const Request& request, const char* name,
                                      const std::vector<std::string_view>& allowed) {
  std::optional<std::string> v = request.Query(name);
  if (!v || v->empty()) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return v;
  std::string message = std::string(name) + " must be ";
  if (allowed.size() == 2) {
    message += std::string(allowed[0]) + " or " + std::string(allowed[1]);
  } else {
    message += "one of ";
    for (std::size_t i = 0; i < allowed.size(); ++i) {
      if (i > 0) message += ", ";
      message += allowed[i];
    }
  }
  throw Error(ErrorCode::kInvalidArgument, message);
}

std::optional<std::string> OneOfParam(const Request& request, const char* name,
                                      std::initializer_list<std::string_view> allowed) {
  return OneOfParam(request, name, std::vector<std::string_view>(allowed));
}

Response ResourceResponse(int status, const boost::json::value& body, std::int64_t version,
                          const std::string& location) {
  Response response = JsonResponse(status, body);
  response.headers.emplace_back("ETag", ETag(version));
  if (status == 201) response.headers.emplace_back("Location", location);
  return response;
}

Response NoContent() {
  Response response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

model::WriteContext Writer(const Request& request) {
  return model::WriteContext{request.principal ? request.principal->user : "anonymous", "api"};
}

const model::Principal& Caller(const Request& request) {
  if (!request.principal) {
    throw model::Error(model::ErrorCode::kUnauthenticated, "this endpoint needs a token");
  }
  return *request.principal;
}

Response HistoryPage(const std::vector<model::HistoryEntry>& versions, int limit) {
  const auto shown = static_cast<std::size_t>(limit);
  boost::json::array items;
  for (std::size_t i = 0; i < versions.size() && i < shown; ++i) {
    const model::HistoryEntry& v = versions[i];
    items.emplace_back(boost::json::object{{"version", v.version},
                                           {"changed_at", model::FormatTimestamp(v.changed_at)},
                                           {"changed_by", v.changed_by},
                                           {"source", v.source},
                                           {"operation", v.deleted        ? "delete"
                                                         : v.version == 1 ? "create"
                                                                          : "update"},
                                           {"diff", v.diff}});
  }
  boost::json::object body{{"items", std::move(items)}};
  body["next_cursor"] = versions.size() > shown
                            ? boost::json::value(EncodeCursor(versions[shown - 1].version))
                            : boost::json::value(nullptr);
  return JsonResponse(200, body);
}

}  // namespace cmdb::server::handlers
