#pragma once
// Who may do what: the roles of the operations organisation, the users who hold them, their
// API tokens, and the principal a request acts as. Value types and pure functions;
// thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>

#include "model/enum_names.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

// The roles of product.md's access table. Roles are additive: every role reads what viewer
// reads; group_lead also works as incident_handler; admin holds every role.
enum class Role : std::uint8_t {
  kViewer,
  kAssetAdmin,
  kChangeReviewer,
  kIncidentHandler,
  kGroupLead,
  kQualityAuditor,
  kAuditor,
  kAdmin,
  kDiscoveryAgent,
};
inline constexpr std::array<EnumName<Role>, 9> kRoleNames{{
    {Role::kViewer, "viewer"},
    {Role::kAssetAdmin, "asset_admin"},
    {Role::kChangeReviewer, "change_reviewer"},
    {Role::kIncidentHandler, "incident_handler"},
    {Role::kGroupLead, "group_lead"},
    {Role::kQualityAuditor, "quality_auditor"},
    {Role::kAuditor, "auditor"},
    {Role::kAdmin, "admin"},
    {Role::kDiscoveryAgent, "discovery_agent"},
}};
inline std::string_view RoleName(Role r) { return NameIn(kRoleNames, r); }
inline std::optional<Role> RoleFromName(std::string_view name) { return ValueIn(kRoleNames, name); }

// A set of roles as granted (what a user or token lists); Allows() applies the implications.
class RoleSet {
 public:
  RoleSet() = default;
  RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) Add(r);
  }
  void Add(Role r) { bits_ |= Bit(r); }
  bool Contains(Role r) const { return (bits_ & Bit(r)) != 0; }
  bool empty() const { return bits_ == 0; }
  // Whether holding these roles allows what `needed` may do.
  bool Allows(Role needed) const;
  // Whether every role of this set is in `other`.
  bool SubsetOf(RoleSet other) const { return (bits_ & ~other.bits_) == 0; }
  // The roles of this set that `holder` allows (admin allows every one): what a token's roles
  // come to for a user holding `holder`.
  RoleSet AllowedBy(RoleSet holder) const;
  bool operator==(const RoleSet&) const = default;
  // The granted roles, in the table's order.
  std::vector<Role> roles() const;
  std::vector<std::string> names() const;
  // The names joined by ", " ("no role" when empty), for messages.
  std::string Describe() const;

 private:
  static std::uint32_t Bit(Role r) { return std::uint32_t{1} << static_cast<unsigned>(r); }
  std::uint32_t bits_ = 0;
};

// Reads a JSON array of role names into `out`; problems go to `errors` under `field`.
void RolesFromJson(const boost::json::value& json, std::string_view field, RoleSet& out,
                   FieldErrors& errors);
boost::json::array RolesToJson(RoleSet roles);

// A user of the server: a person or an agent.
struct User {
  std::int64_t id = 0;
  std::string name;  // the login name, [a-z0-9][a-z0-9._-]{0,63}
  std::string display_name;
  RoleSet roles;
  std::optional<int> tier;                // incident_handler and group_lead: 1, 2 or 3
  std::optional<std::int64_t> source_id;  // discovery_agent: the one source it posts to
  bool active = true;
  std::int64_t version = 1;
  Timestamp created_at;
  Timestamp updated_at;
};
boost::json::object UserToJson(const User& user);

// Checks a user name; "" when valid, else the reason.
std::string CheckUserName(std::string_view name);

// POST /users and PATCH /users/{name}: the fields present in `body` applied to `user` (a new
// one for POST). Problems go to `errors`; the combination (tier for handlers, a source for
// agents) is checked by CheckUser. Throws Error{kInvalidArgument} when `body` is not an object.
void ApplyUserJson(const boost::json::value& body, bool creating, User& user, FieldErrors& errors);
void CheckUser(const User& user, FieldErrors& errors);

// An API token as listed (never its secret).
struct ApiToken {
  std::int64_t id = 0;
  std::string user;
  std::string name;
  std::optional<RoleSet> roles;  // nullopt: the user's roles
  Timestamp created_at;
  std::optional<Timestamp> expires_at;  // nullopt: never
  std::optional<Timestamp> revoked_at;
  std::optional<Timestamp> last_used_at;
  std::string prefix;  // "cmdb_<id>_", how the token's text starts
};
boost::json::object TokenToJson(const ApiToken& token);

// Who a request acts as: the user behind a verified token, with the roles the token carries.
struct Principal {
  std::int64_t user_id = 0;
  std::string user;
  std::int64_t token_id = 0;
  RoleSet roles;  // the token's roles that the user still holds
  std::optional<int> tier;
  std::optional<std::int64_t> source_id;
  bool Allows(Role needed) const { return roles.Allows(needed); }
};

// One line of the audit log: a write or a refused attempt.
struct AuditEntry {
  std::int64_t id = 0;
  Timestamp at;
  std::optional<std::string> actor;  // nullopt: no valid token
  std::optional<std::int64_t> token_id;
  std::string method;
  std::string route;  // the route's pattern, or "unmatched"
  std::string path;
  std::vector<std::string> target_ids;
  int status = 0;
  std::string request_id;
  std::string client_address;
};
boost::json::object AuditEntryToJson(const AuditEntry& entry);

}  // namespace cmdb::model
