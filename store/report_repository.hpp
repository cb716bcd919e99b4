#pragma once
// What the reports read, as domain values: the month of the operations review, inventory
// groups and rows, the compare of two instants, drift, audit scores and the change calendar.
// Report builders (reports/) turn them into figures. A repository borrows one leased session;
// not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  std::vector<std::int64_t> impact;  // the frozen impact set, or the change's CIs
};

// An incident's start and CIs, for what followed a change.
struct StartedIncident {
  std::int64_t id = 0;
  model::Timestamp started_at;
  std::vector<std::int64_t> ci_ids;
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
  std::vector<StartedIncident> started;  // incidents started in [start, end + 72 h), by start
  ReportDriftCounts drift;
  std::optional<ReportAuditScore> audit_start;        // the baseline set's latest run before start
  std::optional<ReportAuditScore> audit_end;          // ... before end
  std::map<std::int64_t, std::string> service_names;  // every business service
};

// The CIs of one group of the inventory, by status.
struct InventoryGroup {
  std::string key;  // "" for CIs without an owner (group_by owner) or without tags (tag)
  std::map<std::string, std::int64_t> by_status;
  std::int64_t count = 0;
};

// One CI as the inventory lists it (as of an instant: its version then).
struct InventoryRow {
  std::int64_t id = 0;
  std::string type;
  std::string name;
  std::string status;
  std::optional<std::string> owner;
  std::string tags_json;        // a JSON array
  std::string attributes_json;  // a JSON object
  std::int64_t version = 0;
  model::Timestamp since;  // when this version began
};

// A CI or relation at two instants (nullopt: it did not exist then).
struct ComparedCi {
  std::int64_t id = 0;
  std::optional<model::ConfigurationItem> before;
  std::optional<model::ConfigurationItem> after;
};
struct RelationState {
  std::string type;
  std::int64_t from_ci = 0;
  std::int64_t to_ci = 0;
  boost::json::object attributes;
};
struct ComparedRelation {
  std::int64_t id = 0;
  std::optional<RelationState> before;
  std::optional<RelationState> after;
};

struct DriftRow {
  std::int64_t id = 0;
  std::int64_t ci_id = 0;
  std::string ci_name;
  std::string ci_type;
  std::optional<std::string> owner;
  std::string attribute;
  std::string state;
  bool authorized = false;
  std::optional<std::string> source;  // the discovery source that found it
  model::Timestamp detected_at;
  std::optional<model::Timestamp> closed_at;
  std::string expected_json;
  std::string actual_json;
};

struct AuditScoreRow {
  model::Timestamp at;
  std::int64_t run_id = 0;
  std::string group_kind;
  std::string group_key;
  std::int64_t pass = 0;
  std::int64_t fail = 0;
};

struct CalendarChange {
  std::int64_t id = 0;
  std::string title;
  std::string risk;
  std::string state;
  model::Timestamp planned_start;
  model::Timestamp planned_end;
  std::string requested_by;
  std::vector<std::int64_t> ci_ids;
  std::vector<std::int64_t> impact;  // the frozen impact set, or the change's CIs before submit
};

// The CIs of the inventory, read a batch at a time in one snapshot through a cursor: constant
// memory whatever the estate's size. Holds a pooled connection until destroyed. Not
// thread-safe (one caller at a time, from any thread).
class InventoryCursor {
 public:
  InventoryCursor(DbSession session, std::optional<model::Timestamp> as_of,
                  std::optional<std::string> type);
  ~InventoryCursor();
  InventoryCursor(const InventoryCursor&) = delete;
  InventoryCursor& operator=(const InventoryCursor&) = delete;
  // Up to `batch` more rows into `rows` (cleared first); false once none are left.
  bool Next(std::vector<InventoryRow>& rows, std::size_t batch);

 private:
  DbSession session_;
  bool open_ = false;
};

// An InventoryCursor that a streamed response owns, released as soon as the last row is read.
struct ReportCursorHolder {
  std::unique_ptr<InventoryCursor> cursor;
};

class ReportRepository {
 public:
  explicit ReportRepository(DbSession& db) : db_(db) {}

  // Everything the operations review of [start, end) reads, in one REPEATABLE READ snapshot.
  OperationsData LoadOperations(model::Timestamp start, model::Timestamp end);

  // The inventory (now, or as of an instant from the versions) counted by `group_by`: type,
  // owner, status or tag (a CI counts once per tag).
  std::vector<InventoryGroup> InventoryGroups(std::optional<model::Timestamp> as_of,
                                              const std::string& group_by,
                                              const std::optional<std::string>& type);

  // Every CI and relation whose record changed in (from, to], with its state at both instants;
  // CIs narrowed to `type` (at either instant), relations to `relation_type`.
  std::vector<ComparedCi> CompareCis(model::Timestamp from, model::Timestamp to,
                                     const std::optional<std::string>& type);
  std::vector<ComparedRelation> CompareRelations(model::Timestamp from, model::Timestamp to,
                                                 const std::optional<std::string>& relation_type);

  // Drift findings detected in [from, to), or still open at `to` when `open_at_end`.
  std::vector<DriftRow> Drift(model::Timestamp from, model::Timestamp to);

  // The score rows of `set` in [from, to) (every group kind), in time order.
  std::vector<AuditScoreRow> AuditScores(const std::string& set, model::Timestamp from,
                                         model::Timestamp to);

  // Changes whose planned window overlaps [from, to).
  std::vector<CalendarChange> ChangesBetween(model::Timestamp from, model::Timestamp to);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
