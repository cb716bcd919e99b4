#pragma once
// Timestamps as microseconds since the Unix epoch (PostgreSQL's resolution), with RFC 3339
// formatting and parsing. Value type; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cmdb::model {

struct Timestamp {
  std::int64_t micros = 0;  // since 1970-01-01T00:00:00Z

  static Timestamp Now();
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

// "2026-11-27T17:32:26.123456Z"; whole seconds print without a fraction.
std::string FormatTimestamp(Timestamp ts);

// Parses RFC 3339 ("2026-11-27T17:32:26Z", "...26.5+01:00", "2026-11-27" for midnight UTC).
// Returns nullopt when the text is not such a timestamp or names an impossible date.
std::optional<Timestamp> ParseTimestamp(std::string_view text);

// True when `text` is a calendar date "YYYY-MM-DD" that exists.
bool IsValidDate(std::string_view text);

}  // namespace cmdb::model
