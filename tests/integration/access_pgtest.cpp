// Access control over real HTTP: every route with every role against the route table, the
// workflow rules, tokens (subset roles, revocation, expiry, deactivation), hostile
// Authorization headers, the audit log and its immutability, bootstrap, the failure rate.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <sys/wait.h>

#include "model/access.hpp"
#include "server/router.hpp"
#include "store/audit_log_writer.hpp"
#include "store/db_pool.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

using model::Role;

class AccessApi : public ServerTest {
 protected:
  // Creates a user (as admin) and returns a token of theirs.
  std::string UserWithToken(const std::string& name, const std::string& roles,
                            const std::string& extra = "") {
    return TokenFor(name, roles, extra);
  }
  HttpResult As(const std::string& token, const std::string& method, const std::string& target,
                const std::string& body = "") {
    Headers h{{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return HttpRequest(port(), method, target, body, h);
  }
  std::int64_t SourceId(const std::string& name) {
    HttpResult r =
        Post("/api/v1/discovery/sources", R"({"name": ")" + name + R"(", "kind": "agent"})");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? r.json().at("id").as_int64() : 0;
  }
};

// Every route of the table, called with a token of each role (and none), is allowed or
// refused exactly as its Access says; a route declared without a role fails here.
TEST_F(AccessApi, EveryRouteAnswersEveryRoleAsTheTableSays) {
  const std::int64_t source = SourceId("matrix-agent");
  std::map<Role, std::string> tokens;
  for (const auto& row : model::kRoleNames) {
    std::string extra;
    if (row.value == Role::kIncidentHandler || row.value == Role::kGroupLead) {
      extra = R"(, "tier": 1)";
    }
    if (row.value == Role::kDiscoveryAgent) extra = R"(, "source_id": )" + std::to_string(source);
    std::string name(row.name);
    std::replace(name.begin(), name.end(), '_', '-');
    tokens[row.value] = UserWithToken("m-" + name, "[\"" + std::string(row.name) + "\"]", extra);
  }
  int checked = 0;
  for (const server::Route& route : server::ApiRoutes()) {
    ASSERT_TRUE(route.access.kind != server::Access::Kind::kRoles || !route.access.roles.empty())
        << route.method << " " << route.pattern << " is declared without a role";
    std::string target = route.pattern;
    for (auto [from, to] :
         {std::pair<std::string, std::string>{"{id}", "999999"}, {"{name}", "nobody-here"}}) {
      for (std::size_t at = target.find(from); at != std::string::npos; at = target.find(from)) {
        target.replace(at, from.size(), to);
      }
    }
    const bool open = route.access.kind == server::Access::Kind::kPublic;
    HttpResult anonymous = As("", route.method, target);
    if (open) {
      EXPECT_NE(anonymous.status, 401) << route.pattern;
    } else {
      EXPECT_EQ(anonymous.status, 401) << route.method << " " << target;
      EXPECT_NE(anonymous.header("www-authenticate").find("Bearer"), std::string::npos);
    }
    for (const auto& [role, token] : tokens) {
      model::Principal p;
      p.roles = model::RoleSet{role};
      HttpResult r = As(token, route.method, target);
      ++checked;
      if (route.access.Permits(p)) {
        EXPECT_NE(r.status, 401) << route.method << " " << target << " as " << RoleName(role);
        if (route.access.kind == server::Access::Kind::kRoles) {
          EXPECT_NE(r.status, 403)
              << route.method << " " << target << " as " << RoleName(role) << ": " << r.body;
        }
      } else {
        EXPECT_EQ(r.status, 403) << route.method << " " << target << " as " << RoleName(role);
        EXPECT_NE(r.body.find(route.access.Describe()), std::string::npos) << r.body;
      }
    }
  }
  EXPECT_GT(checked, 700);
}

// docs/access.md shows the same table: one row per route with who may call it.
TEST_F(AccessApi, TheAccessPageShowsTheRouteTable) {
  std::ifstream in(std::string(CMDB_SOURCE_DIR) + "/docs/access.md");
  ASSERT_TRUE(in) << "docs/access.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const server::Route& route : server::ApiRoutes()) {
    const std::string row =
        "| " + route.method + " | `" + route.pattern + "` | " + route.access.Describe() + " |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "docs/access.md lacks: " << row;
  }
}

TEST_F(AccessApi, NoOneReviewsTheirOwnChange) {
  const std::string both = UserWithToken("cab-self", R"(["asset_admin", "change_reviewer"])");
  const std::string other = UserWithToken("cab-other", R"(["change_reviewer"])");
  const std::int64_t ci = CreateCi(R"({"type": "server", "name": "cab-1"})");
  auto change = [&] {
    HttpResult c = As(both, "POST", "/api/v1/changes",
                      R"({"title": "patch", "planned_start": "2030-01-01T00:00:00Z",
                          "planned_end": "2030-01-01T01:00:00Z", "ci_ids": [)" +
                          std::to_string(ci) + "]}");
    EXPECT_EQ(c.status, 201) << c.body;
    EXPECT_EQ(c.json().at("requested_by"), "cab-self");
    const std::string path = "/api/v1/changes/" + std::to_string(c.json().at("id").as_int64());
    EXPECT_EQ(As(both, "POST", path + "/submit").status, 200);
    return path;
  };
  const std::string first = change();
  for (const char* action : {"/approve", "/reject"}) {
    HttpResult own = As(both, "POST", first + action);
    EXPECT_EQ(own.status, 403) << own.body;
    EXPECT_NE(own.body.find("requested"), std::string::npos) << own.body;
  }
  // Admin holds every role and is refused the same way for a change of their own.
  HttpResult admin_change = Post("/api/v1/changes",
                                 R"({"title": "admin's", "planned_start": "2030-02-01T00:00:00Z",
                                     "planned_end": "2030-02-01T01:00:00Z", "ci_ids": [)" +
                                     std::to_string(ci) + "]}");
  ASSERT_EQ(admin_change.status, 201);
  const std::string admin_path =
      "/api/v1/changes/" + std::to_string(admin_change.json().at("id").as_int64());
  ASSERT_EQ(Post(admin_path + "/submit", "").status, 200);
  EXPECT_EQ(Post(admin_path + "/approve", "").status, 403);
  EXPECT_EQ(As(other, "POST", admin_path + "/approve").status, 200);

  HttpResult approved = As(other, "POST", first + "/approve");
  ASSERT_EQ(approved.status, 200) << approved.body;
  const auto events = Get(first + "/events").json().at("items").as_array();
  EXPECT_EQ(events.back().at("by"), "cab-other");
  EXPECT_EQ(events.front().at("by"), "cab-self");
}

TEST_F(AccessApi, HandlersEscalateOnlyFromTheirTierAndLeadsApproveTheirLinesKnowledge) {
  const std::string first = UserWithToken("line-1", R"(["incident_handler"])", R"(, "tier": 1)");
  const std::string second = UserWithToken("line-2", R"(["incident_handler"])", R"(, "tier": 2)");
  const std::string lead1 = UserWithToken("lead-1", R"(["group_lead"])", R"(, "tier": 1)");
  const std::string lead2 = UserWithToken("lead-2", R"(["group_lead"])", R"(, "tier": 2)");
  const std::int64_t ci = CreateCi(R"({"type": "server", "name": "esc-1"})");
  HttpResult incident =
      As(first, "POST", "/api/v1/incidents",
         R"({"title": "down", "severity": 2, "ci_ids": [)" + std::to_string(ci) + "]}");
  ASSERT_EQ(incident.status, 201) << incident.body;
  const std::string path =
      "/api/v1/incidents/" + std::to_string(incident.json().at("id").as_int64());
  const std::string why = R"({"reason": "needs development"})";
  EXPECT_EQ(As(second, "POST", path + "/escalate", why).status, 403);  // not yet theirs
  HttpResult up = As(first, "POST", path + "/escalate", why);
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.json().at("tier"), 2);
  EXPECT_EQ(As(first, "POST", path + "/escalate", why).status, 403);  // no longer theirs
  EXPECT_EQ(As(second, "POST", path + "/escalate", why).status, 200);
  const auto events = Get(path + "/events").json().at("items").as_array();
  EXPECT_EQ(events.front().at("by"), "line-1");
  EXPECT_EQ(events.back().at("by"), "line-2");

  auto article = [&](const std::string& token) {
    HttpResult a =
        As(token, "POST", "/api/v1/knowledge", R"({"title": "restart the pool", "body": "how"})");
    EXPECT_EQ(a.status, 201) << a.body;
    return "/api/v1/knowledge/" + std::to_string(a.json().at("id").as_int64());
  };
  const std::string by_first = article(first);
  EXPECT_EQ(As(lead2, "POST", by_first + "/approve").status, 403);  // another line's
  EXPECT_EQ(As(first, "POST", by_first + "/approve").status, 403);  // not a lead
  const std::string by_lead = article(lead1);
  HttpResult own = As(lead1, "POST", by_lead + "/approve");
  EXPECT_EQ(own.status, 403);  // never their own
  EXPECT_NE(own.body.find("own"), std::string::npos) << own.body;
  HttpResult ok = As(lead1, "POST", by_first + "/approve");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json().at("approved_by"), "lead-1");
}

TEST_F(AccessApi, AnAgentPostsRunsOnlyToItsSource) {
  const std::int64_t mine = SourceId("agent-a");
  const std::int64_t other = SourceId("agent-b");
  const std::string agent = UserWithToken("agent-1", R"(["discovery_agent"])",
                                          R"(, "source_id": )" + std::to_string(mine));
  const std::string run = R"({"observations": []})";
  HttpResult own = As(agent, "POST", "/api/v1/discovery/runs?source=" + std::to_string(mine), run);
  EXPECT_EQ(own.status, 202) << own.body;
  HttpResult foreign =
      As(agent, "POST", "/api/v1/discovery/runs?source=" + std::to_string(other), run);
  EXPECT_EQ(foreign.status, 403) << foreign.body;
  EXPECT_EQ(As(agent, "POST", "/api/v1/cis", R"({"type": "vm", "name": "x"})").status, 403);
  // An agent must be bound, and only an agent is.
  EXPECT_EQ(Post("/api/v1/users", R"({"name": "unbound", "roles": ["discovery_agent"]})").status,
            422);
  EXPECT_EQ(Post("/api/v1/users", R"({"name": "odd", "roles": ["viewer"], "source_id": 1})").status,
            422);
}

TEST_F(AccessApi, WritesNameTheirUser) {
  const std::string assets = UserWithToken("arne", R"(["asset_admin"])");
  HttpResult created = As(assets, "POST", "/api/v1/cis", R"({"type": "vm", "name": "named"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = std::to_string(created.json().at("id").as_int64());
  auto history = Get("/api/v1/cis/" + id + "/history").json().at("items").as_array();
  EXPECT_EQ(history.at(0).at("changed_by"), "arne");
}

TEST_F(AccessApi, TokensCarryASubsetAndStopAtRevocationExpiryAndDeactivation) {
  ASSERT_EQ(
      Post("/api/v1/users", R"({"name": "tess", "roles": ["asset_admin", "auditor"]})").status,
      201);
  // A token of fewer roles than its user; never more.
  HttpResult narrow =
      Post("/api/v1/users/tess/tokens", R"({"name": "read only", "roles": ["auditor"]})");
  ASSERT_EQ(narrow.status, 201) << narrow.body;
  const std::string text(narrow.json().at("token").as_string());
  EXPECT_EQ(text.rfind("cmdb_" + std::to_string(narrow.json().at("id").as_int64()) + "_", 0), 0U);
  EXPECT_EQ(narrow.header("cache-control"), "no-store");
  EXPECT_EQ(Post("/api/v1/users/tess/tokens", R"({"roles": ["admin"]})").status, 422);
  EXPECT_EQ(Post("/api/v1/users/tess/tokens", R"({"expires_in_days": 0})").status, 422);
  EXPECT_EQ(As(text, "GET", "/api/v1/audit-log").status, 200);
  EXPECT_EQ(As(text, "POST", "/api/v1/cis", R"({"type": "vm", "name": "no"})").status, 403);
  HttpResult me = As(text, "GET", "/api/v1/me");
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.json().at("name"), "tess");
  EXPECT_EQ(me.json().at("token_roles"), boost::json::array({"auditor"}));
  // The restricted token cannot mint a wider one for its user.
  EXPECT_EQ(As(text, "POST", "/api/v1/users/tess/tokens", R"({"roles": ["asset_admin"]})").status,
            422);
  // Listed without the secret; the use is recorded.
  HttpResult listed = Get("/api/v1/users/tess/tokens");
  ASSERT_EQ(listed.status, 200);
  // (cmdb_<id>_<secret>: the secret, base64url, may itself hold '_', so it starts after the
  // second one.)
  const std::string secret = text.substr(text.find('_', std::string("cmdb_").size()) + 1);
  ASSERT_GE(secret.size(), 40U);
  EXPECT_EQ(listed.body.find(secret), std::string::npos);
  EXPECT_FALSE(listed.json().at("items").at(0).at("last_used_at").is_null());
  EXPECT_EQ(Sql("SELECT count(*) FROM api_tokens WHERE encode(secret_hash, 'escape') LIKE $1",
                {"%" + text + "%"})
                .Int(0, 0),
            0);
  // Another user's tokens are not theirs to see or revoke.
  const std::string viewer = UserWithToken("vic", R"(["viewer"])");
  EXPECT_EQ(As(viewer, "GET", "/api/v1/users/tess/tokens").status, 403);
  EXPECT_EQ(
      As(viewer, "DELETE", "/api/v1/tokens/" + std::to_string(narrow.json().at("id").as_int64()))
          .status,
      404);
  // Revoked: refused at once.
  EXPECT_EQ(Delete("/api/v1/tokens/" + std::to_string(narrow.json().at("id").as_int64())).status,
            204);
  HttpResult revoked = As(text, "GET", "/api/v1/me");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos) << revoked.body;
  // Expired: refused within the verified-token cache's second.
  HttpResult fresh = Post("/api/v1/users/tess/tokens", "{}");
  const std::string second(fresh.json().at("token").as_string());
  EXPECT_EQ(As(second, "GET", "/api/v1/me").status, 200);
  Sql("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
      {std::to_string(fresh.json().at("id").as_int64())});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  HttpResult expired = As(second, "GET", "/api/v1/me");
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
  // A deactivated user's tokens stop working.
  const std::string third(Post("/api/v1/users/tess/tokens", "{}").json().at("token").as_string());
  EXPECT_EQ(As(third, "GET", "/api/v1/me").status, 200);
  EXPECT_EQ(Patch("/api/v1/users/tess", R"({"active": false})").status, 200);
  EXPECT_EQ(As(third, "GET", "/api/v1/me").status, 401);
  // The last active admin cannot be removed.
  EXPECT_EQ(Delete("/api/v1/users/admin").status, 409);
  EXPECT_EQ(Patch("/api/v1/users/admin", R"({"roles": ["viewer"]})").status, 409);
}

// Another instance on the same database honours a revocation within a second (its verified-
// token cache), with no message between the instances.
TEST_F(AccessApi, ARevocationReachesAnotherInstanceWithinASecond) {
  const std::string token = UserWithToken("ivan", R"(["viewer"])");
  server::App other(Config());
  other.Start();
  auto me_on_other = [&] {
    return HttpRequest(other.port(), "GET", "/api/v1/me", "",
                       {{"Authorization", "Bearer " + token}})
        .status;
  };
  ASSERT_EQ(me_on_other(), 200);  // verified there, and kept
  const std::string id = token.substr(5, token.find('_', 5) - 5);
  ASSERT_EQ(Delete("/api/v1/tokens/" + id).status, 204);
  const auto revoked = std::chrono::steady_clock::now();
  while (me_on_other() == 200 &&
         std::chrono::steady_clock::now() - revoked < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - revoked).count();
  EXPECT_EQ(me_on_other(), 401);
  EXPECT_LT(seconds, 1.5);  // the cache's second, and a request's time
  other.Stop();
}

TEST_F(AccessApi, HostileAuthorizationHeadersAreRefusedAndTheServerStaysUp) {
  const std::string valid = UserWithToken("hal", R"(["viewer"])");
  const std::string id_part = valid.substr(0, valid.find('_', std::string("cmdb_").size()) + 1);
  for (const std::string& header :
       {std::string("Bearer"), std::string("Bearer "), std::string("Basic YWRtaW46YWRtaW4="),
        std::string("bearer ") + "x", "Bearer " + std::string(4000, 'A'),
        std::string("Bearer \xff\xfe\x80\xc3"), "Bearer " + id_part + std::string(43, 'A'),
        "Bearer cmdb_999999_" + std::string(43, 'A'), "Bearer " + valid + "x",
        "Bearer " + valid.substr(0, valid.size() - 1), "Token " + valid,
        "Bearer " + valid + " " + valid}) {
    HttpResult r = HttpRequest(port(), "GET", "/api/v1/cis", "", {{"Authorization", header}});
    EXPECT_EQ(r.status, 401) << header.substr(0, 60);
    EXPECT_EQ(r.header("content-type"), "application/problem+json");
  }
  // Control characters are refused by the HTTP parser before any handler.
  EXPECT_EQ(
      HttpRequest(port(), "GET", "/api/v1/cis", "", {{"Authorization", "Bearer \x01\x02"}}).status,
      400);
  // The right token, with the scheme in any case, works; the server is up.
  EXPECT_EQ(
      HttpRequest(port(), "GET", "/api/v1/cis", "", {{"Authorization", "bEaReR " + valid}}).status,
      200);
}

TEST_F(AccessApi, TheAuditLogRecordsWritesAndRefusalsAndCannotBeChanged) {
  const std::string viewer = UserWithToken("olga", R"(["viewer"])");
  const std::string auditor = UserWithToken("aud", R"(["auditor"])");
  const std::int64_t ci = CreateCi(R"({"type": "vm", "name": "audited"})");
  EXPECT_EQ(As(viewer, "DELETE", "/api/v1/cis/" + std::to_string(ci)).status, 403);
  EXPECT_EQ(As("", "GET", "/api/v1/cis").status, 401);
  EXPECT_EQ(As(viewer, "GET", "/api/v1/audit-log").status, 403);

  HttpResult log = As(auditor, "GET", "/api/v1/audit-log?limit=1000");
  ASSERT_EQ(log.status, 200) << log.body;
  const auto& items = log.json().at("items").as_array();
  auto find = [&](const std::string& method, const std::string& route, int status) {
    for (const auto& e : items) {
      if (e.at("method") == method.c_str() && e.at("route") == route.c_str() &&
          e.at("status") == status) {
        return e;
      }
    }
    return boost::json::value();
  };
  const boost::json::value created = find("POST", "/api/v1/cis", 201);
  ASSERT_TRUE(created.is_object()) << log.body;
  EXPECT_EQ(created.at("actor"), "admin");
  EXPECT_EQ(created.at("target_ids"), boost::json::array({std::to_string(ci)}));
  EXPECT_EQ(created.at("client_address"), "127.0.0.1");
  EXPECT_FALSE(created.at("request_id").as_string().empty());
  EXPECT_TRUE(created.at("token_id").is_int64());
  const boost::json::value refused = find("DELETE", "/api/v1/cis/{id}", 403);
  ASSERT_TRUE(refused.is_object());
  EXPECT_EQ(refused.at("actor"), "olga");
  const boost::json::value anonymous = find("GET", "/api/v1/cis", 401);
  ASSERT_TRUE(anonymous.is_object());
  EXPECT_TRUE(anonymous.at("actor").is_null());
  // Filters: by actor, by action, by target; newest first with a cursor.
  auto count = [&](const std::string& query) {
    HttpResult r = As(auditor, "GET", "/api/v1/audit-log?" + query);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    return r.json().at("items").as_array().size();
  };
  EXPECT_EQ(count("actor=olga&status=403"), 2U);
  EXPECT_GE(count("action=POST%20/api/v1/cis"), 1U);
  EXPECT_EQ(count("target=" + std::to_string(ci)), 2U);
  EXPECT_EQ(count("since=2100-01-01T00:00:00Z"), 0U);
  HttpResult page = As(auditor, "GET", "/api/v1/audit-log?limit=2");
  ASSERT_FALSE(page.json().at("next_cursor").is_null());
  HttpResult next = As(
      auditor, "GET",
      "/api/v1/audit-log?limit=2&cursor=" + std::string(page.json().at("next_cursor").as_string()));
  EXPECT_LT(next.json().at("items").at(0).at("id").as_int64(),
            page.json().at("items").at(1).at("id").as_int64() + 1);
  EXPECT_EQ(As(auditor, "GET", "/api/v1/audit-log?since=yesterday").status, 400);

  // Append-only, for the database's own users too.
  for (const std::string statement :
       {"UPDATE audit_log SET actor = 'someone'", "DELETE FROM audit_log", "TRUNCATE audit_log"}) {
    EXPECT_THROW(Sql(statement), std::exception) << statement;
  }
  // Retention removes only what is older than the setting.
  Sql("INSERT INTO audit_log (at, method, route, path, status, request_id, client_address) "
      "VALUES (now() - interval '400 days', 'POST', '/x', '/x', 201, 'old', '127.0.0.1')");
  EXPECT_THROW(Sql("DELETE FROM audit_log WHERE request_id = 'old'"), std::exception);
  Sql("WITH setting AS (SELECT set_config('cmdb.audit_retention_days', '365', true)) "
      "DELETE FROM audit_log WHERE at < now() - interval '365 days' "
      "AND EXISTS (SELECT 1 FROM setting)");
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log WHERE request_id = 'old'").Int(0, 0), 0);
  EXPECT_GT(Sql("SELECT count(*) FROM audit_log").Int(0, 0), 3);
}

// The lines are written in the background (store/audit_log_writer.hpp): concurrent writers'
// lines all arrive, each writer's in its order, a line with text PostgreSQL would refuse costs
// no other line, a read of the log sees every write answered before it, and a stop writes what
// is still queued.
TEST_F(AccessApi, AuditLinesWrittenInTheBackgroundArriveInOrderAndNoneIsLost) {
  const std::string auditor = UserWithToken("aud2", R"(["auditor"])");
  constexpr int kThreads = 6;
  constexpr int kEach = 40;
  std::vector<std::vector<std::int64_t>> created(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        HttpResult r = Post("/api/v1/cis", R"({"type": "vm", "name": "burst-)" + std::to_string(t) +
                                               "-" + std::to_string(i) + "\"}");
        if (r.status == 201) created[t].push_back(r.json().at("id").as_int64());
      }
    });
  }
  // An identifier cut to 200 bytes in the middle of a character: invalid UTF-8 once cut.
  const std::string cut = "/api/v1/cis/" + std::string(199, 'a') + "\xE4\xB8\xAD";
  const int cut_status = As(auditor, "DELETE", cut).status;
  for (std::thread& th : threads) th.join();
  // The read right after the writes answered sees every one of them.
  HttpResult log = As(auditor, "GET", "/api/v1/audit-log?action=POST%20/api/v1/cis&limit=1000");
  ASSERT_EQ(log.status, 200) << log.body;
  std::map<std::string, std::int64_t> line_of;  // created CI id -> audit line id
  for (const auto& e : log.json().at("items").as_array()) {
    if (e.at("status") == 201 && e.at("target_ids").as_array().size() == 1) {
      line_of[std::string(e.at("target_ids").at(0).as_string())] = e.at("id").as_int64();
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(created[t].size(), static_cast<std::size_t>(kEach));
    std::int64_t previous = 0;
    for (std::int64_t ci : created[t]) {
      ASSERT_TRUE(line_of.contains(std::to_string(ci))) << "no line for CI " << ci;
      EXPECT_GT(line_of[std::to_string(ci)], previous) << "out of order: CI " << ci;
      previous = line_of[std::to_string(ci)];
    }
  }
  if (cut_status != 400) {  // the parser took the raw octets: the route refused or missed it
    HttpResult refused = As(auditor, "GET", "/api/v1/audit-log?action=DELETE&actor=aud2");
    ASSERT_EQ(refused.status, 200) << refused.body;
    ASSERT_EQ(refused.json().at("items").as_array().size(), 1U) << refused.body;
    const auto& line = refused.json().at("items").at(0);
    EXPECT_EQ(line.at("target_ids").at(0).as_string(), std::string(199, 'a') + "\xEF\xBF\xBD");
  }
  // Writes answered just before a stop: their lines are written by the stop.
  const std::int64_t before = Sql("SELECT count(*) FROM audit_log").Int(0, 0);
  for (int i = 0; i < 20; ++i)
    CreateCi(R"({"type": "vm", "name": "last-)" + std::to_string(i) + "\"}");
  Restart(Config());
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log").Int(0, 0), before + 20);
}

// Lines PostgreSQL keeps refusing are dropped after the writer's attempts, counted, and the
// writer goes on with the next lines (here the table is away, as in a broken restore).
TEST_F(AccessApi, AuditLinesPostgresRefusesAreDroppedAndCountedAndTheWriterGoesOn) {
  store::DbPool pool(dsn_, 1);
  store::AuditLogWriterOptions options;
  options.attempts = 2;
  store::AuditLogWriter writer(pool, options);
  model::AuditEntry line;
  line.method = "POST";
  line.route = "/x";
  line.path = "/x";
  line.status = 201;
  line.client_address = "127.0.0.1";
  Sql("ALTER TABLE audit_log RENAME TO audit_log_away");
  for (const char* id : {"away-1", "away-2"}) {
    line.request_id = id;
    writer.Append(line);
  }
  writer.Flush();
  Sql("ALTER TABLE audit_log_away RENAME TO audit_log");
  EXPECT_EQ(writer.dropped(), 2U);
  line.request_id = "back";
  writer.Append(line);
  writer.Flush();
  EXPECT_EQ(writer.written(), 1U);
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log WHERE request_id LIKE 'away-%'").Int(0, 0), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log WHERE request_id = 'back'").Int(0, 0), 1);
}

// --audit-retention-days prunes what is older (at start, then hourly), nothing younger.
TEST_F(AccessApi, RetentionPrunesOnlyOldAuditEntries) {
  CreateCi(R"({"type": "vm", "name": "recent"})");
  Sql("INSERT INTO audit_log (at, method, route, path, status, request_id, client_address) "
      "VALUES (now() - interval '40 days', 'POST', '/x', '/x', 201, 'forty', '127.0.0.1'), "
      "(now() - interval '20 days', 'POST', '/x', '/x', 201, 'twenty', '127.0.0.1')");
  server::ServeConfig config = Config();
  config.audit_retention_days = 30;
  Restart(config);
  std::int64_t left = 1;
  for (int i = 0; i < 100 && left > 0; ++i) {
    left = Sql("SELECT count(*) FROM audit_log WHERE request_id = 'forty'").Int(0, 0);
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(left, 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log WHERE request_id = 'twenty'").Int(0, 0), 1);
  EXPECT_GE(Sql("SELECT count(*) FROM audit_log WHERE route = '/api/v1/cis'").Int(0, 0), 1);
}

TEST_F(AccessApi, FailedAttemptsFromOneAddressAreSlowedDown) {
  // Verified tokens kept for a minute here, so that a slow machine cannot let the one verified
  // before the flood expire during it.
  server::ServeConfig config = Config();
  config.token_cache = std::chrono::minutes(1);
  Restart(config);
  const std::string valid = UserWithToken("rita", R"(["viewer"])");
  const std::string fresh = UserWithToken("rudi", R"(["viewer"])");  // not used before the flood
  EXPECT_EQ(As(valid, "GET", "/api/v1/me").status, 200);             // verified before the flood
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 40 && limited == 0; ++i) {
    HttpResult r =
        As("cmdb_1_" + std::string(43, static_cast<char>('a' + i % 26)), "GET", "/api/v1/cis");
    if (r.status == 429) {
      ++limited;
      retry_after = r.header("retry-after");
    } else {
      EXPECT_EQ(r.status, 401);
    }
  }
  EXPECT_EQ(limited, 1);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  // A token verified within the second still works from that address; a token not verified
  // yet waits like any other attempt from there; from another address it works at once.
  EXPECT_EQ(As(valid, "GET", "/api/v1/me").status, 200);
  EXPECT_EQ(As(fresh, "GET", "/api/v1/me").status, 429);
  const HttpResult elsewhere = ParseResponse(
      RawExchange(port(),
                  "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
                  "Bearer " +
                      fresh + "\r\n\r\n",
                  "127.0.0.2"));
  EXPECT_EQ(elsewhere.status, 200) << elsewhere.body;
  EXPECT_EQ(elsewhere.json().at("name"), "rudi");
}

// CMDB_BOOTSTRAP_TOKEN on a fresh database creates admin; once an admin exists another value is
// ignored (the first still works); the first start without it writes a random token.
TEST_F(AccessApi, BootstrapHappensOnceAndIsIgnoredAfterwards) {
  HttpResult me = Get("/api/v1/me");
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json().at("roles"), boost::json::array({"admin"}));
  server::ServeConfig config = Config();
  config.bootstrap_token = "another-bootstrap-token-0123456789abcdef";
  Restart(config);
  EXPECT_EQ(Get("/api/v1/me").status, 200);
  EXPECT_EQ(As(config.bootstrap_token, "GET", "/api/v1/me").status, 401);
  EXPECT_EQ(Sql("SELECT count(*) FROM users WHERE 'admin' = ANY (roles)").Int(0, 0), 1);
  // A bad bootstrap token on a database without an admin stops the start, naming the rule.
  Sql("UPDATE users SET active = false");
  config.bootstrap_token = "short";
  app_->Stop();
  app_ = std::make_unique<server::App>(config);
  EXPECT_THROW(app_->Start(), model::Error);
  // Another pepper than the database's tokens were hashed with is refused at start.
  config.bootstrap_token = kTestAdminToken;
  config.token_pepper = "a-different-pepper-0123456789abcdefghijklmnop";
  app_ = std::make_unique<server::App>(config);
  EXPECT_THROW(app_->Start(), model::Error);
  // With the right pepper, admin is active again with the bootstrap token.
  app_ = std::make_unique<server::App>(Config());
  app_->Start();
  EXPECT_EQ(Get("/api/v1/me").status, 200);
}

// What a shell command printed on stdout, and its exit status.
std::pair<std::string, int> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {"", -1};
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// `cmdb user add` and `cmdb token create` against --database, with the server running: the
// token works over HTTP at once; the commands are audited; a wrong pepper is refused.
TEST_F(AccessApi, OperatorCommandsAddUsersAndIssueTokensWithoutTheApi) {
  const std::string cmdb = std::string(CMDB_BINARY) + " ";
  const std::string db = " --database '" + dsn_ + "'";
  const std::string pepper = std::string("CMDB_TOKEN_PEPPER=") + kTestPepper + " ";
  auto [user, user_status] =
      Shell(cmdb + "user add ops-1 --role admin --display-name 'Ops One'" + db + " 2>&1");
  ASSERT_EQ(user_status, 0) << user;
  EXPECT_EQ(boost::json::parse(user).at("name"), "ops-1");
  auto [token, token_status] =
      Shell(pepper + cmdb + "token create --user ops-1 --name recovery" + db + " 2>&1");
  ASSERT_EQ(token_status, 0) << token;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  HttpResult me = As(token, "GET", "/api/v1/me");
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json().at("name"), "ops-1");
  // A narrower token, and the mistakes an operator makes.
  auto [narrow, narrow_status] =
      Shell(pepper + cmdb + "token create --user ops-1 --role viewer" + db + " 2>/dev/null");
  ASSERT_EQ(narrow_status, 0);
  narrow.pop_back();
  EXPECT_EQ(As(narrow, "POST", "/api/v1/cis", R"({"type": "vm", "name": "x"})").status, 403);
  EXPECT_EQ(Shell(cmdb + "user add ops-1 --role admin" + db + " 2>/dev/null").second, 1);  // taken
  EXPECT_EQ(Shell(cmdb + "user add ops-2 --role root" + db + " 2>/dev/null").second, 2);
  EXPECT_EQ(Shell(cmdb + "user add ops-3 --role incident_handler" + db + " 2>/dev/null").second,
            1);  // a handler needs a tier
  EXPECT_EQ(Shell(pepper + cmdb + "token create --user nobody" + db + " 2>/dev/null").second, 1);
  auto [wrong, wrong_status] =
      Shell("CMDB_TOKEN_PEPPER=another-pepper-0123456789abcdefghijklmnop " + cmdb +
            "token create --user ops-1" + db + " 2>&1");
  EXPECT_EQ(wrong_status, 1);
  EXPECT_NE(wrong.find("pepper"), std::string::npos) << wrong;
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_log WHERE method = 'CLI'").Int(0, 0), 3);
}

// --tls-cert/--tls-key: HTTPS with a certificate made here, TLS 1.2 or newer only; a plain
// HTTP client gets no answer; a missing key stops the start.
TEST_F(AccessApi, TlsServesHttpsToTls12AndNewerOnly) {
  char dir[] = "/tmp/cmdbtls-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string cert = std::string(dir) + "/cert.pem";
  const std::string key = std::string(dir) + "/key.pem";
  ASSERT_EQ(Shell("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                  " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null")
                .second,
            0);
  server::ServeConfig config = Config();
  config.tls_cert = cert;
  config.tls_key = key;
  Restart(config);
  EXPECT_EQ(app_->base_url().rfind("https://", 0), 0U);
  const std::string url = "https://127.0.0.1:" + std::to_string(port());
  const std::string curl = "curl -s --cacert " + cert + " ";
  EXPECT_EQ(Shell(curl + "-o /dev/null -w '%{http_code}' " + url + "/health").first, "200");
  auto [me, me_status] =
      Shell(curl + "-H 'Authorization: Bearer " + kTestAdminToken + "' " + url + "/api/v1/me");
  ASSERT_EQ(me_status, 0);
  EXPECT_EQ(boost::json::parse(me).at("name"), "admin");
  EXPECT_EQ(Shell(curl + "-o /dev/null -w '%{http_code}' " + url + "/api/v1/cis").first, "401");
  // TLS 1.3 and 1.2 are served; 1.1 is not.
  EXPECT_EQ(Shell(curl + "--tlsv1.3 -o /dev/null -w '%{http_code}' " + url + "/health").first,
            "200");
  EXPECT_EQ(
      Shell(curl + "--tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}' " + url + "/health")
          .first,
      "200");
  EXPECT_NE(Shell(curl + "--tlsv1.1 --tls-max 1.1 -o /dev/null " + url + "/health").second, 0);
  // Plain HTTP on the TLS port: no HTTP answer, and the server keeps serving.
  EXPECT_NE(RawExchange(port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/", 0), 0U);
  EXPECT_EQ(Shell(curl + "-o /dev/null -w '%{http_code}' " + url + "/health").first, "200");
  // A key that is not there: the start fails naming it.
  config.tls_key = std::string(dir) + "/missing.pem";
  app_->Stop();
  app_ = std::make_unique<server::App>(config);
  try {
    app_->Start();
    ADD_FAILURE() << "started without its TLS key";
  } catch (const model::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
  app_ = std::make_unique<server::App>(Config());
  app_->Start();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cmdb::testing
