#pragma once
// Configuration audit: rules as data (what a rule's JSON holds, checked for shape here and
// compiled by audit/rule_engine), rule sets, runs with their counts per rule, scores and
// findings with waivers. Value types and pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/job_state.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

enum class AuditKpi { kCompleteness, kCorrectness, kCompliance, kRelationships };
inline constexpr std::array<EnumName<AuditKpi>, 4> kAuditKpiNames{{
    {AuditKpi::kCompleteness, "completeness"},
    {AuditKpi::kCorrectness, "correctness"},
    {AuditKpi::kCompliance, "compliance"},
    {AuditKpi::kRelationships, "relationships"},
}};
inline std::string_view AuditKpiName(AuditKpi k) { return NameIn(kAuditKpiNames, k); }

enum class AuditSeverity { kLow, kMedium, kHigh, kCritical };
inline constexpr std::array<EnumName<AuditSeverity>, 4> kAuditSeverityNames{{
    {AuditSeverity::kLow, "low"},
    {AuditSeverity::kMedium, "medium"},
    {AuditSeverity::kHigh, "high"},
    {AuditSeverity::kCritical, "critical"},
}};
inline std::string_view AuditSeverityName(AuditSeverity s) {
  return NameIn(kAuditSeverityNames, s);
}

// What one rule says of one subject (a CI, or a discovery source for the rules about
// unmatched discovered assets).
enum class AuditOutcome : std::uint8_t { kPass, kFail, kNotApplicable, kError };
inline constexpr std::array<EnumName<AuditOutcome>, 4> kAuditOutcomeNames{{
    {AuditOutcome::kPass, "pass"},
    {AuditOutcome::kFail, "fail"},
    {AuditOutcome::kNotApplicable, "not_applicable"},
    {AuditOutcome::kError, "error"},
}};
inline std::string_view AuditOutcomeName(AuditOutcome o) { return NameIn(kAuditOutcomeNames, o); }

// What a rule is about: CIs (the default), or discovery sources (scope {"subject":
// "discovery_source"}), whose latest run's unmatched observations count as failures.
enum class AuditSubject : std::uint8_t { kCi, kDiscoverySource };
inline constexpr std::array<EnumName<AuditSubject>, 2> kAuditSubjectNames{{
    {AuditSubject::kCi, "ci"},
    {AuditSubject::kDiscoverySource, "discovery_source"},
}};

struct AuditRule {
  std::string key;
  std::string title;
  AuditKpi kpi = AuditKpi::kCompleteness;
  AuditSeverity severity = AuditSeverity::kMedium;
  boost::json::object scope;
  boost::json::value check;
  std::string message;  // a template: {{name}}, {{id}}, {{type}}, {{owner}}, {{attr.<name>}}
  std::string description;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
  std::string updated_by;
};
// What the rule says (key, title, description, kpi, severity, scope, check, message): the body
// a version of it keeps. AuditRuleToJson adds its version, times and writer.
boost::json::object AuditRuleBodyJson(const AuditRule& rule);
boost::json::object AuditRuleToJson(const AuditRule& rule);

// Reads a rule's body (PUT with `key` from the path, or POST with it in the body). The shape
// of the fields is checked here; what `scope` and `check` say is audit::Compile's to check.
// Throws Error{kInvalidArgument} when `body` is not an object.
AuditRule AuditRuleFromJson(const boost::json::value& body, std::optional<std::string> key,
                            FieldErrors& errors);
// A rule key: lower-case letters, digits, '-' and '_', 1-63 characters, a letter first.
bool IsValidRuleKey(std::string_view key);

struct AuditRuleSet {
  std::string name;
  std::string description;
  std::vector<std::string> rules;
  std::int64_t version = 1;
  Timestamp updated_at;
  std::string updated_by;
};
boost::json::object AuditRuleSetToJson(const AuditRuleSet& set);
AuditRuleSet AuditRuleSetFromJson(const boost::json::value& body, std::string name,
                                  FieldErrors& errors);

struct AuditCounts {
  std::int64_t pass = 0;
  std::int64_t fail = 0;
  std::int64_t not_applicable = 0;
  std::int64_t error = 0;
  void Add(AuditOutcome outcome, std::int64_t n = 1);
  AuditCounts& operator+=(const AuditCounts& other);
  // passed / (passed + failed); nullopt when nothing passed or failed.
  std::optional<double> Score() const;
};
boost::json::object AuditCountsToJson(const AuditCounts& counts);

enum class AuditTrigger { kApi, kSchedule, kImport, kDiscovery };
inline constexpr std::array<EnumName<AuditTrigger>, 4> kAuditTriggerNames{{
    {AuditTrigger::kApi, "api"},
    {AuditTrigger::kSchedule, "schedule"},
    {AuditTrigger::kImport, "import"},
    {AuditTrigger::kDiscovery, "discovery"},
}};

struct AuditRun {
  std::int64_t id = 0;
  std::string set;
  std::optional<Timestamp> as_of;  // evaluated as the estate was then; none: the present
  AuditTrigger trigger = AuditTrigger::kApi;
  JobState state = JobState::kQueued;
  std::string submitted_by;
  std::map<std::string, AuditCounts> rules;  // per rule key, once succeeded
  AuditCounts total;
  std::int64_t subjects = 0;  // CIs (and sources) evaluated
  std::optional<std::string> phase;
  std::int64_t progress_done = 0;
  std::optional<std::int64_t> progress_total;
  std::optional<std::string> error;
  std::optional<boost::json::object> timings;
  Timestamp queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  // The instant the run evaluated: as_of, or when it read the estate.
  std::optional<Timestamp> evaluated_at;
};
boost::json::object AuditRunToJson(const AuditRun& run);

enum class AuditFindingState { kOpen, kWaived, kResolved };
inline constexpr std::array<EnumName<AuditFindingState>, 3> kAuditFindingStateNames{{
    {AuditFindingState::kOpen, "open"},
    {AuditFindingState::kWaived, "waived"},
    {AuditFindingState::kResolved, "resolved"},
}};

struct AuditFinding {
  std::int64_t id = 0;
  std::string rule;
  AuditSubject subject = AuditSubject::kCi;
  std::int64_t subject_id = 0;  // the CI's id, or the discovery source's
  std::optional<std::string> ci_type;
  std::optional<std::string> owner;
  std::string name;  // the subject's name when it last failed
  std::string message;
  AuditFindingState state = AuditFindingState::kOpen;  // a waiver past its end reads as open
  std::int64_t first_run_id = 0;
  std::int64_t last_run_id = 0;
  Timestamp first_failed_at;
  Timestamp last_failed_at;
  std::optional<std::int64_t> resolved_run_id;
  std::optional<Timestamp> resolved_at;
  std::optional<std::string> waived_by;
  std::optional<std::string> waiver_reason;
  std::optional<Timestamp> waived_until;
  std::optional<Timestamp> waived_at;
  std::int64_t version = 1;
};
boost::json::object AuditFindingToJson(const AuditFinding& finding);

struct Waiver {
  std::string reason;
  Timestamp until;
};
// Reads {"reason", "until"}: a non-blank reason, an instant in the future (`now`) and at most
// a year ahead.
Waiver WaiverFromJson(const boost::json::value& body, Timestamp now, FieldErrors& errors);

// A point of a score series: one run, one group.
struct AuditScorePoint {
  std::int64_t run_id = 0;
  Timestamp at;  // the instant the run evaluated
  std::string group;
  AuditCounts counts;
};

}  // namespace cmdb::model
