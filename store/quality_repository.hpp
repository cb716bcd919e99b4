#pragma once
// The quality review in PostgreSQL: key users, callbacks, complaints with their events, and
// second line's plans (changes linked to incidents). A repository borrows one leased session;
// not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "model/history.hpp"
#include "model/paging.hpp"
#include "model/quality.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct CallbackFilter {
  std::optional<model::CallbackKind> kind;
  std::optional<std::int64_t> incident;
  std::optional<std::int64_t> key_user;
  std::optional<std::int64_t> service;
  std::optional<std::string> caller;
  std::optional<model::Timestamp> from;  // called_at >= from
  std::optional<model::Timestamp> to;    // called_at < to
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

struct ComplaintFilter {
  std::optional<model::ComplaintState> state;
  std::optional<bool> overdue;  // at `now`
  std::optional<std::string> owner;
  std::optional<std::string> handler;
  model::Timestamp now;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

class QualityRepository {
 public:
  explicit QualityRepository(DbSession& db) : db_(db) {}

  // Key users. kValidationFailed naming service_ids[i] that are not business services, or a
  // name taken (case-insensitively).
  model::KeyUser CreateKeyUser(const model::KeyUser& draft, const model::WriteContext& ctx);
  std::optional<model::KeyUser> FindKeyUser(std::int64_t id);
  // Replaces the fields `body` names (name, contact, service_ids, active); kVersionMismatch.
  model::KeyUser PatchKeyUser(std::int64_t id, const boost::json::value& body,
                              std::optional<std::int64_t> if_match, const model::WriteContext& ctx);
  std::vector<model::KeyUser> ListKeyUsers(std::optional<std::int64_t> service,
                                           std::optional<bool> active, std::int64_t after,
                                           int limit);  // up to limit + 1

  // A callback after incident `incident_id` (kNotFound; 422 naming incident_id while it is not
  // resolved or closed, called_at before its resolution), or to a key user (422 naming
  // key_user_id when unknown or inactive, service_id when not one of theirs).
  model::Callback CreateCallback(const model::Callback& draft, const model::WriteContext& ctx);
  std::vector<model::Callback> ListCallbacks(const CallbackFilter& filter);  // up to limit + 1

  // Complaints. Create checks the incident and service named exist (422 naming them).
  model::Complaint CreateComplaint(const model::Complaint& draft, const model::WriteContext& ctx);
  std::optional<model::Complaint> FindComplaint(std::int64_t id);
  std::vector<model::Complaint> ListComplaints(const ComplaintFilter& filter);  // limit + 1
  // One lifecycle step under the row lock, with its event. kNotFound, kConflict (a skipped or
  // repeated step), kVersionMismatch.
  model::Complaint StepComplaint(std::int64_t id, std::string_view action,
                                 const model::ComplaintStep& step,
                                 std::optional<std::int64_t> if_match,
                                 const model::WriteContext& ctx);
  std::vector<model::ComplaintEvent> ComplaintEvents(std::int64_t id);

  // Links change `link.change_id` to incident `incident_id` with its promised date (kNotFound
  // for the incident; 422 naming change_id when unknown, promised_by when in the past); a
  // second link of the same pair updates the promise.
  model::IncidentChange LinkChange(std::int64_t incident_id, const model::IncidentChange& link,
                                   const model::WriteContext& ctx);
  std::vector<model::IncidentChange> Plans(std::int64_t incident_id);

  // For the reports: calls made in [from, to); active key users; complaints not closed before
  // `since`; the plans of `incidents`.
  std::vector<model::Callback> CallbacksBetween(model::Timestamp from, model::Timestamp to);
  std::vector<model::KeyUser> ActiveKeyUsers();
  std::vector<model::Complaint> ComplaintsLiveSince(model::Timestamp since,
                                                    model::Timestamp before);
  std::vector<model::IncidentChange> PlansOf(const std::vector<std::int64_t>& incidents);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
