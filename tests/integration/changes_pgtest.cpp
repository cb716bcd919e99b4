// Changes over real HTTP and PostgreSQL: validation, every transition, concurrent
// transitions, the frozen assessment, collisions, authorised drift and the plan checked
// against discovery on completion.

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "model/timestamp.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

std::string At(int hours_from_now) {
  return model::FormatTimestamp(model::Timestamp{model::Timestamp::Now().micros +
                                                 std::int64_t{hours_from_now} * 3600 * 1000000});
}

class ChangesApi : public ServerTest {
 protected:
  // service -> app -> db (depends_on), and a second app on the same db.
  void SetUp() override {
    ServerTest::SetUp();
    reviewer_ = TokenFor("cab", R"(["change_reviewer"])");
    db_ = CreateCi(
        R"({"type": "server", "name": "db-01", "attributes": {"serial": "S1", "os": "Debian", "os_version": "12", "memory_mb": 1024, "kernel": "6.1"}})");
    app_ = CreateCi(
        R"({"type": "application", "name": "shop-app", "attributes": {"app_code": "SHOP"}})");
    service_ = CreateCi(
        R"({"type": "business_service", "name": "Shop", "attributes": {"service_code": "SHOP"}})");
    other_ = CreateCi(
        R"({"type": "server", "name": "mail-01", "attributes": {"serial": "S2", "os": "Debian"}})");
    Relate(app_, db_);
    Relate(service_, app_);
  }

  std::int64_t CreateChange(const std::vector<std::int64_t>& cis, int start, int end,
                            const std::string& planned = "{}") {
    json::array ids;
    for (auto id : cis) ids.emplace_back(id);
    json::object body{{"title", "change"},
                      {"planned_start", At(start)},
                      {"planned_end", At(end)},
                      {"ci_ids", ids},
                      {"planned_attributes", json::parse(planned)}};
    HttpResult r = Post("/api/v1/changes", json::serialize(body));
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  }

  // Reviews are another user's (no one reviews their own change): a change_reviewer's.
  HttpResult Act(std::int64_t change, const std::string& action, const std::string& body = "") {
    const std::string target = "/api/v1/changes/" + std::to_string(change) + "/" + action;
    if (action == "approve" || action == "reject") return PostAs(reviewer_, target, body);
    return Post(target, body);
  }
  std::string reviewer_;

  std::int64_t db_ = 0;
  std::int64_t app_ = 0;
  std::int64_t service_ = 0;
  std::int64_t other_ = 0;
};

TEST_F(ChangesApi, InvalidChangesNameEveryFieldAndWriteNothing) {
  HttpResult r = Post("/api/v1/changes",
                      R"({"title": "  ", "risk": "extreme",
      "planned_start": "2026-12-01T10:00:00Z", "planned_end": "2026-12-01T09:00:00Z",
      "ci_ids": [)" + std::to_string(db_) +
                          R"(, 999999, "x"],
      "planned_attributes": {")" +
                          std::to_string(db_) +
                          R"(": {"memory_mb": "lots", "colour": "red"}, "12345": {"os": "x"}},
      "owner": "me"})");
  ASSERT_EQ(r.status, 422) << r.body;
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  const std::string db = std::to_string(db_);
  EXPECT_EQ(fields, (std::set<std::string>{"title", "risk", "planned_end", "ci_ids[1]", "ci_ids[2]",
                                           "planned_attributes." + db + ".memory_mb",
                                           "planned_attributes." + db + ".colour",
                                           "planned_attributes.12345", "owner"}));
  EXPECT_EQ(
      Post("/api/v1/changes", R"({"title": "t", "planned_start": "soon", "ci_ids": []})").status,
      422);
  EXPECT_EQ(Post("/api/v1/changes", "[1]").status, 400);
  EXPECT_TRUE(Get("/api/v1/changes").json().at("items").as_array().empty());
}

TEST_F(ChangesApi, EveryTransitionOfTheStateMachine) {
  std::int64_t c = CreateChange({db_}, 1, 2);
  json::value created = Get("/api/v1/changes/" + std::to_string(c)).json();
  EXPECT_EQ(created.at("state"), "draft");
  EXPECT_EQ(created.at("allowed_actions"), "submit, cancel");
  for (const char* bad : {"approve", "reject", "start", "complete", "fail"}) {
    HttpResult r = Act(c, bad);
    EXPECT_EQ(r.status, 409) << bad;
    EXPECT_NE(r.json().at("detail").as_string().find("Allowed: submit, cancel"),
              json::string::npos);
  }
  EXPECT_EQ(Act(c, "submit", R"({"reason": "ready for CAB"})").json().at("state"), "submitted");
  EXPECT_EQ(Act(c, "submit").status, 409);
  EXPECT_EQ(Act(c, "approve").json().at("state"), "approved");
  EXPECT_EQ(Act(c, "start").json().at("state"), "in_progress");
  HttpResult late_cancel = Act(c, "cancel");
  EXPECT_EQ(late_cancel.status, 409);
  EXPECT_NE(late_cancel.json().at("detail").as_string().find("complete, fail"), json::string::npos);
  EXPECT_EQ(Act(c, "complete").json().at("state"), "completed");
  EXPECT_EQ(Get("/api/v1/changes/" + std::to_string(c)).json().at("allowed_actions"), "none");

  std::int64_t rejected = CreateChange({db_}, 1, 2);
  Act(rejected, "submit");
  EXPECT_EQ(Act(rejected, "reject", R"({"reason": "no rollback plan"})").json().at("state"),
            "rejected");
  EXPECT_EQ(Act(rejected, "start").status, 409);
  std::int64_t failed = CreateChange({db_}, 1, 2);
  Act(failed, "submit");
  Act(failed, "approve");
  Act(failed, "start");
  EXPECT_EQ(Act(failed, "fail").json().at("state"), "failed");
  for (const char* stage : {"draft", "submitted", "approved"}) {
    std::int64_t x = CreateChange({db_}, 1, 2);
    if (std::string(stage) != "draft") Act(x, "submit");
    if (std::string(stage) == "approved") Act(x, "approve");
    EXPECT_EQ(Act(x, "cancel").json().at("state"), "cancelled") << stage;
  }
  json::array events =
      Get("/api/v1/changes/" + std::to_string(rejected) + "/events").json().at("items").as_array();
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[2].at("action"), "reject");
  EXPECT_EQ(events[2].at("from"), "submitted");
  EXPECT_EQ(events[2].at("reason"), "no rollback plan");
  EXPECT_EQ(Act(c, "approve", R"({"reason": 5})").status, 422);
  EXPECT_EQ(Act(999999, "submit").status, 404);
  EXPECT_EQ(Get("/api/v1/changes?state=completed").json().at("items").as_array().size(), 1U);
  EXPECT_EQ(Get("/api/v1/changes?state=nope").status, 400);
  // A stale If-Match is refused before anything happens.
  std::int64_t guarded = CreateChange({db_}, 1, 2);
  EXPECT_EQ(HttpRequest(port(), "POST", "/api/v1/changes/" + std::to_string(guarded) + "/submit",
                        "", Auth({{"If-Match", "\"7\""}}))
                .status,
            412);
}

TEST_F(ChangesApi, OfConcurrentTransitionsExactlyOneWins) {
  std::int64_t c = CreateChange({db_}, 1, 2);
  Act(c, "submit");
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      HttpResult r = Act(c, i % 2 == 0 ? "approve" : "reject");
      if (r.status == 200) ++ok;
      if (r.status == 409) ++conflict;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 7);
  EXPECT_EQ(
      Get("/api/v1/changes/" + std::to_string(c) + "/events").json().at("items").as_array().size(),
      3U);
}

TEST_F(ChangesApi, SubmitFreezesTheAssessmentTheReviewerSaw) {
  HttpResult incident =
      Post("/api/v1/incidents", R"({"title": "slow checkout", "severity": 3, "ci_ids": [)" +
                                    std::to_string(app_) + "]}");
  ASSERT_EQ(incident.status, 201) << incident.body;
  std::int64_t c = CreateChange({db_}, 1, 2);
  json::value draft = Get("/api/v1/changes/" + std::to_string(c) + "/impact").json();
  ASSERT_EQ(draft.at("open_incidents").as_array().size(), 1U) << draft;
  EXPECT_EQ(draft.at("open_incidents").at(0).at("incident"), incident.json().at("id"));
  EXPECT_EQ(draft.at("frozen"), false);
  EXPECT_EQ(draft.at("affected_count"), 3);
  ASSERT_EQ(draft.at("services").as_array().size(), 1U);
  EXPECT_EQ(draft.at("services").at(0).at("ci"), service_);
  HttpResult submitted = Act(c, "submit");
  ASSERT_EQ(submitted.status, 200) << submitted.body;
  std::set<std::int64_t> affected;
  for (const auto& a : submitted.json().at("assessment").at("affected").as_array()) {
    affected.insert(a.at("ci").as_int64());
  }
  EXPECT_EQ(affected, (std::set<std::int64_t>{db_, app_, service_}));
  // The graph grows after submit: the frozen assessment does not; a new draft sees it.
  std::int64_t crm =
      CreateCi(R"({"type": "application", "name": "crm", "attributes": {"app_code": "CRM"}})");
  Relate(crm, db_);
  json::value frozen = Get("/api/v1/changes/" + std::to_string(c) + "/impact").json();
  EXPECT_EQ(frozen.at("frozen"), true);
  EXPECT_EQ(frozen.at("affected_count"), 3);
  std::int64_t later = CreateChange({db_}, 5, 6);
  EXPECT_EQ(Get("/api/v1/changes/" + std::to_string(later) + "/impact").json().at("affected_count"),
            4);
  HttpResult svg = Get("/api/v1/changes/" + std::to_string(c) + "/impact/graph?format=svg");
  ASSERT_EQ(svg.status, 200);
  EXPECT_NE(svg.body.find("<svg"), std::string::npos);
  EXPECT_NE(svg.body.find("Impact of change"), std::string::npos);
  EXPECT_NE(svg.body.find("Shop"), std::string::npos);  // the service reached
  // The CI with an open incident is drawn with a double border.
  HttpResult dot = Get("/api/v1/changes/" + std::to_string(c) + "/impact/graph?format=dot");
  ASSERT_EQ(dot.status, 200);
  EXPECT_NE(dot.body.find("peripheries=2"), std::string::npos) << dot.body;
  EXPECT_EQ(Get("/api/v1/changes/" + std::to_string(c) + "/impact/graph?format=gif").status, 400);
}

TEST_F(ChangesApi, CollisionsNeedOverlappingWindowsAndSharedImpact) {
  std::int64_t a = CreateChange({db_}, 10, 12);  // impact: db, app, service
  Act(a, "submit");
  std::int64_t b = CreateChange({app_}, 11, 13);    // overlaps in time, shares app and service
  std::int64_t c = CreateChange({other_}, 11, 13);  // overlaps in time, shares nothing
  std::int64_t d = CreateChange({app_}, 12, 14);    // shares CIs, starts when a ends: no overlap
  Act(b, "submit");
  Act(c, "submit");
  Act(d, "submit");
  json::value impact_a = Get("/api/v1/changes/" + std::to_string(a) + "/impact").json();
  const json::array& collisions = impact_a.at("collisions").as_array();
  ASSERT_EQ(collisions.size(), 1U) << impact_a;
  EXPECT_EQ(collisions[0].at("change"), b);
  EXPECT_EQ(collisions[0].at("shared_cis"), json::array({app_, service_}));
  // b saw a when it was submitted; c and d collide with nobody.
  EXPECT_EQ(Get("/api/v1/changes/" + std::to_string(b))
                .json()
                .at("assessment")
                .at("collisions")
                .at(0)
                .at("change"),
            a);
  EXPECT_TRUE(Get("/api/v1/changes/" + std::to_string(c) + "/impact")
                  .json()
                  .at("collisions")
                  .as_array()
                  .empty());
  // d touches a's window at 12:00 only (windows are half-open), but overlaps b.
  HttpResult of_d = Get("/api/v1/changes/" + std::to_string(d) + "/impact");
  ASSERT_EQ(of_d.json().at("collisions").as_array().size(), 1U);
  EXPECT_EQ(of_d.json().at("collisions").at(0).at("change"), b);
  // A cancelled change collides no more.
  Act(b, "cancel");
  EXPECT_TRUE(Get("/api/v1/changes/" + std::to_string(a) + "/impact")
                  .json()
                  .at("collisions")
                  .as_array()
                  .empty());
}

TEST_F(ChangesApi, DriftInAnApprovedWindowIsAuthorisedAndCompletionAppliesThePlan) {
  HttpResult source = Post("/api/v1/discovery/sources", R"({"name": "agents", "kind": "agent"})");
  ASSERT_EQ(source.status, 201);
  const std::string runs =
      "/api/v1/discovery/runs?source=" + std::to_string(source.json().at("id").as_int64());
  auto run = [&](const std::string& body) {
    HttpResult r = Post(runs, body);
    const std::string path =
        "/api/v1/discovery/runs/" + std::to_string(r.json().at("id").as_int64());
    for (int i = 0; i < 600; ++i) {
      json::value v = Get(path).json();
      if (v.at("state") == "succeeded" || v.at("state") == "failed") return v;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return json::value(nullptr);
  };
  const std::string db = std::to_string(db_);
  std::int64_t c =
      CreateChange({db_}, -1, 1, R"({")" + db + R"(": {"os_version": "13", "kernel": "6.12"}})");
  // Drift observed before approval is not authorised.
  json::value before =
      run(R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"memory_mb": 2048}}]})");
  EXPECT_EQ(before.at("counts").at("findings_authorized"), 0);
  Act(c, "submit");
  Act(c, "approve");
  Act(c, "start");
  json::value during = run(R"({"items": [
      {"identity": {"serial": "S1"}, "attributes": {"os_version": "13", "kernel": "6.13", "memory_mb": 2048}},
      {"identity": {"serial": "S2"}, "attributes": {"os": "Alpine"}}]})");
  ASSERT_EQ(during.at("state"), "succeeded") << during;
  EXPECT_EQ(during.at("counts").at("findings_authorized"), 3);  // every drift on the change's CI
  json::array unauthorized =
      Get("/api/v1/drift?state=open&authorized=false").json().at("items").as_array();
  ASSERT_EQ(unauthorized.size(), 1U);
  EXPECT_EQ(unauthorized[0].at("ci"), other_);
  json::array authorized =
      Get("/api/v1/drift?state=open&authorized=true").json().at("items").as_array();
  ASSERT_EQ(authorized.size(), 3U);
  for (const auto& f : authorized) EXPECT_EQ(f.at("change"), c);

  HttpResult done = Act(c, "complete");
  ASSERT_EQ(done.status, 200) << done.body;
  const json::value& outcome = done.json().at("outcome");
  ASSERT_EQ(outcome.at("applied").as_array().size(), 1U) << outcome;
  EXPECT_EQ(outcome.at("applied").at(0).at("attribute"), "os_version");
  ASSERT_EQ(outcome.at("mismatches").as_array().size(), 1U);
  EXPECT_EQ(outcome.at("mismatches").at(0).at("attribute"), "kernel");
  EXPECT_EQ(outcome.at("mismatches").at(0).at("observed"), "6.13");
  json::value ci = Get("/api/v1/cis/" + db).json();
  EXPECT_EQ(ci.at("attributes").at("os_version"), "13");
  EXPECT_EQ(ci.at("attributes").at("kernel"), "6.1");  // the mismatch is reported, not applied
  EXPECT_EQ(Get("/api/v1/cis/" + db + "/history").json().at("items").at(0).at("source"),
            json::value("change:" + std::to_string(c)));
  json::array accepted = Get("/api/v1/drift?state=accepted").json().at("items").as_array();
  ASSERT_EQ(accepted.size(), 1U);
  EXPECT_EQ(accepted[0].at("authorized"), true);
  EXPECT_EQ(accepted[0].at("closed_by"), json::value("change:" + std::to_string(c)));
  // After the change, the same drift is observed outside any approved window: unauthorised.
  run(R"({"items": [{"identity": {"serial": "S1"}, "attributes": {"os_version": "13", "kernel": "6.13"}}]})");
  json::array kernel =
      Get("/api/v1/drift?state=open&attribute=kernel").json().at("items").as_array();
  ASSERT_EQ(kernel.size(), 1U);
  EXPECT_EQ(kernel[0].at("authorized"), false);
}

}  // namespace
}  // namespace cmdb::testing
