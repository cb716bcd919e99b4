#include "model/working_calendar.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "model/json.hpp"

namespace cmdb::model {

namespace {

constexpr std::int64_t kMicrosPerMinute = 60LL * 1000 * 1000;
constexpr std::int64_t kMinutesPerDay = std::int64_t{24} * 60;

// Days since 1970-01-01 -> civil date (Howard Hinnant's algorithm).
void CivilFromDays(std::int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(year + (m <= 2 ? 1 : 0));
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

bool IsWorkingDay(const WorkingCalendar& c, std::int64_t day) {
  const int weekday = static_cast<int>(((day % 7) + 7 + 3) % 7) + 1;  // 1970-01-01 was a Thursday
  if (!c.working_days.contains(weekday)) return false;
  int y = 0;
  int m = 0;
  int d = 0;
  CivilFromDays(day, y, m, d);
  std::array<char, 32> date{};
  std::snprintf(date.data(), date.size(), "%04d-%02d-%02d", y, m, d);
  return !c.holidays.contains(date.data());
}

// "HH:MM" -> minutes after midnight, or -1.
int ParseClock(const json::value& v) {
  if (!v.is_string() || v.get_string().size() != 5 || v.get_string()[2] != ':') return -1;
  const std::string s(v.get_string());
  if (!std::isdigit(static_cast<unsigned char>(s[0])) ||
      !std::isdigit(static_cast<unsigned char>(s[1])) ||
      !std::isdigit(static_cast<unsigned char>(s[3])) ||
      !std::isdigit(static_cast<unsigned char>(s[4]))) {
    return -1;
  }
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return -1;
  return h * 60 + m;
}

std::string FormatClock(int minutes) {
  std::array<char, 32> out{};
  std::snprintf(out.data(), out.size(), "%02d:%02d", minutes / 60, minutes % 60);
  return out.data();
}

}  // namespace

WorkingCalendar ParseWorkingCalendar(const json::value& config) {
  WorkingCalendar c;
  FieldErrors errors;
  const json::object* o = config.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "the calendar is a JSON object");
  for (const auto& [key, value] : *o) {
    const std::string k(key);
    if (k == "utc_offset") {
      const json::string* s = value.if_string();
      int hours = 0;
      int minutes = 0;
      char sign = 0;
      if (s == nullptr || s->size() != 6 ||
          std::sscanf(s->c_str(), "%c%2d:%2d", &sign, &hours, &minutes) != 3 ||
          (sign != '+' && sign != '-') || hours > 14 || minutes > 59) {
        errors.Add(k, R"(must be an offset from UTC such as "+01:00" or "-05:00")");
      } else {
        c.utc_offset_minutes = (sign == '-' ? -1 : 1) * (hours * 60 + minutes);
      }
    } else if (k == "working_days") {
      c.working_days.clear();
      if (!value.is_array() || value.get_array().empty()) {
        errors.Add(k, "must be a non-empty list of ISO weekdays, 1 (Monday) to 7 (Sunday)");
        continue;
      }
      for (const auto& d : value.get_array()) {
        if (!d.is_int64() || d.get_int64() < 1 || d.get_int64() > 7) {
          errors.Add(k, "must be a non-empty list of ISO weekdays, 1 (Monday) to 7 (Sunday)");
          break;
        }
        c.working_days.insert(static_cast<int>(d.get_int64()));
      }
    } else if (k == "working_hours") {
      const json::object* h = value.if_object();
      const int start = h != nullptr && h->contains("start") ? ParseClock(h->at("start")) : -1;
      const int end = h != nullptr && h->contains("end") ? ParseClock(h->at("end")) : -1;
      if (start < 0 || end < 0 || end <= start || (h != nullptr && h->size() != 2)) {
        errors.Add(k, R"(must be {"start": "HH:MM", "end": "HH:MM"} with end after start)");
      } else {
        c.day_start_minute = start;
        c.day_end_minute = end;
      }
    } else if (k == "holidays") {
      if (!value.is_array()) {
        errors.Add(k, "must be a list of dates (YYYY-MM-DD)");
        continue;
      }
      for (const auto& d : value.get_array()) {
        std::optional<Timestamp> parsed = d.is_string() && d.get_string().size() == 10
                                              ? ParseTimestamp(d.get_string())
                                              : std::nullopt;
        if (!parsed) {
          errors.Add(k, "must be a list of dates (YYYY-MM-DD)");
          break;
        }
        c.holidays.insert(std::string(d.get_string()));
      }
    } else if (k == "response_targets") {
      const json::object* t = value.if_object();
      if (t == nullptr) {
        errors.Add(k, R"(must map tiers "1".."3" to {"hours": n} or {"days": n})");
        continue;
      }
      for (const auto& [tier, target] : *t) {
        const std::string field = k + "." + std::string(tier);
        if (tier != "1" && tier != "2" && tier != "3") {
          errors.Add(field, "tiers are 1, 2 and 3");
          continue;
        }
        const json::object* spec = target.if_object();
        if (spec == nullptr || spec->size() != 1 ||
            !(spec->contains("hours") || spec->contains("days") || spec->contains("minutes")) ||
            !spec->begin()->value().is_int64() || spec->begin()->value().get_int64() <= 0 ||
            spec->begin()->value().get_int64() > 100000) {
          errors.Add(
              field,
              R"(must be {"minutes": n}, {"hours": n} or {"days": n} (working time, n > 0))");
          continue;
        }
        c.targets_json[tier] = target;
      }
    } else {
      errors.Add(k, "unknown field");
    }
  }
  errors.ThrowIfAny("the calendar is invalid");
  // Targets in working minutes; a day is the configured working day's length.
  json::object targets{{"1", json::object{{"hours", 2}}},
                       {"2", json::object{{"days", 1}}},
                       {"3", json::object{{"days", 3}}}};
  for (const auto& [tier, target] : c.targets_json) targets[tier] = target;
  c.targets_json = targets;
  for (const auto& [tier, target] : targets) {
    const auto& [unit, n] = *target.as_object().begin();
    const std::int64_t count = n.as_int64();
    c.target_minutes[tier[0] - '0'] = unit == "minutes" ? count
                                      : unit == "hours" ? count * 60
                                                        : count * c.day_minutes();
  }
  return c;
}

json::object WorkingCalendarToJson(const WorkingCalendar& c) {
  json::array days;
  for (int d : c.working_days) days.emplace_back(d);
  json::array holidays;
  for (const auto& h : c.holidays) holidays.emplace_back(h);
  const int offset = std::abs(c.utc_offset_minutes);
  std::array<char, 32> utc{};
  std::snprintf(utc.data(), utc.size(), "%c%02d:%02d", c.utc_offset_minutes < 0 ? '-' : '+',
                offset / 60, offset % 60);
  json::object minutes;
  for (const auto& [tier, m] : c.target_minutes) minutes[std::to_string(tier)] = m;
  return {{"utc_offset", utc.data()},
          {"working_days", std::move(days)},
          {"working_hours", json::object{{"start", FormatClock(c.day_start_minute)},
                                         {"end", FormatClock(c.day_end_minute)}}},
          {"holidays", std::move(holidays)},
          {"response_targets", c.targets_json},
          {"response_target_minutes", std::move(minutes)}};
}

Timestamp AddWorkingMinutes(const WorkingCalendar& c, Timestamp start, std::int64_t minutes) {
  // Work in local minutes since the epoch; seconds are kept aside and added back.
  const std::int64_t local_micros = start.micros + c.utc_offset_minutes * kMicrosPerMinute;
  std::int64_t t = FloorDiv(local_micros, kMicrosPerMinute);
  const std::int64_t rest = local_micros - t * kMicrosPerMinute;
  std::int64_t remaining = minutes;
  // The seconds of the start count only when the clock was already running at the start.
  bool carry_rest = true;
  bool consumed = false;
  for (int guard = 0; guard < 20000; ++guard) {  // 20000 days: far beyond any target
    const std::int64_t day = FloorDiv(t, kMinutesPerDay);
    const std::int64_t open = day * kMinutesPerDay + c.day_start_minute;
    const std::int64_t close = day * kMinutesPerDay + c.day_end_minute;
    if (!IsWorkingDay(c, day) || t >= close) {
      t = (day + 1) * kMinutesPerDay + c.day_start_minute;
      carry_rest = carry_rest && consumed;
      continue;
    }
    if (t < open) {
      t = open;
      carry_rest = carry_rest && consumed;
    }
    if (remaining <= close - t) {
      t += remaining;
      break;
    }
    remaining -= close - t;
    consumed = true;
    t = (day + 1) * kMinutesPerDay + c.day_start_minute;
  }
  const std::int64_t micros = t * kMicrosPerMinute + (carry_rest ? rest : 0);
  return Timestamp{micros - c.utc_offset_minutes * kMicrosPerMinute};
}

Timestamp ResponseDue(const WorkingCalendar& c, int tier, Timestamp at) {
  auto it = c.target_minutes.find(tier);
  return AddWorkingMinutes(c, at, it == c.target_minutes.end() ? 0 : it->second);
}

}  // namespace cmdb::model
