#include "model/log.hpp"

#include <cstdio>
#include <mutex>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "model/timestamp.hpp"

namespace cmdb::model {

namespace {

std::mutex log_mutex;
std::function<void(std::string_view)> log_sink;  // guarded by log_mutex

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t Utf8Sequence(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  std::size_t n = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) low = 0xA0;
    if (c == 0xED) high = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

// `text` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD: a log line
// is JSON, which is UTF-8, whatever a client put in a path or a library in a message.
std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = Utf8Sequence(text);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void Log(LogLevel level, std::string_view message, const boost::json::object& fields) {
  try {
    boost::json::object entry{{"ts", FormatTimestamp(Timestamp::Now())},
                              {"level", LevelName(level)},
                              {"msg", ValidUtf8(message)}};
    for (const auto& [key, value] : fields) {
      entry[ValidUtf8(key)] =
          value.is_string() ? boost::json::value(ValidUtf8(value.get_string())) : value;
    }
    // Serialised by Boost.JSON, which escapes every quote and control character.
    std::string line = boost::json::serialize(entry);
    std::lock_guard lock(log_mutex);
    if (log_sink) {
      log_sink(line);
      return;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  } catch (...) {  // NOLINT(bugprone-empty-catch): logging must never fail a request
  }
}

void SetLogSink(std::function<void(std::string_view line)> sink) {
  std::lock_guard lock(log_mutex);
  log_sink = std::move(sink);
}

}  // namespace cmdb::model
