// The quality review over HTTP: key users, callbacks, complaints, and second line's plans
// (changes linked to the incident they answer).

#include <boost/json.hpp>

#include "server/handlers/handlers.hpp"
#include "store/db_pool.hpp"
#include "store/incident_repository.hpp"
#include "store/quality_repository.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using model::Timestamp;

namespace {

std::string Location(std::string_view collection, std::int64_t id) {
  return "/api/v1/" + std::string(collection) + "/" + std::to_string(id);
}

json::value BodyOrEmpty(const Request& request) {
  if (request.body.empty()) return json::object{};
  return ParseJsonBody(request);
}

Response ComplaintStep(const Request& request, const PathParams& params, AppContext& ctx,
                       std::string_view action) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "complaint id");
  const json::value body = BodyOrEmpty(request);
  const model::ComplaintStep step = model::ParseComplaintStep(action, body, Timestamp::Now());
  store::DbSession session = ctx.db->Lease();
  const model::Complaint complaint = store::QualityRepository(session).StepComplaint(
      id, action, step, ParseIfMatch(request), Writer(request));
  return ResourceResponse(200, model::ComplaintToJson(complaint, Timestamp::Now()),
                          complaint.version, "");
}

// 404 unless incident `id` exists.
void CheckIncident(store::DbSession& session, std::int64_t id) {
  if (!store::IncidentRepository(session).Find(id)) {
    throw Error(ErrorCode::kNotFound, "incident " + std::to_string(id) + " does not exist");
  }
}

}  // namespace

Response ListKeyUsers(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"service", "active", "limit", "cursor"});
  const int limit = ParseLimit(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::QualityRepository(session).ListKeyUsers(
                          OptionalIdParam(request, "service"), ParseBoolParam(request, "active"),
                          DecodeCursor(request), limit),
                      static_cast<std::size_t>(limit), model::KeyUserToJson);
}

Response CreateKeyUser(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  const model::KeyUser draft = model::KeyUserFromJson(body, errors);
  errors.ThrowIfAny("the key user is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::KeyUser user =
      store::QualityRepository(session).CreateKeyUser(draft, Writer(request));
  return ResourceResponse(201, model::KeyUserToJson(user), user.version,
                          Location("key-users", user.id));
}

Response GetKeyUser(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "key user id");
  store::DbSession session = ctx.db->Lease();
  std::optional<model::KeyUser> user = store::QualityRepository(session).FindKeyUser(id);
  if (!user)
    throw Error(ErrorCode::kNotFound, "key user " + std::to_string(id) + " does not exist");
  return ResourceResponse(200, model::KeyUserToJson(*user), user->version, "");
}

Response PatchKeyUser(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "key user id");
  const json::value body = ParseJsonBody(request);
  store::DbSession session = ctx.db->Lease();
  const model::KeyUser user = store::QualityRepository(session).PatchKeyUser(
      id, body, ParseIfMatch(request), Writer(request));
  return ResourceResponse(200, model::KeyUserToJson(user), user.version, "");
}

Response CreateIncidentCallback(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t incident = ParseId(params.at("id"), "incident id");
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::Callback draft =
      model::CallbackFromJson(body, model::CallbackKind::kIncident, Timestamp::Now(), errors);
  errors.ThrowIfAny("the callback is invalid");
  draft.incident_id = incident;
  store::DbSession session = ctx.db->Lease();
  const model::Callback created =
      store::QualityRepository(session).CreateCallback(draft, Writer(request));
  return JsonResponse(201, model::CallbackToJson(created));
}

Response ListIncidentCallbacks(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"limit", "cursor"});
  store::CallbackFilter filter;
  filter.incident = ParseId(params.at("id"), "incident id");
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  store::DbSession session = ctx.db->Lease();
  CheckIncident(session, *filter.incident);
  return PageResponse(store::QualityRepository(session).ListCallbacks(filter),
                      static_cast<std::size_t>(filter.limit), model::CallbackToJson);
}

Response CreateKeyUserCallback(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  // First line calls key users too; second and third line do not record these calls.
  const model::Principal& caller = Caller(request);
  if (!caller.Allows(model::Role::kQualityAuditor) && caller.tier.value_or(0) != 1) {
    throw Error(ErrorCode::kPermissionDenied,
                "POST /api/v1/callbacks needs the role quality_auditor, or incident_handler of "
                "tier 1 (first line); the token of '" +
                    caller.user + "' is tier " +
                    (caller.tier ? std::to_string(*caller.tier) : std::string("none")));
  }
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  const model::Callback draft =
      model::CallbackFromJson(body, model::CallbackKind::kKeyUser, Timestamp::Now(), errors);
  errors.ThrowIfAny("the callback is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::Callback created =
      store::QualityRepository(session).CreateCallback(draft, Writer(request));
  return JsonResponse(201, model::CallbackToJson(created));
}

Response ListCallbacks(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"kind", "incident", "key_user", "service", "caller", "from", "to",
                             "limit", "cursor"});
  store::CallbackFilter filter;
  filter.kind = EnumParam(request, "kind", model::kCallbackKindNames);
  filter.incident = OptionalIdParam(request, "incident");
  filter.key_user = OptionalIdParam(request, "key_user");
  filter.service = OptionalIdParam(request, "service");
  if (auto c = request.Query("caller"); c && !c->empty()) filter.caller = std::string(*c);
  filter.from = TimeParam(request, "from");
  filter.to = TimeParam(request, "to");
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::QualityRepository(session).ListCallbacks(filter),
                      static_cast<std::size_t>(filter.limit), model::CallbackToJson);
}

Response ListComplaints(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"state", "overdue", "owner", "handler", "limit", "cursor"});
  store::ComplaintFilter filter;
  filter.state = EnumParam(request, "state", model::kComplaintStateNames);
  filter.overdue = ParseBoolParam(request, "overdue");
  if (auto o = request.Query("owner"); o && !o->empty()) filter.owner = std::string(*o);
  if (auto h = request.Query("handler"); h && !h->empty()) filter.handler = std::string(*h);
  filter.now = Timestamp::Now();
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::QualityRepository(session).ListComplaints(filter),
                      static_cast<std::size_t>(filter.limit), [&filter](const model::Complaint& c) {
                        return model::ComplaintToJson(c, filter.now);
                      });
}

Response CreateComplaint(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  const model::Complaint draft = model::ComplaintFromJson(body, Timestamp::Now(), errors);
  errors.ThrowIfAny("the complaint is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::Complaint created =
      store::QualityRepository(session).CreateComplaint(draft, Writer(request));
  return ResourceResponse(201, model::ComplaintToJson(created, Timestamp::Now()), created.version,
                          Location("complaints", created.id));
}

Response GetComplaint(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "complaint id");
  store::DbSession session = ctx.db->Lease();
  std::optional<model::Complaint> found = store::QualityRepository(session).FindComplaint(id);
  if (!found)
    throw Error(ErrorCode::kNotFound, "complaint " + std::to_string(id) + " does not exist");
  return ResourceResponse(200, model::ComplaintToJson(*found, Timestamp::Now()), found->version,
                          "");
}

Response GetComplaintEvents(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "complaint id");
  store::DbSession session = ctx.db->Lease();
  store::QualityRepository repo(session);
  if (!repo.FindComplaint(id)) {
    throw Error(ErrorCode::kNotFound, "complaint " + std::to_string(id) + " does not exist");
  }
  json::array items;
  for (const model::ComplaintEvent& e : repo.ComplaintEvents(id)) {
    items.push_back(model::ComplaintEventToJson(e));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Response RectifyComplaint(const Request& r, const PathParams& p, AppContext& c) {
  return ComplaintStep(r, p, c, "rectify");
}
Response VerifyComplaint(const Request& r, const PathParams& p, AppContext& c) {
  return ComplaintStep(r, p, c, "verify");
}
Response CloseComplaint(const Request& r, const PathParams& p, AppContext& c) {
  return ComplaintStep(r, p, c, "close");
}

Response LinkIncidentChange(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t incident = ParseId(params.at("id"), "incident id");
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  const model::IncidentChange link = model::IncidentChangeFromJson(body, errors);
  errors.ThrowIfAny("the plan is invalid");
  store::DbSession session = ctx.db->Lease();
  const model::IncidentChange stored =
      store::QualityRepository(session).LinkChange(incident, link, Writer(request));
  return JsonResponse(201, model::IncidentChangeToJson(stored, Timestamp::Now()));
}

Response ListIncidentChanges(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t incident = ParseId(params.at("id"), "incident id");
  store::DbSession session = ctx.db->Lease();
  CheckIncident(session, incident);
  const Timestamp now = Timestamp::Now();
  json::array items;
  for (const model::IncidentChange& l : store::QualityRepository(session).Plans(incident)) {
    items.push_back(model::IncidentChangeToJson(l, now));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

}  // namespace cmdb::server::handlers
