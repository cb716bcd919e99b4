// The quality review over real HTTP and PostgreSQL: key users, callbacks after incidents and
// to key users, complaints and their rectification lifecycle, second line's plans (changes
// linked to incidents with a promised date), and reopening a resolution.

#include <boost/json.hpp>

#include "model/timestamp.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

std::string In(int hours) {
  return model::FormatTimestamp(
      model::Timestamp{model::Timestamp::Now().micros + std::int64_t{hours} * 3600 * 1000000});
}

bool NamesField(const HttpResult& r, const std::string& field) {
  if (r.status != 422) return false;
  for (const json::value& e : r.json().at("errors").as_array()) {
    if (e.at("field") == field.c_str()) return true;
  }
  return false;
}

class QualityApi : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    service_ = CreateCi(R"({"type": "business_service", "name": "财务系统"})");
    other_service_ = CreateCi(R"({"type": "business_service", "name": "Payroll"})");
    host_ = CreateCi(R"({"type": "server", "name": "fin-01"})");
  }

  std::int64_t Incident() {
    HttpResult r =
        Post("/api/v1/incidents", R"({"title": "ledger down", "severity": 2, "ci_ids": [)" +
                                      std::to_string(host_) + "]}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  }

  std::int64_t KeyUser(const std::string& name, std::int64_t service) {
    HttpResult r = Post("/api/v1/key-users", R"({"name": ")" + name +
                                                 R"(", "contact": "ext 4411", "service_ids": [)" +
                                                 std::to_string(service) + "]}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json().at("id").as_int64();
  }

  std::int64_t service_ = 0, other_service_ = 0, host_ = 0;
};

TEST_F(QualityApi, KeyUsersSpeakForBusinessServices) {
  const std::int64_t id = KeyUser("王芳", service_);
  HttpResult got = Get("/api/v1/key-users/" + std::to_string(id));
  EXPECT_EQ(got.json().at("name"), "王芳");
  EXPECT_EQ(got.header("etag"), "\"1\"");
  // A server is not a business service; an unknown CI is named by its index.
  HttpResult bad = Post("/api/v1/key-users", R"({"name": "x", "service_ids": [)" +
                                                 std::to_string(host_) + R"(, 999999]})");
  EXPECT_TRUE(NamesField(bad, "service_ids[0]")) << bad.body;
  EXPECT_TRUE(NamesField(bad, "service_ids[1]")) << bad.body;
  EXPECT_TRUE(NamesField(Post("/api/v1/key-users", R"({"name": " ", "service_ids": []})"), "name"));
  EXPECT_EQ(Post("/api/v1/key-users",
                 R"({"name": "王芳", "service_ids": [)" + std::to_string(service_) + "]}")
                .status,
            409);
  // Deactivated when they leave; filtered by service and state.
  HttpResult patched =
      Patch("/api/v1/key-users/" + std::to_string(id), R"({"active": false})", "1");
  EXPECT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json().at("active"), false);
  EXPECT_EQ(Patch("/api/v1/key-users/" + std::to_string(id), R"({"active": true})", "1").status,
            412);
  EXPECT_EQ(Get("/api/v1/key-users?active=true").json().at("items").as_array().size(), 0U);
  EXPECT_EQ(Get("/api/v1/key-users?service=" + std::to_string(service_))
                .json()
                .at("items")
                .as_array()
                .size(),
            1U);
}

TEST_F(QualityApi, IncidentCallbacksWaitForTheResolutionAndScoreOneToFive) {
  const std::int64_t incident = Incident();
  const std::string path = "/api/v1/incidents/" + std::to_string(incident) + "/callbacks";
  const std::string now = model::FormatTimestamp(model::Timestamp::Now());
  HttpResult open = Post(path, R"({"called_at": ")" + now + R"(", "reached": true, "score": 4})");
  EXPECT_TRUE(NamesField(open, "incident_id")) << open.body;
  ASSERT_EQ(Post("/api/v1/incidents/" + std::to_string(incident) + "/resolve",
                 R"({"resolution": "restarted"})")
                .status,
            200);
  for (const char* score : {"0", "6", "4.5", "\"5\""}) {
    HttpResult r =
        Post(path, R"({"called_at": ")" + In(0) + R"(", "reached": true, "score": )" + score + "}");
    EXPECT_TRUE(NamesField(r, "score")) << score << " " << r.body;
  }
  EXPECT_TRUE(
      NamesField(Post(path, R"({"called_at": ")" + In(48) + R"(", "reached": true, "score": 4})"),
                 "called_at"));
  EXPECT_TRUE(NamesField(
      Post(path, R"({"called_at": ")" + In(0) + R"(", "reached": false, "score": 4})"), "score"));
  EXPECT_TRUE(NamesField(Post(path, R"({"reached": true, "score": 4})"), "called_at"));
  EXPECT_EQ(Get("/api/v1/incidents/999999/callbacks").status, 404);
  EXPECT_EQ(Get("/api/v1/incidents/999999/changes").status, 404);
  EXPECT_EQ(Post("/api/v1/incidents/999999/callbacks",
                 R"({"called_at": ")" + In(0) + R"(", "reached": false})")
                .status,
            404);
  HttpResult made = Post(path, R"({"called_at": ")" + In(0) +
                                   R"(", "reached": true, "score": 5, "comment": "很满意 <b>"})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.json().at("caller"), "admin");
  EXPECT_EQ(made.json().at("comment"), "很满意 <b>");
  json::array listed = Get(path).json().at("items").as_array();
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_EQ(listed[0].at("score"), 5);
  // Nothing partial: the refused calls left no row.
  EXPECT_EQ(Get("/api/v1/callbacks").json().at("items").as_array().size(), 1U);
}

TEST_F(QualityApi, KeyUserCallsByQualityOrFirstLineOnly) {
  const std::int64_t user = KeyUser("Li Lei", service_);
  const std::string body = R"({"key_user_id": )" + std::to_string(user) + R"(, "service_id": )" +
                           std::to_string(service_) + R"(, "called_at": ")" + In(0) +
                           R"(", "reached": true, "score": 3})";
  const std::string first = TokenFor("line1", R"(["incident_handler"])", R"(, "tier": 1)");
  const std::string second = TokenFor("line2", R"(["incident_handler"])", R"(, "tier": 2)");
  const std::string viewer = TokenFor("reader", R"(["viewer"])");
  EXPECT_EQ(PostAs(second, "/api/v1/callbacks", body).status, 403);
  EXPECT_EQ(PostAs(viewer, "/api/v1/callbacks", body).status, 403);
  HttpResult ok = PostAs(first, "/api/v1/callbacks", body);
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.json().at("kind"), "key_user");
  EXPECT_EQ(ok.json().at("caller"), "line1");
  // Not one of their services; an unknown key user.
  HttpResult wrong =
      Post("/api/v1/callbacks", R"({"key_user_id": )" + std::to_string(user) +
                                    R"(, "service_id": )" + std::to_string(other_service_) +
                                    R"(, "called_at": ")" + In(0) + R"(", "reached": false})");
  EXPECT_TRUE(NamesField(wrong, "service_id")) << wrong.body;
  EXPECT_TRUE(
      NamesField(Post("/api/v1/callbacks", R"({"key_user_id": 99999, "service_id": )" +
                                               std::to_string(service_) + R"(, "called_at": ")" +
                                               In(0) + R"(", "reached": false})"),
                 "key_user_id"));
  EXPECT_EQ(
      Get("/api/v1/callbacks?kind=key_user&caller=line1").json().at("items").as_array().size(), 1U);
}

TEST_F(QualityApi, ComplaintsGoThroughEveryStepWithNoteOwnerAndDueDate) {
  const std::int64_t incident = Incident();
  HttpResult past = Post("/api/v1/complaints",
                         R"({"title": "slow answer", "complainant": "王芳", "owner": "qa",
                             "note": "called twice", "due_at": "2020-01-01T00:00:00Z"})");
  EXPECT_TRUE(NamesField(past, "due_at")) << past.body;
  EXPECT_TRUE(
      NamesField(Post("/api/v1/complaints", R"({"title": "x", "complainant": "y", "owner": "qa",
                                                        "note": "n", "due_at": ")" +
                                                In(24) + R"(", "incident_id": 999999})"),
                 "incident_id"));
  HttpResult made = Post("/api/v1/complaints",
                         R"({"title": "slow answer", "complainant": "王芳", "owner": "qa",
                             "handler": "line1", "note": "called twice", "incident_id": )" +
                             std::to_string(incident) + R"(, "due_at": ")" + In(24) + "\"}");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string path = "/api/v1/complaints/" + std::to_string(made.json().at("id").as_int64());
  EXPECT_EQ(made.json().at("state"), "open");
  EXPECT_EQ(made.json().at("overdue"), false);
  // No skipping, no going back; each step names what is allowed.
  HttpResult skip =
      Post(path + "/verify", R"({"note": "n", "owner": "qa", "due_at": ")" + In(48) + "\"}");
  EXPECT_EQ(skip.status, 409);
  EXPECT_NE(skip.body.find("rectify"), std::string::npos) << skip.body;
  EXPECT_TRUE(NamesField(Post(path + "/rectify", R"({"owner": "qa", "due_at": ")" + In(48) + "\"}"),
                         "note"));
  EXPECT_TRUE(NamesField(Post(path + "/rectify", R"({"note": "n", "owner": "qa"})"), "due_at"));
  EXPECT_TRUE(NamesField(
      Post(path + "/rectify", R"({"note": "n", "owner": "qa", "due_at": "2020-01-01T00:00:00Z"})"),
      "due_at"));
  HttpResult rectify =
      Post(path + "/rectify",
           R"({"note": "coached line1", "owner": "lead1", "due_at": ")" + In(48) + "\"}");
  ASSERT_EQ(rectify.status, 200) << rectify.body;
  EXPECT_EQ(rectify.json().at("state"), "rectifying");
  EXPECT_EQ(rectify.json().at("owner"), "lead1");
  EXPECT_EQ(Post(path + "/close", R"({"note": "n", "owner": "qa"})").status, 409);
  ASSERT_EQ(Post(path + "/verify",
                 R"({"note": "user confirms", "owner": "qa", "due_at": ")" + In(72) + "\"}")
                .status,
            200);
  HttpResult closed = Post(path + "/close", R"({"note": "done", "owner": "qa"})");
  ASSERT_EQ(closed.status, 200) << closed.body;
  EXPECT_EQ(closed.json().at("state"), "closed");
  EXPECT_FALSE(closed.json().at("closed_at").is_null());
  EXPECT_EQ(Post(path + "/close", R"({"note": "again", "owner": "qa"})").status, 409);
  json::array events = Get(path + "/events").json().at("items").as_array();
  ASSERT_EQ(events.size(), 4U);
  EXPECT_EQ(events[1].at("action"), "rectify");
  EXPECT_EQ(events[1].at("owner"), "lead1");
  EXPECT_EQ(events[1].at("note"), "coached line1");
  EXPECT_EQ(events[3].at("to"), "closed");
}

TEST_F(QualityApi, OverdueComplaintsAreFlagged) {
  HttpResult made = Post("/api/v1/complaints",
                         R"({"title": "no callback", "complainant": "a user", "owner": "qa",
                             "note": "n", "due_at": ")" +
                             In(1) + "\"}");
  ASSERT_EQ(made.status, 201);
  const std::int64_t id = made.json().at("id").as_int64();
  // Time passes: its due date is now yesterday.
  Sql("UPDATE complaints SET due_at = now() - interval '1 day' WHERE id = $1", {P(id)});
  EXPECT_EQ(Get("/api/v1/complaints/" + std::to_string(id)).json().at("overdue"), true);
  json::array overdue = Get("/api/v1/complaints?overdue=true").json().at("items").as_array();
  ASSERT_EQ(overdue.size(), 1U);
  EXPECT_EQ(overdue[0].at("id"), id);
  EXPECT_EQ(Get("/api/v1/complaints?overdue=false").json().at("items").as_array().size(), 0U);
}

TEST_F(QualityApi, SecondLinePlansAChangeWithAPromisedDate) {
  const std::int64_t incident = Incident();
  // With the change: incident_ids and the date promised.
  HttpResult missing =
      Post("/api/v1/changes", R"({"title": "fix ledger", "planned_start": ")" + In(1) +
                                  R"(", "planned_end": ")" + In(2) + R"(", "ci_ids": [)" +
                                  std::to_string(host_) + R"(], "incident_ids": [)" +
                                  std::to_string(incident) + "]}");
  EXPECT_TRUE(NamesField(missing, "promised_by")) << missing.body;
  EXPECT_TRUE(
      NamesField(Post("/api/v1/changes",
                      R"({"title": "x", "planned_start": ")" + In(1) + R"(", "planned_end": ")" +
                          In(2) + R"(", "ci_ids": [)" + std::to_string(host_) +
                          R"(], "incident_ids": [999999], "promised_by": ")" + In(48) + "\"}"),
                 "incident_ids[0]"));
  HttpResult change =
      Post("/api/v1/changes",
           R"({"title": "fix ledger", "planned_start": ")" + In(1) + R"(", "planned_end": ")" +
               In(2) + R"(", "ci_ids": [)" + std::to_string(host_) + R"(], "incident_ids": [)" +
               std::to_string(incident) + R"(], "promised_by": ")" + In(48) + "\"}");
  ASSERT_EQ(change.status, 201) << change.body;
  EXPECT_EQ(change.json().at("incident_ids"), (json::array{incident}));
  // Or linked afterwards.
  HttpResult second =
      Post("/api/v1/changes", R"({"title": "upgrade", "planned_start": ")" + In(3) +
                                  R"(", "planned_end": ")" + In(4) + R"(", "ci_ids": [)" +
                                  std::to_string(host_) + "]}");
  const std::int64_t second_id = second.json().at("id").as_int64();
  const std::string plans = "/api/v1/incidents/" + std::to_string(incident) + "/changes";
  EXPECT_TRUE(NamesField(Post(plans, R"({"change_id": )" + std::to_string(second_id) +
                                         R"(, "promised_by": "2020-01-01T00:00:00Z"})"),
                         "promised_by"));
  EXPECT_TRUE(NamesField(Post(plans, R"({"change_id": 999999, "promised_by": ")" + In(72) + "\"}"),
                         "change_id"));
  HttpResult linked = Post(plans, R"({"change_id": )" + std::to_string(second_id) +
                                      R"(, "promised_by": ")" + In(72) + "\"}");
  ASSERT_EQ(linked.status, 201) << linked.body;
  EXPECT_TRUE(linked.json().at("on_time").is_null());  // neither done nor late yet
  EXPECT_EQ(linked.json().at("linked_tier"), 1);
  json::array listed = Get(plans).json().at("items").as_array();
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_EQ(Get("/api/v1/changes/" + std::to_string(second_id)).json().at("incident_ids"),
            (json::array{incident}));
}

TEST_F(QualityApi, AResolutionCanBeReopened) {
  const std::int64_t incident = Incident();
  const std::string path = "/api/v1/incidents/" + std::to_string(incident);
  EXPECT_EQ(Post(path + "/reopen", R"({"reason": "x"})").status, 409);
  ASSERT_EQ(Post(path + "/assign", R"({"assignee": "line1"})").status, 200);
  ASSERT_EQ(Post(path + "/resolve", R"({"resolution": "restarted"})").status, 200);
  EXPECT_TRUE(NamesField(Post(path + "/reopen", "{}"), "reason"));
  HttpResult reopened = Post(path + "/reopen", R"({"reason": "the user still cannot post"})");
  ASSERT_EQ(reopened.status, 200) << reopened.body;
  EXPECT_EQ(reopened.json().at("state"), "in_progress");
  EXPECT_EQ(reopened.json().at("assignee"), "line1");
  EXPECT_TRUE(reopened.json().at("resolved_at").is_null());
  ASSERT_EQ(Post(path + "/resolve", R"({"resolution": "fixed the queue"})").status, 200);
  ASSERT_EQ(Post(path + "/close", "{}").status, 200);
  EXPECT_EQ(Post(path + "/reopen", R"({"reason": "x"})").status, 409);
  json::array events = Get(path + "/events").json().at("items").as_array();
  ASSERT_EQ(events.size(), 6U);
  EXPECT_EQ(events[3].at("action"), "reopen");
}

}  // namespace
}  // namespace cmdb::testing
