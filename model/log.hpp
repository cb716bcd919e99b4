#pragma once
// The one structured logger of every layer: each entry is one line of JSON on stderr,
// {"ts", "level", "msg", ...fields}, written whole (lines of concurrent threads never mix)
// and valid whatever the message or fields hold (quotes, newlines, control characters).
// Thread-safe.

#include <functional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace cmdb::model {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Writes one entry, `fields` after ts, level and msg: Log(kInfo, "request", {{"status", 200}}).
// Never throws.
void Log(LogLevel level, std::string_view message, const boost::json::object& fields = {});

// Sends entries to `sink` (one complete line each, without the newline) instead of stderr;
// an empty function restores stderr. For tests.
void SetLogSink(std::function<void(std::string_view line)> sink);

}  // namespace cmdb::model
