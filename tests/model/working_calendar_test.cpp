#include "model/working_calendar.hpp"

#include <set>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

Timestamp T(const char* text) { return *ParseTimestamp(text); }
std::string F(Timestamp t) { return FormatTimestamp(t); }

TEST(WorkingCalendar, TierTwoGetsOneWorkingDay) {
  WorkingCalendar c;  // Mon-Fri 09:00-17:00 UTC; tier 1: 2 h, tier 2: 1 day, tier 3: 3 days
  EXPECT_EQ(F(ResponseDue(c, 2, T("2026-11-30T10:00:00Z"))), "2026-12-01T10:00:00Z");  // Mon -> Tue
  EXPECT_EQ(F(ResponseDue(c, 2, T("2026-11-27T15:00:00Z"))), "2026-11-30T15:00:00Z");  // Fri -> Mon
  EXPECT_EQ(F(ResponseDue(c, 3, T("2026-11-25T12:00:00Z"))),
            "2026-11-30T12:00:00Z");  // Wed + 3 days
}

TEST(WorkingCalendar, WeekendsAndHoursOutsideTheDayWaitForTheNextWorkingMinute) {
  WorkingCalendar c;
  EXPECT_EQ(F(ResponseDue(c, 1, T("2026-11-28T11:00:00Z"))), "2026-11-30T11:00:00Z");  // Saturday
  EXPECT_EQ(F(ResponseDue(c, 1, T("2026-11-25T18:30:00Z"))),
            "2026-11-26T11:00:00Z");  // after hours
  EXPECT_EQ(F(ResponseDue(c, 1, T("2026-11-25T07:00:00Z"))),
            "2026-11-25T11:00:00Z");  // before hours
  EXPECT_EQ(F(ResponseDue(c, 1, T("2026-11-25T16:00:00Z"))),
            "2026-11-26T10:00:00Z");  // spans the night
  EXPECT_EQ(F(ResponseDue(c, 1, T("2026-11-25T15:00:00Z"))),
            "2026-11-25T17:00:00Z");  // ends at close
  EXPECT_EQ(F(AddWorkingMinutes(c, T("2026-11-25T10:00:30Z"), 5)), "2026-11-25T10:05:30Z");
  // Seconds already on the clock carry over the night; a start outside hours waits whole.
  EXPECT_EQ(F(AddWorkingMinutes(c, T("2026-11-25T16:59:30Z"), 2)), "2026-11-26T09:01:30Z");
  EXPECT_EQ(F(AddWorkingMinutes(c, T("2026-11-25T18:00:30Z"), 2)), "2026-11-26T09:02:00Z");
}

TEST(WorkingCalendar, HolidaysOffsetsAndCustomTargets) {
  WorkingCalendar c = ParseWorkingCalendar(boost::json::parse(R"({
      "holidays": ["2026-12-25"], "working_hours": {"start": "08:00", "end": "18:00"},
      "response_targets": {"1": {"minutes": 30}, "3": {"days": 2}}})"));
  EXPECT_EQ(c.target_minutes.at(1), 30);
  EXPECT_EQ(c.target_minutes.at(2), 600);  // one working day of 10 hours
  EXPECT_EQ(c.target_minutes.at(3), 1200);
  // Thursday 24th, 17:00: one hour left that day, Friday 25th is a holiday.
  EXPECT_EQ(F(ResponseDue(c, 2, T("2026-12-24T17:00:00Z"))), "2026-12-28T17:00:00Z");
  WorkingCalendar paris = ParseWorkingCalendar(boost::json::parse(R"({"utc_offset": "+01:00"})"));
  // 07:30 UTC is 08:30 in Paris: the clock starts at 09:00 local (08:00 UTC).
  EXPECT_EQ(F(ResponseDue(paris, 1, T("2026-11-30T07:30:00Z"))), "2026-11-30T10:00:00Z");
  WorkingCalendar weekend_shift =
      ParseWorkingCalendar(boost::json::parse(R"({"working_days": [6, 7]})"));
  EXPECT_EQ(F(ResponseDue(weekend_shift, 1, T("2026-11-27T10:00:00Z"))), "2026-11-28T11:00:00Z");
}

TEST(WorkingCalendar, InvalidConfigurationNamesEveryField) {
  try {
    ParseWorkingCalendar(boost::json::parse(R"({"utc_offset": "CET", "working_days": [0],
        "working_hours": {"start": "18:00", "end": "09:00"}, "holidays": ["christmas"],
        "response_targets": {"4": {"hours": 1}, "2": {"weeks": 1}}, "timezone": "x"})"));
    FAIL() << "accepted";
  } catch (const Error& e) {
    std::set<std::string> fields;
    for (const auto& f : e.field_errors()) fields.insert(f.field);
    EXPECT_EQ(fields,
              (std::set<std::string>{"utc_offset", "working_days", "working_hours", "holidays",
                                     "response_targets.4", "response_targets.2", "timezone"}));
  }
}

}  // namespace
}  // namespace cmdb::model
