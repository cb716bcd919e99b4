#include "store/quality_repository.hpp"

#include <algorithm>

#include <boost/json/object.hpp>

#include "model/json.hpp"
#include "store/ci_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::Callback;
using model::Complaint;
using model::ComplaintState;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
using model::KeyUser;
using model::Timestamp;
using model::WriteContext;
namespace json = boost::json;

namespace {

constexpr const char* kBusinessService = "business_service";

const char* const kKeyUserColumns =
    "id, name, contact, service_ids::text, active, created_by, version, cmdb_us(created_at), "
    "cmdb_us(updated_at)";

KeyUser KeyUserFromRow(const soci::row& r) {
  KeyUser u;
  u.id = sql::Int(r, 0);
  u.name = sql::Text(r, 1);
  u.contact = sql::Text(r, 2);
  u.service_ids = sql::Ids(r, 3);
  u.active = sql::Bool(r, 4);
  u.created_by = sql::Text(r, 5);
  u.version = sql::Int(r, 6);
  u.created_at = sql::Time(r, 7);
  u.updated_at = sql::Time(r, 8);
  return u;
}

const char* const kCallbackColumns =
    "id, kind, incident_id, key_user_id, service_id, cmdb_us(called_at), reached, score, "
    "comment, caller, cmdb_us(created_at)";

Callback CallbackFromRow(const soci::row& r) {
  Callback c;
  c.id = sql::Int(r, 0);
  c.kind = model::ValueIn(model::kCallbackKindNames, sql::Text(r, 1))
               .value_or(model::CallbackKind::kIncident);
  c.incident_id = sql::OptionalInt(r, 2);
  c.key_user_id = sql::OptionalInt(r, 3);
  c.service_id = sql::OptionalInt(r, 4);
  c.called_at = sql::Time(r, 5);
  c.reached = sql::Bool(r, 6);
  if (auto score = sql::OptionalInt(r, 7)) c.score = static_cast<int>(*score);
  c.comment = sql::Text(r, 8);
  c.caller = sql::Text(r, 9);
  c.created_at = sql::Time(r, 10);
  return c;
}

const char* const kComplaintColumns =
    "id, title, description, complainant, incident_id, service_id, handler, state, owner, "
    "cmdb_us(due_at), note, created_by, version, cmdb_us(created_at), cmdb_us(updated_at), "
    "cmdb_us(closed_at)";

ComplaintState ComplaintStateFrom(const std::string& name) {
  std::optional<ComplaintState> state = model::ValueIn(model::kComplaintStateNames, name);
  if (!state) throw Error(ErrorCode::kInternal, "unknown complaint state '" + name + "' stored");
  return *state;
}

Complaint ComplaintFromRow(const soci::row& r) {
  Complaint c;
  c.id = sql::Int(r, 0);
  c.title = sql::Text(r, 1);
  c.description = sql::Text(r, 2);
  c.complainant = sql::Text(r, 3);
  c.incident_id = sql::OptionalInt(r, 4);
  c.service_id = sql::OptionalInt(r, 5);
  c.handler = sql::OptionalText(r, 6);
  c.state = ComplaintStateFrom(sql::Text(r, 7));
  c.owner = sql::Text(r, 8);
  c.due_at = sql::Time(r, 9);
  c.note = sql::Text(r, 10);
  c.created_by = sql::Text(r, 11);
  c.version = sql::Int(r, 12);
  c.created_at = sql::Time(r, 13);
  c.updated_at = sql::Time(r, 14);
  c.closed_at = sql::OptionalTime(r, 15);
  return c;
}

// Adds to `errors` the ids of `ids` that are not business services (`field`[i]).
void CheckServices(DbSession& db, const std::vector<std::int64_t>& ids, const std::string& field,
                   bool indexed, FieldErrors& errors) {
  FieldErrors missing;
  const std::map<model::CiId, std::string> types = CiRepository(db).CheckExist(ids, field, missing);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string name = indexed ? field + "[" + std::to_string(i) + "]" : field;
    auto type = types.find(ids[i]);
    if (type == types.end()) {
      errors.Add(name, "CI " + std::to_string(ids[i]) + " does not exist");
    } else if (type->second != kBusinessService) {
      errors.Add(name, "CI " + std::to_string(ids[i]) + " is a " + type->second +
                           ", not a business_service");
    }
  }
}

void CheckNameFree(DbSession& db, const std::string& name, std::int64_t except) {
  bool taken = false;
  sql::ForEachRow(
      db, "SELECT 1 FROM key_users WHERE lower(name) = lower($1) AND id <> $2",
      [&](const soci::row&) { taken = true; }, soci::use(name),
      soci::use(static_cast<long long>(except)));
  if (taken) throw Error(ErrorCode::kConflict, "a key user named '" + name + "' exists already");
}

const char* const kPlanQuery =
    "SELECT l.incident_id, l.change_id, cmdb_us(l.promised_by), cmdb_us(l.linked_at), "
    "l.linked_by, l.linked_tier, c.title, c.state, (SELECT cmdb_us(max(e.at)) FROM "
    "change_events e WHERE e.change_id = c.id AND e.to_state = 'completed') FROM "
    "incident_changes l JOIN changes c ON c.id = l.change_id";

model::IncidentChange PlanFromRow(const soci::row& r) {
  model::IncidentChange l;
  l.incident_id = sql::Int(r, 0);
  l.change_id = sql::Int(r, 1);
  l.promised_by = sql::Time(r, 2);
  l.linked_at = sql::Time(r, 3);
  l.linked_by = sql::Text(r, 4);
  if (auto tier = sql::OptionalInt(r, 5)) l.linked_tier = static_cast<int>(*tier);
  l.change_title = sql::Text(r, 6);
  l.change_state = sql::Text(r, 7);
  l.completed_at = sql::OptionalTime(r, 8);
  return l;
}

}  // namespace

KeyUser QualityRepository::CreateKeyUser(const KeyUser& draft, const WriteContext& ctx) {
  FieldErrors errors;
  CheckServices(db_, draft.service_ids, "service_ids", true, errors);
  errors.ThrowIfAny("the key user is invalid");
  Transaction tr(db_);
  CheckNameFree(db_, draft.name, 0);
  std::optional<KeyUser> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO key_users (name, contact, service_ids, active, created_by) VALUES "
                  "($1, $2, $3::bigint[], $4, $5) RETURNING ") +
          kKeyUserColumns,
      [&](const soci::row& r) { created = KeyUserFromRow(r); }, soci::use(draft.name),
      soci::use(draft.contact), soci::use(sql::IdArray(draft.service_ids)), soci::use(draft.active),
      soci::use(ctx.changed_by));
  tr.Commit();
  return *created;
}

std::optional<KeyUser> QualityRepository::FindKeyUser(std::int64_t id) {
  std::optional<KeyUser> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kKeyUserColumns + " FROM key_users WHERE id = $1",
      [&](const soci::row& r) { found = KeyUserFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

KeyUser QualityRepository::PatchKeyUser(std::int64_t id, const json::value& body,
                                        std::optional<std::int64_t> if_match,
                                        const WriteContext& /*ctx*/) {
  const json::object* patch = body.if_object();
  if (patch == nullptr)
    throw Error(ErrorCode::kInvalidArgument, "a key user patch is a JSON object");
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kKeyUserColumns + " FROM key_users WHERE id = $1 FOR UPDATE";
  const KeyUser current = LockVersioned(db_, lock, std::to_string(id), if_match,
                                        "key user " + std::to_string(id), KeyUserFromRow);
  json::object merged{{"name", current.name},
                      {"contact", current.contact},
                      {"service_ids", model::IdsToJson(current.service_ids)},
                      {"active", current.active}};
  for (const auto& [key, value] : *patch) merged[key] = value;
  FieldErrors errors;
  KeyUser next = model::KeyUserFromJson(merged, errors);
  if (errors.empty()) CheckServices(db_, next.service_ids, "service_ids", true, errors);
  errors.ThrowIfAny("the key user is invalid");
  CheckNameFree(db_, next.name, id);
  std::optional<KeyUser> updated;
  sql::ForEachRow(
      db_,
      std::string("UPDATE key_users SET name = $2, contact = $3, service_ids = $4::bigint[], "
                  "active = $5, version = version + 1, updated_at = clock_timestamp() WHERE id "
                  "= $1 RETURNING ") +
          kKeyUserColumns,
      [&](const soci::row& r) { updated = KeyUserFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(next.name), soci::use(next.contact),
      soci::use(sql::IdArray(next.service_ids)), soci::use(next.active));
  tr.Commit();
  return *updated;
}

std::vector<KeyUser> QualityRepository::ListKeyUsers(std::optional<std::int64_t> service,
                                                     std::optional<bool> active, std::int64_t after,
                                                     int limit) {
  const std::optional<long long> service_id = service;
  const std::optional<int> active_flag =
      active ? std::optional<int>(*active ? 1 : 0) : std::nullopt;
  std::vector<KeyUser> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kKeyUserColumns +
          " FROM key_users WHERE id > $1 AND ($2::bigint IS NULL OR service_ids @> "
          "ARRAY[$2::bigint]) AND ($3::integer IS NULL OR active = ($3 = 1)) ORDER BY id LIMIT $4",
      [&](const soci::row& r) { out.push_back(KeyUserFromRow(r)); },
      soci::use(static_cast<long long>(after)), soci::use(service_id), soci::use(active_flag),
      soci::use(limit + 1));
  return out;
}

Callback QualityRepository::CreateCallback(const Callback& draft, const WriteContext& ctx) {
  FieldErrors errors;
  if (draft.kind == model::CallbackKind::kIncident) {
    std::optional<std::string> state;
    std::optional<Timestamp> resolved_at;
    sql::ForEachRow(
        db_, "SELECT state, cmdb_us(resolved_at) FROM incidents WHERE id = $1",
        [&](const soci::row& r) {
          state = sql::Text(r, 0);
          resolved_at = sql::OptionalTime(r, 1);
        },
        soci::use(static_cast<long long>(*draft.incident_id)));
    if (!state) {
      throw Error(ErrorCode::kNotFound,
                  "incident " + std::to_string(*draft.incident_id) + " does not exist");
    }
    if (*state != "resolved" && *state != "closed") {
      errors.Add("incident_id", "incident " + std::to_string(*draft.incident_id) + " is " + *state +
                                    "; the user is called back once it is resolved or closed");
    } else if (resolved_at && draft.called_at.micros + 60'000'000 < resolved_at->micros) {
      // (A minute of clock skew between the caller's machine and the server is tolerated.)
      errors.Add("called_at", "is before the incident was resolved (" +
                                  model::FormatTimestamp(*resolved_at) + ")");
    }
  } else {
    std::optional<KeyUser> user = FindKeyUser(*draft.key_user_id);
    if (!user) {
      errors.Add("key_user_id",
                 "key user " + std::to_string(*draft.key_user_id) + " does not exist");
    } else if (!user->active) {
      errors.Add("key_user_id", "key user " + user->name + " is inactive");
    } else if (std::find(user->service_ids.begin(), user->service_ids.end(), *draft.service_id) ==
               user->service_ids.end()) {
      errors.Add("service_id", "service " + std::to_string(*draft.service_id) +
                                   " is not one that " + user->name + " speaks for");
    }
  }
  errors.ThrowIfAny("the callback is invalid");
  const std::optional<long long> incident = draft.incident_id;
  const std::optional<long long> key_user = draft.key_user_id;
  const std::optional<long long> service = draft.service_id;
  std::optional<Callback> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO callbacks (kind, incident_id, key_user_id, service_id, called_at, "
                  "reached, score, comment, caller) VALUES ($1, $2, $3, $4, cmdb_ts($5), $6, $7, "
                  "$8, $9) RETURNING ") +
          kCallbackColumns,
      [&](const soci::row& r) { created = CallbackFromRow(r); },
      soci::use(std::string(model::NameIn(model::kCallbackKindNames, draft.kind))),
      soci::use(incident), soci::use(key_user), soci::use(service),
      soci::use(static_cast<long long>(draft.called_at.micros)), soci::use(draft.reached),
      soci::use(draft.score), soci::use(draft.comment), soci::use(ctx.changed_by));
  return *created;
}

std::vector<Callback> QualityRepository::ListCallbacks(const CallbackFilter& f) {
  const std::optional<std::string> kind =
      f.kind ? std::optional(std::string(model::NameIn(model::kCallbackKindNames, *f.kind)))
             : std::nullopt;
  const std::optional<long long> incident = f.incident;
  const std::optional<long long> key_user = f.key_user;
  const std::optional<long long> service = f.service;
  const std::optional<long long> from =
      f.from ? std::optional<long long>(f.from->micros) : std::nullopt;
  const std::optional<long long> to = f.to ? std::optional<long long>(f.to->micros) : std::nullopt;
  std::vector<Callback> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kCallbackColumns +
          " FROM callbacks WHERE id > $1 AND ($2::text IS NULL OR kind = $2) AND ($3::bigint IS "
          "NULL OR incident_id = $3) AND ($4::bigint IS NULL OR key_user_id = $4) AND "
          "($5::bigint IS NULL OR service_id = $5) AND ($6::text IS NULL OR caller = $6) AND "
          "($7::bigint IS NULL OR called_at >= cmdb_ts($7)) AND ($8::bigint IS NULL OR "
          "called_at < cmdb_ts($8)) ORDER BY id LIMIT $9",
      [&](const soci::row& r) { out.push_back(CallbackFromRow(r)); },
      soci::use(static_cast<long long>(f.after)), soci::use(kind), soci::use(incident),
      soci::use(key_user), soci::use(service), soci::use(f.caller), soci::use(from), soci::use(to),
      soci::use(f.limit + 1));
  return out;
}

Complaint QualityRepository::CreateComplaint(const Complaint& draft, const WriteContext& ctx) {
  FieldErrors errors;
  if (draft.incident_id) {
    bool found = false;
    sql::ForEachRow(
        db_, "SELECT 1 FROM incidents WHERE id = $1", [&](const soci::row&) { found = true; },
        soci::use(static_cast<long long>(*draft.incident_id)));
    if (!found) {
      errors.Add("incident_id",
                 "incident " + std::to_string(*draft.incident_id) + " does not exist");
    }
  }
  if (draft.service_id) CheckServices(db_, {*draft.service_id}, "service_id", false, errors);
  errors.ThrowIfAny("the complaint is invalid");
  Transaction tr(db_);
  const std::optional<long long> incident = draft.incident_id;
  const std::optional<long long> service = draft.service_id;
  std::optional<Complaint> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO complaints (title, description, complainant, incident_id, "
                  "service_id, handler, owner, due_at, note, created_by) VALUES ($1, $2, $3, $4, "
                  "$5, $6, $7, cmdb_ts($8), $9, $10) RETURNING ") +
          kComplaintColumns,
      [&](const soci::row& r) { created = ComplaintFromRow(r); }, soci::use(draft.title),
      soci::use(draft.description), soci::use(draft.complainant), soci::use(incident),
      soci::use(service), soci::use(draft.handler), soci::use(draft.owner),
      soci::use(static_cast<long long>(draft.due_at.micros)), soci::use(draft.note),
      soci::use(ctx.changed_by));
  sql::Execute(db_,
               "INSERT INTO complaint_events (complaint_id, action, from_state, to_state, by, "
               "owner, due_at, note) VALUES ($1, 'open', NULL, 'open', $2, $3, cmdb_ts($4), $5)",
               soci::use(static_cast<long long>(created->id)), soci::use(ctx.changed_by),
               soci::use(draft.owner), soci::use(static_cast<long long>(draft.due_at.micros)),
               soci::use(draft.note));
  tr.Commit();
  return *created;
}

std::optional<Complaint> QualityRepository::FindComplaint(std::int64_t id) {
  std::optional<Complaint> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kComplaintColumns + " FROM complaints WHERE id = $1",
      [&](const soci::row& r) { found = ComplaintFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<Complaint> QualityRepository::ListComplaints(const ComplaintFilter& f) {
  const std::optional<std::string> state =
      f.state ? std::optional(std::string(model::NameIn(model::kComplaintStateNames, *f.state)))
              : std::nullopt;
  const std::optional<int> overdue =
      f.overdue ? std::optional<int>(*f.overdue ? 1 : 0) : std::nullopt;
  std::vector<Complaint> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kComplaintColumns +
          " FROM complaints WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND ($3::integer "
          "IS NULL OR (state <> 'closed' AND due_at < cmdb_ts($4)) = ($3 = 1)) AND ($5::text IS "
          "NULL OR "
          "owner = $5) AND ($6::text IS NULL OR handler = $6) ORDER BY id LIMIT $7",
      [&](const soci::row& r) { out.push_back(ComplaintFromRow(r)); },
      soci::use(static_cast<long long>(f.after)), soci::use(state), soci::use(overdue),
      soci::use(static_cast<long long>(f.now.micros)), soci::use(f.owner), soci::use(f.handler),
      soci::use(f.limit + 1));
  return out;
}

Complaint QualityRepository::StepComplaint(std::int64_t id, std::string_view action,
                                           const model::ComplaintStep& step,
                                           std::optional<std::int64_t> if_match,
                                           const WriteContext& ctx) {
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kComplaintColumns + " FROM complaints WHERE id = $1 FOR UPDATE";
  const Complaint current = LockVersioned(db_, lock, std::to_string(id), if_match,
                                          "complaint " + std::to_string(id), ComplaintFromRow);
  const ComplaintState next = model::ComplaintTransition(current.state, action, id);
  const Timestamp due = step.due_at.value_or(current.due_at);
  const std::string to(model::NameIn(model::kComplaintStateNames, next));
  std::optional<Complaint> updated;
  sql::ForEachRow(
      db_,
      std::string("UPDATE complaints SET state = $2, owner = $3, due_at = cmdb_ts($4), note = $5, "
                  "closed_at = CASE WHEN $2 = 'closed' THEN clock_timestamp() END, version = "
                  "version + 1, updated_at = clock_timestamp() WHERE id = $1 RETURNING ") +
          kComplaintColumns,
      [&](const soci::row& r) { updated = ComplaintFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(to), soci::use(step.owner),
      soci::use(static_cast<long long>(due.micros)), soci::use(step.note));
  sql::Execute(db_,
               "INSERT INTO complaint_events (complaint_id, action, from_state, to_state, by, "
               "owner, due_at, note) VALUES ($1, $2, $3, $4, $5, $6, cmdb_ts($7), $8)",
               soci::use(static_cast<long long>(id)), soci::use(std::string(action)),
               soci::use(std::string(model::NameIn(model::kComplaintStateNames, current.state))),
               soci::use(to), soci::use(ctx.changed_by), soci::use(step.owner),
               soci::use(static_cast<long long>(due.micros)), soci::use(step.note));
  tr.Commit();
  return *updated;
}

std::vector<model::ComplaintEvent> QualityRepository::ComplaintEvents(std::int64_t id) {
  std::vector<model::ComplaintEvent> out;
  sql::ForEachRow(
      db_,
      "SELECT cmdb_us(at), action, from_state, to_state, by, owner, cmdb_us(due_at), note FROM "
      "complaint_events WHERE complaint_id = $1 ORDER BY at",
      [&](const soci::row& r) {
        model::ComplaintEvent e;
        e.at = sql::Time(r, 0);
        e.action = sql::Text(r, 1);
        if (!sql::IsNull(r, 2)) e.from = ComplaintStateFrom(sql::Text(r, 2));
        e.to = ComplaintStateFrom(sql::Text(r, 3));
        e.by = sql::Text(r, 4);
        e.owner = sql::Text(r, 5);
        e.due_at = sql::Time(r, 6);
        e.note = sql::Text(r, 7);
        out.push_back(std::move(e));
      },
      soci::use(static_cast<long long>(id)));
  return out;
}

model::IncidentChange QualityRepository::LinkChange(std::int64_t incident_id,
                                                    const model::IncidentChange& link,
                                                    const WriteContext& ctx) {
  Transaction tr(db_);
  std::optional<int> tier;
  sql::ForEachRow(
      db_, "SELECT tier FROM incidents WHERE id = $1 FOR SHARE",
      [&](const soci::row& r) { tier = static_cast<int>(sql::Int(r, 0)); },
      soci::use(static_cast<long long>(incident_id)));
  if (!tier) {
    throw Error(ErrorCode::kNotFound,
                "incident " + std::to_string(incident_id) + " does not exist");
  }
  FieldErrors errors;
  bool change_found = false;
  sql::ForEachRow(
      db_, "SELECT 1 FROM changes WHERE id = $1 FOR SHARE",
      [&](const soci::row&) { change_found = true; },
      soci::use(static_cast<long long>(link.change_id)));
  if (!change_found) {
    errors.Add("change_id", "change " + std::to_string(link.change_id) + " does not exist");
  }
  if (link.promised_by < Timestamp::Now()) {
    errors.Add("promised_by", "is in the past; promise the user a date still to come");
  }
  errors.ThrowIfAny("the plan is invalid");
  sql::Execute(db_,
               "INSERT INTO incident_changes (incident_id, change_id, promised_by, linked_by, "
               "linked_tier) VALUES ($1, $2, cmdb_ts($3), $4, $5) ON CONFLICT (incident_id, "
               "change_id) DO UPDATE SET promised_by = excluded.promised_by",
               soci::use(static_cast<long long>(incident_id)),
               soci::use(static_cast<long long>(link.change_id)),
               soci::use(static_cast<long long>(link.promised_by.micros)),
               soci::use(ctx.changed_by), soci::use(tier));
  std::optional<model::IncidentChange> stored;
  sql::ForEachRow(
      db_, std::string(kPlanQuery) + " WHERE l.incident_id = $1 AND l.change_id = $2",
      [&](const soci::row& r) { stored = PlanFromRow(r); },
      soci::use(static_cast<long long>(incident_id)),
      soci::use(static_cast<long long>(link.change_id)));
  tr.Commit();
  return *stored;
}

std::vector<model::IncidentChange> QualityRepository::Plans(std::int64_t incident_id) {
  std::vector<model::IncidentChange> out;
  sql::ForEachRow(
      db_, std::string(kPlanQuery) + " WHERE l.incident_id = $1 ORDER BY l.linked_at",
      [&](const soci::row& r) { out.push_back(PlanFromRow(r)); },
      soci::use(static_cast<long long>(incident_id)));
  return out;
}

std::vector<Callback> QualityRepository::CallbacksBetween(Timestamp from, Timestamp to) {
  std::vector<Callback> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kCallbackColumns +
          " FROM callbacks WHERE called_at >= cmdb_ts($1) AND called_at < cmdb_ts($2) ORDER BY "
          "called_at, id",
      [&](const soci::row& r) { out.push_back(CallbackFromRow(r)); },
      soci::use(static_cast<long long>(from.micros)), soci::use(static_cast<long long>(to.micros)));
  return out;
}

std::vector<KeyUser> QualityRepository::ActiveKeyUsers() {
  std::vector<KeyUser> out;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kKeyUserColumns + " FROM key_users WHERE active ORDER BY id",
      [&](const soci::row& r) { out.push_back(KeyUserFromRow(r)); });
  return out;
}

std::vector<Complaint> QualityRepository::ComplaintsLiveSince(Timestamp since, Timestamp before) {
  std::vector<Complaint> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kComplaintColumns +
          " FROM complaints WHERE created_at < cmdb_ts($2) AND (closed_at IS NULL OR closed_at >= "
          "cmdb_ts($1)) ORDER BY id",
      [&](const soci::row& r) { out.push_back(ComplaintFromRow(r)); },
      soci::use(static_cast<long long>(since.micros)),
      soci::use(static_cast<long long>(before.micros)));
  return out;
}

std::vector<model::IncidentChange> QualityRepository::PlansOf(
    const std::vector<std::int64_t>& incidents) {
  std::vector<model::IncidentChange> out;
  if (incidents.empty()) return out;
  sql::ForEachRow(
      db_,
      std::string(kPlanQuery) +
          " WHERE l.incident_id = ANY($1::bigint[]) ORDER BY l.incident_id, l.linked_at",
      [&](const soci::row& r) { out.push_back(PlanFromRow(r)); },
      soci::use(sql::IdArray(incidents)));
  return out;
}

}  // namespace cmdb::store
