#include "model/access.hpp"

#include <boost/json.hpp>

#include "model/ci_type.hpp"
#include "model/json.hpp"

namespace cmdb::model {

bool RoleSet::Allows(Role needed) const {
  if (Contains(Role::kAdmin) || Contains(needed)) return true;
  switch (needed) {
    case Role::kViewer:
      return !empty();  // every role reads what viewer reads
    case Role::kIncidentHandler:
      return Contains(Role::kGroupLead);  // a lead works incidents with their staff
    default:
      return false;
  }
}

RoleSet RoleSet::AllowedBy(RoleSet holder) const {
  RoleSet out;
  for (Role r : roles()) {
    if (holder.Allows(r)) out.Add(r);
  }
  return out;
}

std::vector<Role> RoleSet::roles() const {
  std::vector<Role> out;
  for (const auto& row : kRoleNames) {
    if (Contains(row.value)) out.push_back(row.value);
  }
  return out;
}

std::vector<std::string> RoleSet::names() const {
  std::vector<std::string> out;
  for (Role r : roles()) out.emplace_back(RoleName(r));
  return out;
}

std::string RoleSet::Describe() const {
  std::string out;
  for (Role r : roles()) {
    if (!out.empty()) out += ", ";
    out += RoleName(r);
  }
  return out.empty() ? "no role" : out;
}

void RolesFromJson(const json::value& value, std::string_view field, RoleSet& out,
                   FieldErrors& errors) {
  const json::array* list = value.if_array();
  if (list == nullptr) {
    errors.Add(std::string(field), "an array of role names: " + NamesIn(kRoleNames));
    return;
  }
  if (list->size() > kRoleNames.size() * 4) {
    errors.Add(std::string(field), "at most " + std::to_string(kRoleNames.size()) + " roles");
    return;
  }
  RoleSet roles;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json::value& item = (*list)[i];
    std::optional<Role> role =
        item.is_string() ? RoleFromName(item.get_string()) : std::optional<Role>();
    if (!role) {
      errors.Add(std::string(field) + "[" + std::to_string(i) + "]",
                 "not a role; roles are " + NamesIn(kRoleNames));
      continue;
    }
    roles.Add(*role);
  }
  out = roles;
}

json::array RolesToJson(RoleSet roles) {
  json::array out;
  for (Role r : roles.roles()) out.emplace_back(RoleName(r));
  return out;
}

json::object UserToJson(const User& u) {
  return {{"name", u.name},
          {"display_name", u.display_name},
          {"roles", RolesToJson(u.roles)},
          {"tier", u.tier ? json::value(*u.tier) : json::value(nullptr)},
          {"source_id", u.source_id ? json::value(*u.source_id) : json::value(nullptr)},
          {"active", u.active},
          {"version", u.version},
          {"created_at", FormatTimestamp(u.created_at)},
          {"updated_at", FormatTimestamp(u.updated_at)}};
}

std::string CheckUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) return "1 to 64 characters";
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name.front())) return "starts with a lowercase letter or digit";
  for (char c : name) {
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '-') {
      return "only lowercase letters, digits, '.', '_' and '-'";
    }
  }
  return "";
}

void ApplyUserJson(const json::value& body, bool creating, User& user, FieldErrors& errors) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a user is a JSON object");
  if (creating) {
    CheckFields(*o, {"name", "display_name", "roles", "tier", "source_id", "active"}, errors);
    const json::value* name = o->if_contains("name");
    if (name == nullptr || !name->is_string()) {
      errors.Add("name", "required: the login name, such as \"li.wei\"");
    } else if (std::string why = CheckUserName(name->get_string()); !why.empty()) {
      errors.Add("name", why);
    } else {
      user.name = std::string(name->get_string());
    }
    if (!o->contains("roles")) errors.Add("roles", "required: an array of role names");
  } else {
    CheckFields(*o, {"display_name", "roles", "tier", "source_id", "active"}, errors);
  }
  if (o->contains("display_name")) {
    const json::value& v = o->at("display_name");
    if (!v.is_string() || v.get_string().size() > 200) {
      errors.Add("display_name", "a string of at most 200 bytes");
    } else {
      user.display_name = std::string(v.get_string());
    }
  }
  if (const json::value* v = o->if_contains("roles"))
    RolesFromJson(*v, "roles", user.roles, errors);
  if (const json::value* v = o->if_contains("tier")) {
    if (v->is_null()) {
      user.tier.reset();
    } else if (!v->is_int64() || v->get_int64() < 1 || v->get_int64() > 3) {
      errors.Add("tier", "1, 2 or 3 (first, second or third line), or null");
    } else {
      user.tier = static_cast<int>(v->get_int64());
    }
  }
  if (const json::value* v = o->if_contains("source_id")) {
    if (v->is_null()) {
      user.source_id.reset();
    } else if (!v->is_int64() || v->get_int64() < 1) {
      errors.Add("source_id", "the id of the discovery source an agent posts to, or null");
    } else {
      user.source_id = v->get_int64();
    }
  }
  if (const json::value* v = o->if_contains("active")) {
    if (!v->is_bool()) {
      errors.Add("active", "true or false");
    } else {
      user.active = v->get_bool();
    }
  }
  if (ContainsNul(body)) errors.Add("", "text values cannot contain the NUL character (\\u0000)");
}

void CheckUser(const User& user, FieldErrors& errors) {
  const bool works_incidents =
      user.roles.Contains(Role::kIncidentHandler) || user.roles.Contains(Role::kGroupLead);
  if (works_incidents && !user.tier) {
    errors.Add("tier", "incident_handler and group_lead work on one tier: give 1, 2 or 3");
  }
  if (!works_incidents && user.tier) {
    errors.Add("tier", "only incident_handler and group_lead have a tier");
  }
  if (user.roles.Contains(Role::kDiscoveryAgent) && !user.source_id) {
    errors.Add("source_id", "a discovery_agent is bound to the one source it posts to");
  }
  if (!user.roles.Contains(Role::kDiscoveryAgent) && user.source_id) {
    errors.Add("source_id", "only a discovery_agent is bound to a source");
  }
}

json::object TokenToJson(const ApiToken& t) {
  return {{"id", t.id},
          {"user", t.user},
          {"name", t.name},
          {"roles", t.roles ? json::value(RolesToJson(*t.roles)) : json::value(nullptr)},
          {"prefix", t.prefix},
          {"created_at", FormatTimestamp(t.created_at)},
          {"expires_at", TimestampJson(t.expires_at)},
          {"revoked_at", TimestampJson(t.revoked_at)},
          {"last_used_at", TimestampJson(t.last_used_at)}};
}

json::object AuditEntryToJson(const AuditEntry& e) {
  json::array targets;
  for (const std::string& t : e.target_ids) targets.emplace_back(t);
  return {{"id", e.id},
          {"at", FormatTimestamp(e.at)},
          {"actor", e.actor ? json::value(*e.actor) : json::value(nullptr)},
          {"token_id", e.token_id ? json::value(*e.token_id) : json::value(nullptr)},
          {"method", e.method},
          {"route", e.route},
          {"path", e.path},
          {"target_ids", std::move(targets)},
          {"status", e.status},
          {"request_id", e.request_id},
          {"client_address", e.client_address}};
}

}  // namespace cmdb::model
