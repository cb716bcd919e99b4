// Incidents, the service calendar, traces and knowledge over real HTTP and PostgreSQL.

#include <chrono>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "model/timestamp.hpp"
#include "store/db_pool.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

std::int64_t Micros(const json::value& text) {
  return model::ParseTimestamp(text.as_string())->micros;
}

std::string Ago(int minutes) {
  return model::FormatTimestamp(
      model::Timestamp{model::Timestamp::Now().micros - std::int64_t{minutes} * 60 * 1000000});
}

class IncidentsApi : public ServerTest {
 protected:
  std::string reviewer_;  // a change_reviewer's token, made on first use
  void SetUp() override {
    ServerTest::SetUp();
    host_ = CreateCi(R"({"type": "server", "name": "host-01"})");
    db_ = CreateCi(R"({"type": "database", "name": "orders-db"})");
    app_ = CreateCi(R"({"type": "application", "name": "orders-app"})");
    service_ = CreateCi(R"({"type": "business_service", "name": "Orders"})");
    unrelated_ = CreateCi(R"({"type": "server", "name": "print-01"})");
    Relate(db_, host_);
    Relate(app_, db_);
    Relate(service_, app_);
  }

  std::int64_t Incident(const std::string& extra = "") {
    HttpResult r =
        Post("/api/v1/incidents", R"({"title": "orders fail", "severity": 2, "ci_ids": [)" +
                                      std::to_string(app_) + "]" + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  }

  HttpResult Act(std::int64_t id, const std::string& action, const std::string& body = "") {
    return Post("/api/v1/incidents/" + std::to_string(id) + "/" + action, body);
  }

  // A change on `ci` taken to `state` (completed or in_progress).
  std::int64_t Change(std::int64_t ci, const std::string& state) {
    HttpResult r = Post("/api/v1/changes", R"({"title": "change on )" + std::to_string(ci) +
                                               R"(", "planned_start": ")" + Ago(60) +
                                               R"(", "planned_end": ")" + Ago(-60) +
                                               R"(", "ci_ids": [)" + std::to_string(ci) + "]}");
    const std::int64_t id = r.json().at("id").as_int64();
    if (reviewer_.empty()) reviewer_ = TokenFor("cab", R"(["change_reviewer"])");
    for (const char* action : {"submit", "approve", "start"}) {
      const std::string target = "/api/v1/changes/" + std::to_string(id) + "/" + action;
      std::string(action) == "approve" ? PostAs(reviewer_, target) : Post(target, "");
    }
    if (state == "completed") Post("/api/v1/changes/" + std::to_string(id) + "/complete", "");
    return id;
  }

  std::int64_t host_ = 0, db_ = 0, app_ = 0, service_ = 0, unrelated_ = 0;
};

TEST_F(IncidentsApi, InvalidIncidentsNameEveryField) {
  HttpResult r = Post("/api/v1/incidents", R"({"title": "", "severity": 5, "tier": 4,
      "ci_ids": [999999], "started_at": "2999-01-01T00:00:00Z", "priority": "p1"})");
  ASSERT_EQ(r.status, 422) << r.body;
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"title", "severity", "tier", "ci_ids[0]", "started_at",
                                           "priority"}));
  EXPECT_EQ(Post("/api/v1/incidents", R"({"title": "x", "severity": 0, "ci_ids": []})").status,
            422);
  EXPECT_TRUE(Get("/api/v1/incidents").json().at("items").as_array().empty());
  HttpResult calendar =
      Put("/api/v1/service-calendar", R"({"working_hours": {"start": "17:00", "end": "09:00"},
      "response_targets": {"2": {"weeks": 1}}})");
  ASSERT_EQ(calendar.status, 422);
  EXPECT_EQ(calendar.json().at("errors").as_array().size(), 2U);
  json::value defaults = Get("/api/v1/service-calendar").json();
  EXPECT_EQ(defaults.at("response_targets").at("2"), json::parse(R"({"days": 1})"));
  EXPECT_EQ(defaults.at("response_target_minutes").at("2"), 480);
}

TEST_F(IncidentsApi, TiersEscalateWithAReasonAndEachTierHasItsResponseTarget) {
  // Every minute is working time, so due times are plain arithmetic here (the calendar's
  // weekends, hours and holidays are covered by the unit tests).
  ASSERT_EQ(Put("/api/v1/service-calendar", R"({"working_days": [1, 2, 3, 4, 5, 6, 7],
      "working_hours": {"start": "00:00", "end": "24:00"}, "response_targets": {"1": {"hours": 2}}})")
                .status,
            200);
  const std::int64_t id = Incident();
  json::value created = Get("/api/v1/incidents/" + std::to_string(id)).json();
  EXPECT_EQ(created.at("state"), "new");
  EXPECT_EQ(created.at("tier"), 1);
  const std::int64_t hour = 3600LL * 1000000;
  EXPECT_NEAR(
      static_cast<double>(Micros(created.at("response_due")) - Micros(created.at("tier_since"))),
      2.0 * hour, 1e6);
  EXPECT_EQ(created.at("overdue"), false);

  EXPECT_EQ(Act(id, "escalate").status, 422);  // a reason is required
  EXPECT_EQ(Act(id, "escalate", R"({"reason": "   "})").status, 422);
  HttpResult second = Act(id, "escalate", R"({"reason": "needs a code fix"})");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.json().at("tier"), 2);
  // Tier 2 analyses within one working day (24 h when every hour is working time).
  EXPECT_NEAR(static_cast<double>(Micros(second.json().at("response_due")) -
                                  Micros(second.json().at("tier_since"))),
              24.0 * hour, 1e6);
  EXPECT_EQ(Act(id, "assign", R"({"assignee": "dev-team"})").json().at("state"), "in_progress");
  HttpResult third = Act(id, "escalate", R"({"reason": "vendor bug"})");
  EXPECT_EQ(third.json().at("tier"), 3);
  EXPECT_TRUE(third.json().at("assignee").is_null());  // the vendor picks it up
  HttpResult last = Act(id, "escalate", R"({"reason": "more"})");
  EXPECT_EQ(last.status, 409);
  EXPECT_NE(last.json().at("detail").as_string().find("tier 3"), json::string::npos);
  HttpResult assigned = Act(id, "assign", R"({"assignee": "vendor"})");
  EXPECT_EQ(assigned.json().at("response_met"), true);
  EXPECT_EQ(Act(id, "close").status, 409);
  EXPECT_EQ(Act(id, "resolve", R"({"resolution": "patched"})").json().at("state"), "resolved");
  EXPECT_EQ(Act(id, "escalate", R"({"reason": "x"})").status, 409);
  HttpResult closed = Act(id, "close");
  EXPECT_EQ(closed.json().at("state"), "closed");
  EXPECT_EQ(closed.json().at("allowed_actions"), "none");
  json::array events =
      Get("/api/v1/incidents/" + std::to_string(id) + "/events").json().at("items").as_array();
  ASSERT_EQ(events.size(), 7U);
  EXPECT_EQ(events[1].at("action"), "escalate");
  EXPECT_EQ(events[1].at("reason"), "needs a code fix");
  EXPECT_EQ(events[1].at("to_tier"), 2);
  EXPECT_EQ(Get("/api/v1/incidents?tier=3&state=closed").json().at("items").as_array().size(), 1U);
  EXPECT_EQ(Get("/api/v1/incidents?severity=9").status, 400);
  EXPECT_EQ(Act(id, "assign", R"({"assignee": 7})").status, 422);
  EXPECT_EQ(Act(999999, "close").status, 404);
}

TEST_F(IncidentsApi, TraceRanksSuspectsAndShowsDriftKnowledgeAndServicesAsOfTheStart) {
  const std::int64_t on_app = Change(app_, "completed");
  const std::int64_t on_host = Change(host_, "in_progress");
  const std::int64_t on_db = Change(db_, "completed");
  Change(unrelated_, "completed");
  const std::int64_t old_one = Change(db_, "completed");
  Sql("UPDATE change_events SET at = now() - interval '100 hours' WHERE change_id = $1 AND action "
      "= 'complete'",
      {P(old_one)});
  Sql("INSERT INTO drift_findings (ci_id, attribute, expected, actual, run_id, last_run_id, "
      "detected_at, "
      "observed_at) VALUES ($1, 'engine_version', '\"15\"', '\"16\"', 0, 0, now(), now())",
      {P(db_)});
  HttpResult article = Post(
      "/api/v1/knowledge",
      R"({"title": "orders-db failover", "body": "Promote the replica with pg_ctl promote.", "ci_ids": [)" +
          std::to_string(db_) + "]}");
  ASSERT_EQ(article.status, 201) << article.body;
  const std::int64_t incident = Incident();
  const std::string trace = "/api/v1/incidents/" + std::to_string(incident) + "/trace";
  json::value t = Get(trace).json();
  ASSERT_EQ(t.at("services").as_array().size(), 1U) << t;
  EXPECT_EQ(t.at("services").at(0).at("ci"), service_);
  const json::array& suspects = t.at("suspect_changes").as_array();
  ASSERT_EQ(suspects.size(), 3U) << t;
  EXPECT_EQ(suspects[0].at("change"), on_app);  // on the incident's own CI
  EXPECT_EQ(suspects[0].at("distance"), 0);
  EXPECT_EQ(suspects[1].at("change"), on_db);  // what it depends on, one step away
  EXPECT_EQ(suspects[1].at("distance"), 1);
  EXPECT_NE(suspects[1].at("reason").as_string().find("orders-db"), json::string::npos);
  EXPECT_EQ(suspects[2].at("change"), on_host);
  EXPECT_EQ(suspects[2].at("state"), "in_progress");
  ASSERT_EQ(t.at("drift").as_array().size(), 1U);
  EXPECT_EQ(t.at("drift").at(0).at("ci"), db_);
  EXPECT_TRUE(t.at("knowledge").as_array().empty());  // drafts are not offered
  const std::int64_t a = article.json().at("id").as_int64();
  // Approved by another admin (no one approves their own article).
  const std::string other_admin = TokenFor("admin-2", R"(["admin"])");
  EXPECT_EQ(PostAs(other_admin, "/api/v1/knowledge/" + std::to_string(a) + "/approve").status, 200);
  EXPECT_EQ(PostAs(other_admin, "/api/v1/knowledge/" + std::to_string(a) + "/approve").status, 409);
  json::value again = Get(trace).json();
  ASSERT_EQ(again.at("knowledge").as_array().size(), 1U);
  EXPECT_EQ(again.at("knowledge").at(0).at("article"), a);
  // A longer look-back finds the change completed 100 hours ago.
  EXPECT_EQ(Get(trace + "?lookback_hours=120").json().at("suspect_changes").as_array().size(), 4U);
  EXPECT_EQ(Get(trace + "?lookback_hours=0").status, 400);
}

TEST_F(IncidentsApi, ServicesAreThoseReachedWhenTheIncidentStarted) {
  const std::int64_t overlapping = Change(app_, "in_progress");
  // An incident that started before a second service came to depend on its CI.
  const std::int64_t earlier = Incident();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::int64_t billing = CreateCi(R"({"type": "business_service", "name": "Billing"})");
  Relate(billing, app_);
  // The relation's notification comes back through this instance's listener too, a few
  // milliseconds later; an incident raised after that is traced over the in-memory graph.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::int64_t now = Incident();
  json::value then = Get("/api/v1/incidents/" + std::to_string(earlier) + "/trace").json();
  EXPECT_EQ(then.at("graph"), "history");
  ASSERT_EQ(then.at("services").as_array().size(), 1U) << then;
  EXPECT_EQ(then.at("services").at(0).at("ci"), service_);
  json::value current = Get("/api/v1/incidents/" + std::to_string(now) + "/trace").json();
  EXPECT_EQ(current.at("graph"), "current");
  EXPECT_EQ(current.at("services").as_array().size(), 2U) << current;
  // A change started and completed after the incident started is no suspect of it; one that
  // was in progress when it started is, though it has completed since.
  Change(app_, "completed");
  ASSERT_EQ(Post("/api/v1/changes/" + std::to_string(overlapping) + "/complete", "").status, 200);
  json::value traced = Get("/api/v1/incidents/" + std::to_string(earlier) + "/trace").json();
  const json::array& suspects = traced.at("suspect_changes").as_array();
  ASSERT_EQ(suspects.size(), 1U) << traced;
  EXPECT_EQ(suspects[0].at("change"), overlapping);
  EXPECT_EQ(suspects[0].at("state"), "completed");
  EXPECT_EQ(std::string(suspects[0].at("title").as_string()), "change on " + std::to_string(app_));
  const std::string reason(suspects[0].at("reason").as_string());
  EXPECT_NE(reason.find("in progress since"), std::string::npos) << reason;
  EXPECT_NE(reason.find("(completed since)"), std::string::npos) << reason;
}

TEST_F(IncidentsApi, KnowledgeIsValidatedAndSearchable) {
  HttpResult bad = Post("/api/v1/knowledge", R"({"title": " ", "ci_ids": [999999], "tags": []})");
  ASSERT_EQ(bad.status, 422) << bad.body;
  std::set<std::string> fields;
  for (const auto& e : bad.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"title", "body", "ci_ids[0]", "tags"}));
  Post("/api/v1/knowledge",
       R"({"title": "Rotate TLS certificates", "body": "Use certbot renew, then reload nginx."})");
  Post("/api/v1/knowledge",
       R"({"title": "Disk full on <db> & \"quotes\"", "body": "Vacuum the largest tables."})");
  json::array found = Get("/api/v1/knowledge?q=certbot%20nginx").json().at("items").as_array();
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].at("title"), "Rotate TLS certificates");
  EXPECT_EQ(Get("/api/v1/knowledge?q=vacuum").json().at("items").at(0).at("title"),
            "Disk full on <db> & \"quotes\"");
  EXPECT_TRUE(Get("/api/v1/knowledge?q=kubernetes").json().at("items").as_array().empty());
  EXPECT_EQ(Get("/api/v1/knowledge?state=approved").json().at("items").as_array().size(), 0U);
  EXPECT_EQ(Get("/api/v1/knowledge?state=published").status, 400);
  // One article by id, as written, with the fields the server adds.
  const std::int64_t id = found[0].at("id").as_int64();
  HttpResult one = Get("/api/v1/knowledge/" + std::to_string(id));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json().at("title"), "Rotate TLS certificates");
  EXPECT_EQ(one.json().at("body"), "Use certbot renew, then reload nginx.");
  EXPECT_EQ(one.json().at("id"), id);
  EXPECT_EQ(Get("/api/v1/knowledge/987654").status, 404);
}

}  // namespace
}  // namespace cmdb::testing
