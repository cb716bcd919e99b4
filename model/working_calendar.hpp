#pragma once
// Working time: which minutes count towards an incident's response target. A week of working
// days with one span of working hours per day, at a fixed offset from UTC, minus holidays.
// Pure and immutable once parsed; thread-safe.

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

struct WorkingCalendar {
  int utc_offset_minutes = 0;                 // local time = UTC + offset (no daylight saving)
  std::set<int> working_days{1, 2, 3, 4, 5};  // ISO weekdays: 1 = Monday ... 7 = Sunday
  int day_start_minute = 9 * 60;              // local minutes after midnight
  int day_end_minute = 17 * 60;
  std::set<std::string> holidays;  // local dates, "2026-12-25"
  // Response target per tier, in working minutes (a "day" is one working day's length).
  std::map<int, std::int64_t> target_minutes{{1, 2 * 60}, {2, 8 * 60}, {3, 3 * 8 * 60}};
  // The targets as configured, for display: {"1": {"hours": 2}, "2": {"days": 1}, ...}.
  boost::json::object targets_json;

  int day_minutes() const { return day_end_minute - day_start_minute; }
};

// Parses {"utc_offset": "+01:00", "working_days": [1..7], "working_hours": {"start": "09:00",
// "end": "17:00"}, "holidays": ["2026-12-25"], "response_targets": {"1": {"hours": 2},
// "2": {"days": 1}, "3": {"days": 3}}}; every field optional. Throws kValidationFailed
// naming every bad field.
WorkingCalendar ParseWorkingCalendar(const boost::json::value& config);
boost::json::object WorkingCalendarToJson(const WorkingCalendar& calendar);

// `start` plus `minutes` of working time: the clock runs only on working days, inside working
// hours, and not on holidays; a start outside working time waits for the next working minute.
Timestamp AddWorkingMinutes(const WorkingCalendar& calendar, Timestamp start, std::int64_t minutes);

// When a response is due for an incident of `tier` that reached that tier at `at`.
Timestamp ResponseDue(const WorkingCalendar& calendar, int tier, Timestamp at);

}  // namespace cmdb::model
