#include "model/timestamp.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace cmdb::model {
namespace {

bool ReadDigits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

bool IsLeap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays.at(static_cast<std::size_t>(month - 1));
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const auto doy = static_cast<unsigned>((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool ParseDate(std::string_view text, int& year, int& month, int& day) {
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return false;
  if (!ReadDigits(text, 0, 4, year) || !ReadDigits(text, 5, 2, month) ||
      !ReadDigits(text, 8, 2, day)) {
    return false;
  }
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= DaysInMonth(year, month);
}

}  // namespace

Timestamp Timestamp::Now() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return {std::chrono::duration_cast<std::chrono::microseconds>(now).count()};
}

std::string FormatTimestamp(Timestamp ts) {
  std::int64_t secs = ts.micros / 1000000;
  std::int64_t frac = ts.micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 64> buf{};
  if (frac == 0) {
    std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(frac));
  }
  return buf.data();
}

bool IsValidDate(std::string_view text) {
  int y = 0;
  int m = 0;
  int d = 0;
  return text.size() == 10 && ParseDate(text, y, m, d);
}

std::optional<Timestamp> ParseTimestamp(std::string_view text) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!ParseDate(text, year, month, day)) return std::nullopt;
  std::int64_t days = DaysFromCivil(year, month, day);
  if (text.size() == 10) return Timestamp{days * 86400LL * 1000000LL};
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') return std::nullopt;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (text.size() < 19 || text[13] != ':' || text[16] != ':' || !ReadDigits(text, 11, 2, hour) ||
      !ReadDigits(text, 14, 2, minute) || !ReadDigits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 6; ++i) micros *= 10;
  }
  if (pos >= text.size()) return std::nullopt;  // RFC 3339 requires an offset
  std::int64_t offset_seconds = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int oh = 0;
    int om = 0;
    if (pos + 6 != text.size() || text[pos + 3] != ':' || !ReadDigits(text, pos + 1, 2, oh) ||
        !ReadDigits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_seconds = (oh * 3600LL + om * 60LL) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  std::int64_t secs =
      days * 86400 + hour * 3600LL + minute * 60LL + std::min(second, 59) - offset_seconds;
  return Timestamp{secs * 1000000 + micros};
}

}  // namespace cmdb::model
