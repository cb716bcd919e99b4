#pragma once
// Incidents (severity 1-4, support tier 1-3, new -> in_progress -> resolved -> closed) with
// response targets on the working-day calendar, their trace over the dependency graph, and
// the knowledge articles a trace offers once a lead approved them. A repository borrows one
// leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/ci_repository.hpp"
#include "model/timestamp.hpp"
#include "model/working_calendar.hpp"

namespace soci {
class session;
}

namespace cmdb::model {

class DependencyGraph;

struct Incident {
  std::int64_t id = 0;
  std::string title;
  std::string description;
  int severity = 3;
  int tier = 1;
  std::string state = "new";
  std::optional<std::string> assignee;
  std::vector<CiId> ci_ids;
  Timestamp started_at;
  Timestamp tier_since;
  Timestamp response_due;
  std::optional<Timestamp> responded_at;
  std::optional<std::string> resolution;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> resolved_at;
  std::optional<Timestamp> closed_at;
};
boost::json::object IncidentToJson(const Incident& incident, Timestamp now);

struct IncidentFilter {
  std::optional<std::string> state;
  std::optional<CiId> ci;
  std::optional<int> severity;
  std::optional<int> tier;
  std::int64_t after = 0;
  int limit = kDefaultPageSize;
};

struct TraceOptions {
  int lookback_hours = 72;
  // The in-memory graph and when it last changed: the trace uses it when nothing changed
  // since the incident started, and the graph rebuilt from history otherwise.
  const DependencyGraph* current = nullptr;
  Timestamp current_since;
};

class IncidentRepository {
 public:
  explicit IncidentRepository(soci::session& sql) : sql_(sql) {}

  WorkingCalendar Calendar();
  // Validates and stores the calendar; open incidents keep the due times they were given.
  WorkingCalendar PutCalendar(const boost::json::value& config);

  // kValidationFailed naming every bad field (title, severity, tier, ci_ids, started_at, ...).
  Incident Create(const boost::json::value& body, const WriteContext& ctx);
  std::optional<Incident> Find(std::int64_t id);
  std::vector<Incident> List(const IncidentFilter& filter);  // up to limit + 1

  // "assign" ({"assignee"}), "escalate" ({"reason"} required; tier 3 is the last), "resolve"
  // ({"resolution"}), "close". kConflict naming the allowed actions; kValidationFailed for a
  // bad body; kVersionMismatch for a stale If-Match.
  Incident Act(std::int64_t id, std::string_view action, const boost::json::object& body,
               std::optional<std::int64_t> if_match, const WriteContext& ctx);
  boost::json::array Events(std::int64_t id);

  // Services reached as of the incident's start, suspect changes ranked by graph distance and
  // recency with a reason each, open drift and approved knowledge on the CIs involved.
  boost::json::object Trace(const Incident& incident, const TraceOptions& options);

 private:
  soci::session& sql_;
};

// Whether `action` is allowed for an incident in `state` at `tier`.
bool IncidentActionAllowed(std::string_view state, int tier, std::string_view action);
// The actions allowed in an incident's state, comma separated, or "none".
std::string AllowedIncidentActions(std::string_view state, int tier);

struct Article {
  std::int64_t id = 0;
  std::string title;
  std::string body;
  std::vector<CiId> ci_ids;
  std::string state = "draft";
  std::optional<std::string> approved_by;
  std::optional<Timestamp> approved_at;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object ArticleToJson(const Article& article);

struct ArticleFilter {
  std::optional<std::string> q;  // words, all of which must appear in title or body
  std::optional<std::string> state;
  std::optional<CiId> ci;
  std::int64_t after = 0;
  int limit = kDefaultPageSize;
};

class KnowledgeRepository {
 public:
  explicit KnowledgeRepository(soci::session& sql) : sql_(sql) {}
  Article Create(const boost::json::value& body, const WriteContext& ctx);
  std::optional<Article> Find(std::int64_t id);
  std::vector<Article> List(const ArticleFilter& filter);  // up to limit + 1
  // draft -> approved; kConflict when already approved.
  Article Approve(std::int64_t id, std::optional<std::int64_t> if_match, const WriteContext& ctx);

 private:
  soci::session& sql_;
};

}  // namespace cmdb::model
