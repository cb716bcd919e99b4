// Users, their tokens and the audit log (product.md, "Access").

#include <boost/json.hpp>

#include "auth/accounts.hpp"
#include "auth/authenticator.hpp"
#include "model/access.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"
#include "store/audit_log_repository.hpp"
#include "store/user_repository.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using model::Role;

namespace {

Response UserResponse(int status, const model::User& user) {
  return ResourceResponse(status, model::UserToJson(user), user.version,
                          "/api/v1/users/" + user.name);
}

model::User FindUser(store::UserRepository& users, const std::string& name) {
  std::optional<model::User> user = users.Find(name);
  if (!user) throw Error(ErrorCode::kNotFound, "user '" + name + "' does not exist");
  return *user;
}

// Only the user themself or an admin manages a user's tokens; an auditor may also list them.
void CheckSelfOrAdmin(const model::Principal& caller, const std::string& name,
                      bool auditor_reads = false) {
  if (caller.user != name && !caller.Allows(Role::kAdmin) &&
      !(auditor_reads && caller.Allows(Role::kAuditor))) {
    throw Error(ErrorCode::kPermissionDenied,
                "the tokens of user '" + name + "' are managed by that user or the role admin" +
                    (auditor_reads ? " (and read by the role auditor)" : ""));
  }
}

bool ActiveAdmin(const model::User& u) { return u.active && u.roles.Contains(Role::kAdmin); }

}  // namespace

Response ListUsers(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"limit", "cursor"});
  const int limit = ParseLimit(request);
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::UserRepository(session).List(DecodeCursor(request), limit),
                      static_cast<std::size_t>(limit),
                      [](const model::User& u) { return model::UserToJson(u); });
}

Response CreateUser(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  const json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::User user;
  model::ApplyUserJson(body, /*creating=*/true, user, errors);
  errors.ThrowIfAny("the user is invalid");
  model::CheckUser(user, errors);
  errors.ThrowIfAny("the user is invalid");
  store::DbSession session = ctx.db->Lease();
  return UserResponse(201, store::UserRepository(session).Create(user));
}

Response GetUser(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  return UserResponse(200, FindUser(users, params.at("name")));
}

Response PatchUser(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const json::value body = ParseJsonBody(request);
  const std::string& name = params.at("name");
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  const model::User user = users.Update(name, ParseIfMatch(request), [&](model::User& u) {
    const bool was_admin = ActiveAdmin(u);
    model::FieldErrors errors;
    model::ApplyUserJson(body, /*creating=*/false, u, errors);
    errors.ThrowIfAny("the user is invalid");
    model::CheckUser(u, errors);
    errors.ThrowIfAny("the user is invalid");
    if (was_admin && !ActiveAdmin(u) && !users.AnyActiveAdminOtherThan(u.id)) {
      throw Error(ErrorCode::kConflict,
                  "user '" + name + "' is the last active admin; make another admin first");
    }
  });
  if (ctx.auth != nullptr) ctx.auth->Forget();  // roles and deactivation apply at once here
  return UserResponse(200, user);
}

Response DeleteUser(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string& name = params.at("name");
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  // A user is deactivated, never removed: history and the audit log keep naming them.
  users.Update(name, ParseIfMatch(request), [&](model::User& u) {
    if (ActiveAdmin(u) && !users.AnyActiveAdminOtherThan(u.id)) {
      throw Error(ErrorCode::kConflict,
                  "user '" + name + "' is the last active admin; make another admin first");
    }
    u.active = false;
  });
  users.RevokeTokensOf(FindUser(users, name).id);
  if (ctx.auth != nullptr) ctx.auth->Forget();
  return NoContent();
}

Response GetMe(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  const model::Principal& caller = Caller(request);
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  json::object body = model::UserToJson(FindUser(users, caller.user));
  body["token_id"] = caller.token_id;
  body["token_roles"] = model::RolesToJson(caller.roles);
  return JsonResponse(200, body);
}

Response CreateToken(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const model::Principal& caller = Caller(request);
  const std::string& name = params.at("name");
  CheckSelfOrAdmin(caller, name);
  json::value body = request.body.empty() ? json::value(json::object()) : ParseJsonBody(request);
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a token request is a JSON object");
  model::FieldErrors errors;
  model::CheckFields(*o, {"name", "expires_in_days", "roles"}, errors);
  const std::string token_name = model::OptionalText(*o, "name", 200, errors);
  int days = auth::kDefaultTokenDays;
  if (const json::value* v = o->if_contains("expires_in_days")) {
    if (!v->is_int64() || v->get_int64() < 1 || v->get_int64() > 3650) {
      errors.Add("expires_in_days", "a number of days from 1 to 3650 (default 90)");
    } else {
      days = static_cast<int>(v->get_int64());
    }
  }
  std::optional<model::RoleSet> roles;
  if (const json::value* v = o->if_contains("roles")) {
    model::RoleSet asked;
    model::RolesFromJson(*v, "roles", asked, errors);
    if (asked.empty()) errors.Add("roles", "at least one role, or leave roles out");
    roles = asked;
  }
  if (model::ContainsNul(body)) errors.Add("name", "text cannot contain NUL (\\u0000)");
  errors.ThrowIfAny("the token request is invalid");
  // A token never mints one that can do more than itself.
  if (caller.user == name && !caller.Allows(Role::kAdmin)) {
    if (roles && !(roles->AllowedBy(caller.roles) == *roles)) {
      throw Error(ErrorCode::kValidationFailed,
                  "a token carries only roles its creator's token does",
                  {{"roles", "the token used carries only " + caller.roles.Describe()}});
    }
    if (!roles) roles = caller.roles;
  }
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  const model::User user = FindUser(users, name);
  if (!user.active) {
    throw Error(ErrorCode::kConflict, "user '" + name + "' is deactivated");
  }
  if (roles && *roles == user.roles) roles.reset();  // follows the user's roles
  const model::Timestamp expires{model::Timestamp::Now().micros +
                                 std::int64_t{days} * 86'400'000'000};
  auth::IssuedToken issued =
      auth::IssueToken(session, ctx.pepper, user, token_name, roles, expires, caller.user);
  json::object out = model::TokenToJson(issued.token);
  out["token"] = issued.text;
  Response response = JsonResponse(201, out);
  response.headers.emplace_back("Location", "/api/v1/tokens/" + std::to_string(issued.token.id));
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

Response ListTokens(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::string& name = params.at("name");
  CheckSelfOrAdmin(Caller(request), name, /*auditor_reads=*/true);
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  json::array items;
  for (const model::ApiToken& t : users.ListTokens(FindUser(users, name).id)) {
    items.push_back(model::TokenToJson(t));
  }
  return JsonResponse(200, json::object{{"items", std::move(items)}, {"next_cursor", nullptr}});
}

Response RevokeToken(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  const std::int64_t id = ParseId(params.at("id"), "token id");
  const model::Principal& caller = Caller(request);
  store::DbSession session = ctx.db->Lease();
  store::UserRepository users(session);
  std::optional<model::ApiToken> token = users.FindToken(id);
  // Someone else's token is "not found" to a non-admin: ids do not reveal other users' tokens.
  if (!token || (token->user != caller.user && !caller.Allows(Role::kAdmin))) {
    throw Error(ErrorCode::kNotFound, "token " + std::to_string(id) + " does not exist");
  }
  users.RevokeToken(id);
  if (ctx.auth != nullptr) ctx.auth->Forget();
  return NoContent();
}

Response ListAuditLog(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request,
                   {"actor", "action", "target", "status", "since", "until", "limit", "cursor"});
  store::AuditFilter filter;
  filter.limit = ParseLimit(request);
  filter.before = DecodeCursor(request);
  auto text = [&](const char* name) -> std::optional<std::string> {
    std::optional<std::string> v = request.Query(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  filter.actor = text("actor");
  filter.action = text("action");
  filter.target = text("target");
  if (text("status")) filter.status = ParseIntParam(request, "status", 0, 100, 599);
  filter.since = TimeParam(request, "since");
  filter.until = TimeParam(request, "until");
  // The lines of this instance's latest requests may still be on their way.
  if (ctx.audit_flush) ctx.audit_flush();
  store::DbSession session = ctx.db->Lease();
  return PageResponse(store::AuditLogRepository(session).List(filter),
                      static_cast<std::size_t>(filter.limit),
                      [](const model::AuditEntry& e) { return model::AuditEntryToJson(e); });
}

}  // namespace cmdb::server::handlers
