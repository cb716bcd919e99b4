#pragma once
// Incidents in PostgreSQL with their events and the service calendar their response targets
// run on. A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/history.hpp"
#include "model/incident.hpp"
#include "model/paging.hpp"
#include "model/working_calendar.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct IncidentFilter {
  std::optional<model::IncidentState> state;
  std::optional<model::CiId> ci;
  std::optional<int> severity;
  std::optional<int> tier;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

class IncidentRepository {
 public:
  explicit IncidentRepository(DbSession& db) : db_(db) {}

  model::WorkingCalendar Calendar();
  // Validates and stores the calendar; open incidents keep the due times they were given.
  model::WorkingCalendar PutCalendar(const boost::json::value& config);

  // Adds to `errors` the CIs of `draft` that do not exist.
  void Validate(const model::Incident& draft, model::FieldErrors& errors);
  // Stores a validated incident and its creation event; its response is due by the calendar.
  model::Incident Create(const model::Incident& draft, const model::WriteContext& ctx);
  std::optional<model::Incident> Find(std::int64_t id);
  std::vector<model::Incident> List(const IncidentFilter& filter);  // up to limit + 1

  // Applies an action (see model::ApplyIncidentAction) under the incident's row lock, with its
  // event. kNotFound; kConflict naming the allowed actions; kVersionMismatch.
  model::Incident Act(std::int64_t id, std::string_view action,
                      const model::IncidentActionRequest& request,
                      std::optional<std::int64_t> if_match, const model::WriteContext& ctx);
  std::vector<model::IncidentEvent> Events(std::int64_t id);
  // For the reports: the incidents of `ids` (by id) and their events (by incident, in order).
  std::vector<model::Incident> ListByIds(const std::vector<std::int64_t>& ids);
  std::vector<std::pair<std::int64_t, model::IncidentEvent>> EventsOf(
      const std::vector<std::int64_t>& ids);

  // Open incidents (new, in progress) on any CI of `cis`, most severe first, at most 1000.
  std::vector<model::Incident> OpenOn(const std::vector<model::CiId>& cis);
  // The CIs of `cis` that an open incident names.
  std::set<model::CiId> CisWithOpenIncidents(const std::vector<model::CiId>& cis);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
