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
    boost::json::object entry{
        {"ts", FormatTimestamp(Timestamp::Now())}, {"level", LevelName(level)}, {"msg", message}};
    for (const auto& [key, value] : fields) entry[key] = value;
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
