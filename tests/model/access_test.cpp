#include "model/access.hpp"

#include <set>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace cmdb::model {
namespace {

TEST(Roles, AreAdditiveAsTheAccessTableSays) {
  EXPECT_TRUE(RoleSet{Role::kAuditor}.Allows(Role::kViewer));
  EXPECT_FALSE(RoleSet{Role::kAuditor}.Allows(Role::kAssetAdmin));
  EXPECT_TRUE(RoleSet{Role::kGroupLead}.Allows(Role::kIncidentHandler));
  EXPECT_FALSE(RoleSet{Role::kIncidentHandler}.Allows(Role::kGroupLead));
  for (const auto& row : kRoleNames) {
    EXPECT_TRUE(RoleSet{Role::kAdmin}.Allows(row.value)) << row.name;
    EXPECT_EQ(RoleFromName(row.name), row.value);
  }
  EXPECT_FALSE(RoleSet{}.Allows(Role::kViewer));
  EXPECT_TRUE((RoleSet{Role::kViewer}.SubsetOf(RoleSet{Role::kViewer, Role::kAuditor})));
  EXPECT_FALSE((RoleSet{Role::kAdmin}.SubsetOf(RoleSet{Role::kViewer})));
  // A token's roles come to those its user's roles allow: an admin's token may be a viewer's.
  EXPECT_EQ((RoleSet{Role::kViewer, Role::kAuditor}.AllowedBy(RoleSet{Role::kAdmin})),
            (RoleSet{Role::kViewer, Role::kAuditor}));
  EXPECT_EQ((RoleSet{Role::kAdmin, Role::kViewer}.AllowedBy(RoleSet{Role::kAuditor})),
            (RoleSet{Role::kViewer}));
}

TEST(Users, ABadUserNamesEveryField) {
  FieldErrors errors;
  User user;
  ApplyUserJson(boost::json::parse(R"({"name": "Bad Name", "roles": ["viewer", "root"],
      "tier": 7, "source_id": "x", "active": 1, "extra": true})"),
                true, user, errors);
  std::set<std::string> fields;
  try {
    errors.ThrowIfAny("invalid");
  } catch (const Error& e) {
    for (const auto& f : e.field_errors()) fields.insert(f.field);
  }
  EXPECT_EQ(fields,
            (std::set<std::string>{"name", "roles[1]", "tier", "source_id", "active", "extra"}));
}

TEST(Users, HandlersNeedATierAndAgentsASource) {
  User handler;
  handler.name = "ines";
  handler.roles = RoleSet{Role::kIncidentHandler};
  FieldErrors errors;
  CheckUser(handler, errors);
  EXPECT_THROW(errors.ThrowIfAny("x"), Error);
  handler.tier = 1;
  FieldErrors fine;
  CheckUser(handler, fine);
  EXPECT_NO_THROW(fine.ThrowIfAny("x"));
  User agent;
  agent.roles = RoleSet{Role::kDiscoveryAgent};
  FieldErrors unbound;
  CheckUser(agent, unbound);
  EXPECT_THROW(unbound.ThrowIfAny("x"), Error);
  EXPECT_EQ(CheckUserName("li.wei-2"), "");
  EXPECT_NE(CheckUserName(""), "");
  EXPECT_NE(CheckUserName("-x"), "");
  EXPECT_NE(CheckUserName(std::string(65, 'a')), "");
}

}  // namespace
}  // namespace cmdb::model
