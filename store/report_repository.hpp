#pragma once
// What the reports read, as domain values: the month of the operations review, inventory
// groups and rows, the compare of two instants, drift, audit scores and the change calendar.
// Report builders (reports/) turn them into figures. A repository borrows one leased session;
// not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/incident.hpp"
#include "model/quality.hpp"
#include "model/timestamp.hpp"
#include "model/working_calendar.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

// An incident with every event, for the figures of a month.
struct ReportIncident {
  model::Incident incident;
  std::vector<model::IncidentEvent> events;  // in order
};

struct ReportArticle {
  std::int64_t id = 0;
  std::string created_by;
  model::Timestamp created_at;
  std::optional<std::string> approved_by;
  std::optional<model::Timestamp> approved_at;
};

// A change that ended (completed, failed, rejected, cancelled) in the month.
struct ReportChange {
  std::int64_t id = 0;
  std::string title;
  std::string state;
  model::Timestamp ended_at;
  std::string requested_by;
  // Incidents that started within 72 hours after it completed on a CI of its impact set.
  std::vector<std::int64_t> incidents_within_72h;
};

struct ReportDriftCounts {
  std::int64_t opened = 0;
  std::int64_t resolved = 0;
  std::int64_t accepted = 0;
  std::int64_t ignored = 0;
  std::int64_t open_at_end = 0;
  std::int64_t unauthorised_open_at_end = 0;
};

struct ReportAuditScore {
  model::Timestamp at;
  std::int64_t run_id = 0;
  std::int64_t pass = 0;
  std::int64_t fail = 0;
};

struct OperationsData {
  model::Timestamp start;  // the month, [start, end)
  model::Timestamp end;
  model::WorkingCalendar calendar;
  std::vector<ReportIncident> incidents;
  std::vector<model::IncidentChange> plans;  // of those incidents
  std::vector<model::Callback> callbacks;    // called within the month
  // Resolver of every incident a callback of the month is about (the last resolve's `by`).
  std::map<std::int64_t, std::string> resolvers;
  std::vector<model::KeyUser> key_users;     // active
  std::vector<model::Complaint> complaints;  // not closed before the month started
  std::vector<ReportArticle> articles;       // created or approved within the month
  std::vector<ReportChange> changes;
  ReportDriftCounts drift;
  std::optional<ReportAuditScore> audit_start;        // the baseline set's latest run before start
  std::optional<ReportAuditScore> audit_end;          // ... before end
  std::map<std::int64_t, std::string> service_names;  // every business service
};

class ReportRepository {
 public:
  explicit ReportRepository(DbSession& db) : db_(db) {}

  // Everything the operations review of [start, end) reads, in one REPEATABLE READ snapshot.
  OperationsData LoadOperations(model::Timestamp start, model::Timestamp end);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
