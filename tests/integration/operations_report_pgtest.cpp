// The monthly operations review against a hand-built month: November 2026 on a calendar of
// UTC+08:00, Monday to Friday 09:00-18:00, with Wednesday 11 November a holiday. Every
// incident, event, callback, complaint, plan, change, drift finding and audit score is written
// at a known instant, and every figure of the report is checked against the value worked out
// by hand in the comments below — the assessment a bonus depends on.

#include <boost/json.hpp>

#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

namespace json = boost::json;

// A local time of the calendar ("2026-11-02 10:00") as PostgreSQL reads it.
std::string L(const std::string& local) { return local + ":00+08"; }

class OperationsReport : public ServerTest {
 protected:
  void Exec(const std::string& sql) {
    std::size_t start = 0;
    while (start < sql.size()) {
      std::size_t end = sql.find(";\n", start);
      if (end == std::string::npos) end = sql.size();
      const std::string statement = sql.substr(start, end - start);
      if (statement.find_first_not_of(" \n") != std::string::npos) Sql(statement);
      start = end + 2;
    }
  }

  // incident_events row.
  void Event(int incident, const std::string& at, const std::string& action,
             const std::string& from_state, const std::string& to_state, int from_tier, int to_tier,
             const std::string& by) {
    Sql("INSERT INTO incident_events (incident_id, at, action, from_state, to_state, from_tier, "
        "to_tier, by) VALUES ($1, $2::timestamptz, $3, nullif($4, ''), $5, nullif($6, '0')::int, "
        "$7::int, $8)",
        {P(incident), P(L(at)), P(action), P(from_state), P(to_state), P(from_tier), P(to_tier),
         P(by)});
  }

  void Incident(int id, int severity, int tier, const std::string& state, std::int64_t ci,
                const std::string& started, const std::optional<std::string>& resolved) {
    Sql("INSERT INTO incidents (id, title, severity, tier, state, ci_ids, started_at, "
        "tier_since, response_due, created_by, created_at, resolved_at) VALUES ($1::bigint, "
        "'incident ' "
        "|| $1::text, $2::int, $3::int, $4, ARRAY[$5::bigint], $6::timestamptz, $6::timestamptz, "
        "$6::timestamptz, 'desk', $6::timestamptz, nullif($7, '')::timestamptz)",
        {P(id), P(severity), P(tier), P(state), P(ci), P(L(started)),
         P(resolved ? L(*resolved) : std::string())});
  }

  void Change(int id, const std::string& state, std::int64_t ci, const std::string& ended) {
    Sql("INSERT INTO changes (id, title, state, planned_start, planned_end, ci_ids, created_by) "
        "VALUES ($1::bigint, 'change ' || $1::text, $2, '2026-10-01T00:00:00Z', "
        "'2026-12-31T00:00:00Z', "
        "ARRAY[$3::bigint], 'planner')",
        {P(id), P(state), P(ci)});
    Sql("INSERT INTO change_events (change_id, at, action, from_state, to_state, by) VALUES ($1, "
        "$2::timestamptz, 'x', 'in_progress', $3, 'planner')",
        {P(id), P(L(ended)), P(state)});
  }

  void Callback(int incident, const std::string& at, bool reached, int score,
                const std::string& caller) {
    Sql("INSERT INTO callbacks (kind, incident_id, called_at, reached, score, caller) VALUES "
        "('incident', $1, $2::timestamptz, $3::boolean, nullif($4, '0')::int, $5)",
        {P(incident), P(L(at)), P(reached ? "true" : "false"), P(score), P(caller)});
  }

  void KeyUserCall(std::int64_t key_user, std::int64_t service, const std::string& at, bool reached,
                   int score, const std::string& caller) {
    Sql("INSERT INTO callbacks (kind, key_user_id, service_id, called_at, reached, score, caller) "
        "VALUES ('key_user', $1, $2, $3::timestamptz, $4::boolean, nullif($5, '0')::int, $6)",
        {P(key_user), P(service), P(L(at)), P(reached ? "true" : "false"), P(score), P(caller)});
  }

  void Complaint(int id, const std::string& created, const std::string& state,
                 const std::string& due, const std::optional<std::string>& closed,
                 const std::string& handler) {
    Sql("INSERT INTO complaints (id, title, complainant, handler, state, owner, due_at, note, "
        "created_by, created_at, closed_at) VALUES ($1::bigint, 'complaint ' || $1::text, 'a "
        "user', "
        "nullif($2, ''), $3, 'qa', $4::timestamptz, 'note', 'qa', $5::timestamptz, nullif($6, "
        "'')::timestamptz)",
        {P(id), P(handler), P(state), P(L(due)), P(L(created)),
         P(closed ? L(*closed) : std::string())});
  }

  void SetUp() override {
    ServerTest::SetUp();
    ASSERT_EQ(Put("/api/v1/service-calendar",
                  R"({"utc_offset": "+08:00", "working_days": [1, 2, 3, 4, 5],
                      "working_hours": {"start": "09:00", "end": "18:00"},
                      "holidays": ["2026-11-11"],
                      "response_targets": {"1": {"hours": 2}, "2": {"days": 1}, "3": {"days": 3}}})")
                  .status,
              200);
    // Orders (S1) -> orders-app -> orders-db; Payments (S2) -> pay-host.
    s1_ = CreateCi(R"({"type": "business_service", "name": "Orders"})");
    s2_ = CreateCi(R"({"type": "business_service", "name": "Payments"})");
    app_ = CreateCi(R"({"type": "application", "name": "orders-app"})");
    db_ = CreateCi(R"({"type": "database", "name": "orders-db"})");
    host_ = CreateCi(R"({"type": "server", "name": "pay-host"})");
    other_ = CreateCi(R"({"type": "server", "name": "print-01"})");
    Relate(s1_, app_);
    Relate(app_, db_);
    Relate(s2_, host_);

    // A 101: tier 1, Mon 2 Nov 10:00, due 12:00; alice assigns 11:00 (met), resolves 15:00.
    Incident(101, 3, 1, "resolved", app_, "2026-11-02 10:00", "2026-11-02 15:00");
    Event(101, "2026-11-02 10:00", "create", "", "new", 0, 1, "desk");
    Event(101, "2026-11-02 11:00", "assign", "new", "in_progress", 1, 1, "alice");
    Event(101, "2026-11-02 15:00", "resolve", "in_progress", "resolved", 1, 1, "alice");
    // B 102: severity 2, Fri 6 Nov 17:00; tier 1 due Mon 9 Nov 10:00 (one hour Friday, one
    // Monday); bob assigns Mon 09:30 (met) and escalates Mon 10:00; tier 2 due Tue 10:00; carol
    // assigns Tue 09:00 (met), plans at 09:30 (analysis within a working day) and resolves
    // Thu 12 Nov 12:00.
    Incident(102, 2, 2, "resolved", db_, "2026-11-06 17:00", "2026-11-12 12:00");
    Event(102, "2026-11-06 17:00", "create", "", "new", 0, 1, "desk");
    Event(102, "2026-11-09 09:30", "assign", "new", "in_progress", 1, 1, "bob");
    Event(102, "2026-11-09 10:00", "escalate", "in_progress", "new", 1, 2, "bob");
    Event(102, "2026-11-10 09:00", "assign", "new", "in_progress", 2, 2, "carol");
    Event(102, "2026-11-12 12:00", "resolve", "in_progress", "resolved", 2, 2, "carol");
    // C 103: Tue 10 Nov 16:30; tier 1 due Thu 12 Nov 09:30 (1.5 h Tuesday, the Wednesday
    // holiday skipped); bob escalates Thu 09:00 (met: escalating answers too); dave
    // resolves Mon 16 Nov 10:00 (tier 2 missed, analysis late: both were due by the end of
    // Thursday, one working day after 09:00).
    Incident(103, 3, 2, "resolved", host_, "2026-11-10 16:30", "2026-11-16 10:00");
    Event(103, "2026-11-10 16:30", "create", "", "new", 0, 1, "desk");
    Event(103, "2026-11-12 09:00", "escalate", "new", "new", 1, 2, "bob");
    Event(103, "2026-11-16 10:00", "resolve", "new", "resolved", 2, 2, "dave");
    // D 104: severity 1, Fri 27 Nov 17:30, never answered (tier 1 due Mon 30 Nov 10:30: missed),
    // open at the month's end.
    Incident(104, 1, 1, "new", host_, "2026-11-27 17:30", std::nullopt);
    Event(104, "2026-11-27 17:30", "create", "", "new", 0, 1, "desk");
    // E 105: Mon 16 Nov 10:00, alice assigns 10:30 (met), resolves 11:00, reopens Tue 09:00,
    // resolves again 10:00.
    Incident(105, 3, 1, "resolved", app_, "2026-11-16 10:00", "2026-11-17 10:00");
    Event(105, "2026-11-16 10:00", "create", "", "new", 0, 1, "desk");
    Event(105, "2026-11-16 10:30", "assign", "new", "in_progress", 1, 1, "alice");
    Event(105, "2026-11-16 11:00", "resolve", "in_progress", "resolved", 1, 1, "alice");
    Event(105, "2026-11-17 09:00", "reopen", "resolved", "in_progress", 1, 1, "alice");
    Event(105, "2026-11-17 10:00", "resolve", "in_progress", "resolved", 1, 1, "alice");
    // F 106: raised in October, resolved by bob on 3 November.
    Incident(106, 4, 1, "resolved", other_, "2026-10-20 10:00", "2026-11-03 10:00");
    Event(106, "2026-10-20 10:00", "create", "", "new", 0, 1, "desk");
    Event(106, "2026-10-20 10:30", "assign", "new", "in_progress", 1, 1, "erin");
    Event(106, "2026-11-03 10:00", "resolve", "in_progress", "resolved", 1, 1, "bob");
    // G 107: 1 December 01:00 local — still 30 November in UTC, but not in the month.
    Incident(107, 1, 1, "new", db_, "2026-12-01 01:00", std::nullopt);
    Event(107, "2026-12-01 01:00", "create", "", "new", 0, 1, "desk");

    // Changes: 201 and 202 answer B and C; 203 failed; 204 completed Tue 24 Nov 10:00 on
    // pay-host (D starts 79.5 h later: not within 72 h); 205 completed Mon 9 Nov 12:00 on
    // pay-host (C starts 28.5 h later: followed by an incident); 206 cancelled in October.
    Change(201, "completed", db_, "2026-11-20 12:00");
    Change(202, "completed", host_, "2026-11-19 12:00");
    Change(203, "failed", other_, "2026-11-05 12:00");
    Change(204, "completed", host_, "2026-11-24 10:00");
    Change(205, "completed", host_, "2026-11-09 12:00");
    Change(206, "cancelled", other_, "2026-10-30 12:00");
    // Plans: B's promised 25 Nov, completed 20 Nov (on time); C's promised 18 Nov, completed
    // 19 Nov (late), linked after C's resolution.
    Sql("INSERT INTO incident_changes (incident_id, change_id, promised_by, linked_at, "
        "linked_by, linked_tier) VALUES (102, 201, $1::timestamptz, $2::timestamptz, 'carol', 2), "
        "(103, 202, $3::timestamptz, $4::timestamptz, 'dave', 2)",
        {P(L("2026-11-25 18:00")), P(L("2026-11-10 09:30")), P(L("2026-11-18 18:00")),
         P(L("2026-11-16 11:00"))});

    // Callbacks: A scored 5, B 4, C 2 (by qa); F unreached.
    Callback(101, "2026-11-03 10:00", true, 5, "qa");
    Callback(102, "2026-11-13 10:00", true, 4, "qa");
    Callback(103, "2026-11-17 10:00", true, 2, "qa");
    Callback(106, "2026-11-04 10:00", false, 0, "qa");
    // Key users: ku1 speaks for Orders and Payments, ku2 for Orders. alice reaches ku1 about
    // Orders (score 3); ku2 is called about Orders but not reached; ku1 is not called about
    // Payments. An October call does not count.
    const std::int64_t ku1 =
        Post("/api/v1/key-users", R"({"name": "Wang Fang", "service_ids": [)" +
                                      std::to_string(s1_) + "," + std::to_string(s2_) + "]}")
            .json()
            .at("id")
            .as_int64();
    const std::int64_t ku2 = Post("/api/v1/key-users", R"({"name": "Li Lei", "service_ids": [)" +
                                                           std::to_string(s1_) + "]}")
                                 .json()
                                 .at("id")
                                 .as_int64();
    KeyUserCall(ku1, s1_, "2026-11-20 15:00", true, 3, "alice");
    KeyUserCall(ku2, s1_, "2026-11-21 15:00", false, 0, "alice");
    KeyUserCall(ku1, s2_, "2026-10-21 15:00", true, 5, "alice");

    // Complaints: K1 about bob, opened and closed in November; K2 rectifying past its due
    // date; K3 all in October; K4 opened 28 Nov, due next year.
    Complaint(301, "2026-11-04 10:00", "closed", "2026-11-10 10:00", "2026-11-09 10:00", "bob");
    Complaint(302, "2026-11-20 10:00", "rectifying", "2026-11-25 10:00", std::nullopt, "");
    Complaint(303, "2026-10-10 10:00", "closed", "2026-10-30 10:00", "2026-10-20 10:00", "");
    Complaint(304, "2026-11-28 10:00", "open", "2027-01-31 10:00", std::nullopt, "");

    // Knowledge: alice submits two (one approved in November); bob's October article is
    // approved in November.
    Exec(
        "INSERT INTO knowledge_articles (title, body, created_by, created_at, state, "
        "approved_by, approved_at) VALUES ('a1', 'b', 'alice', '" +
        L("2026-11-05 10:00") + "', 'approved', 'lead', '" + L("2026-11-06 10:00") +
        "'), ('a2', 'b', 'alice', '" + L("2026-11-25 10:00") +
        "', 'draft', NULL, NULL), ('b1', 'b', 'bob', '" + L("2026-10-01 10:00") +
        "', 'approved', 'lead', '" + L("2026-11-02 10:00") + "')");

    // Drift: d1 opened in November (authorised, open); d2 resolved in November; d3 accepted;
    // d4 ignored; d5 unauthorised, open since October.
    Exec(
        "INSERT INTO drift_findings (ci_id, attribute, state, authorized, run_id, last_run_id, "
        "detected_at, observed_at, closed_at) VALUES (" +
        std::to_string(host_) + ", 'os', 'open', true, 1, 1, '" + L("2026-11-05 10:00") +
        "', now(), NULL), (" + std::to_string(host_) + ", 'ram', 'resolved', false, 1, 1, '" +
        L("2026-10-01 10:00") + "', now(), '" + L("2026-11-10 10:00") + "'), (" +
        std::to_string(db_) + ", 'os', 'accepted', false, 1, 1, '" + L("2026-11-12 10:00") +
        "', now(), '" + L("2026-11-13 10:00") + "'), (" + std::to_string(db_) +
        ", 'ram', 'ignored', false, 1, "
        "1, '" +
        L("2026-11-20 10:00") + "', now(), '" + L("2026-11-21 10:00") + "'), (" +
        std::to_string(app_) + ", 'version', 'open', false, 1, 1, '" + L("2026-10-15 10:00") +
        "', now(), NULL)");

    // Audit: the baseline scored 80 % before the month, 90 % at its end, 50 % after it.
    Exec(
        "INSERT INTO audit_runs (id, set_name, state, submitted_by) VALUES (9001, 'baseline', "
        "'succeeded', 't'), (9002, 'baseline', 'succeeded', 't'), (9003, 'baseline', "
        "'succeeded', 't')");
    Exec(
        "INSERT INTO audit_scores (run_id, set_name, at, group_kind, group_key, pass, fail, "
        "not_applicable, error) VALUES (9001, 'baseline', '" +
        L("2026-10-25 02:00") + "', 'overall', '', 80, 20, 0, 0), (9002, 'baseline', '" +
        L("2026-11-29 02:00") + "', 'overall', '', 90, 10, 0, 0), (9003, 'baseline', '" +
        L("2026-12-02 02:00") + "', 'overall', '', 50, 50, 0, 0)");
  }

  json::object Report() {
    HttpResult r = Get("/api/v1/reports/operations?month=2026-11");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().as_object();
  }

  static const json::object& Row(const json::array& rows, const char* key, const json::value& v) {
    for (const json::value& row : rows) {
      if (row.at(key) == v) return row.as_object();
    }
    ADD_FAILURE() << "no row with " << key << " = " << json::serialize(v);
    static const json::object empty;
    return empty;
  }

  std::int64_t s1_ = 0, s2_ = 0, app_ = 0, db_ = 0, host_ = 0, other_ = 0;
};

TEST_F(OperationsReport, MonthIsTheCalendarsLocalMonth) {
  const json::object r = Report();
  EXPECT_EQ(r.at("from"), "2026-10-31T16:00:00Z");
  EXPECT_EQ(r.at("to"), "2026-11-30T16:00:00Z");
}

TEST_F(OperationsReport, TiersCountOpenedResolvedBacklogTargetsEscalationsAndReopens) {
  const json::object report = Report();
  const json::array& tiers = report.at("tiers").as_array();
  // Tier 1: opened A B C D E; met A B C E, missed D; resolutions A E E F; escalations B C;
  // reopened E once (1 of 4 resolutions); D open at the end.
  const json::object& t1 = Row(tiers, "tier", 1);
  EXPECT_EQ(t1.at("opened"), 5);
  EXPECT_EQ(t1.at("response").at("met"), 4);
  EXPECT_EQ(t1.at("response").at("missed"), 1);
  EXPECT_EQ(t1.at("response").at("pending"), 0);
  EXPECT_DOUBLE_EQ(t1.at("response").at("met_rate").as_double(), 0.8);
  EXPECT_EQ(t1.at("resolved"), 4);
  EXPECT_EQ(t1.at("escalations"), 2);
  EXPECT_EQ(t1.at("reopened"), 1);
  EXPECT_DOUBLE_EQ(t1.at("reopen_rate").as_double(), 0.25);
  EXPECT_EQ(t1.at("backlog"), 1);
  // Tier 2: B (met, Tuesday 09:00 before 10:00) and C (missed: due Thursday 18:00, answered
  // Monday 10:00); both resolved there.
  const json::object& t2 = Row(tiers, "tier", 2);
  EXPECT_EQ(t2.at("opened"), 2);
  EXPECT_EQ(t2.at("response").at("met"), 1);
  EXPECT_EQ(t2.at("response").at("missed"), 1);
  EXPECT_EQ(t2.at("resolved"), 2);
  EXPECT_EQ(t2.at("escalations"), 0);
  EXPECT_EQ(t2.at("backlog"), 0);
  EXPECT_TRUE(t2.at("reopen_rate").is_number());
  const json::object& t3 = Row(tiers, "tier", 3);
  EXPECT_EQ(t3.at("opened"), 0);
  EXPECT_TRUE(t3.at("response").at("met_rate").is_null());
  EXPECT_TRUE(t3.at("reopen_rate").is_null());
}

TEST_F(OperationsReport, SecondLineAnalysesAndPlans) {
  const json::object report = Report();
  const json::object& second = report.at("second_line").as_object();
  // B analysed (plan) within a working day; C resolved only after the deadline.
  EXPECT_EQ(second.at("analyses").at("within_one_working_day"), 1);
  EXPECT_EQ(second.at("analyses").at("late"), 1);
  EXPECT_EQ(second.at("analyses").at("pending"), 0);
  // B's plan delivered five days early; C's a day late.
  EXPECT_EQ(second.at("plans").at("on_time"), 1);
  EXPECT_EQ(second.at("plans").at("late"), 1);
  EXPECT_EQ(second.at("plans").at("open"), 0);
}

TEST_F(OperationsReport, HandlersAreAssessedAndRanked) {
  const json::object report = Report();
  const json::array& handlers = report.at("handlers").as_array();
  // alice: responses 2/2, satisfaction 5 (A) -> 100. bob: 2/2, no score, one complaint -> 95.
  // carol: 1/1 and 4 -> 87.5. dave: 0/1 and 2 -> 12.5. qa only calls: no score, last.
  ASSERT_GE(handlers.size(), 5U);
  EXPECT_EQ(handlers[0].at("name"), "alice");
  EXPECT_EQ(handlers[1].at("name"), "bob");
  EXPECT_EQ(handlers[2].at("name"), "carol");
  EXPECT_EQ(handlers[3].at("name"), "dave");
  const json::object& alice = handlers[0].as_object();
  EXPECT_EQ(alice.at("rank"), 1);
  EXPECT_DOUBLE_EQ(alice.at("score").as_double(), 100);
  EXPECT_EQ(alice.at("resolved"), 3);
  EXPECT_EQ(alice.at("responses"), 2);
  EXPECT_EQ(alice.at("responses_met"), 2);
  EXPECT_DOUBLE_EQ(alice.at("satisfaction").as_double(), 5);
  EXPECT_EQ(alice.at("callbacks_made"), 2);
  EXPECT_EQ(alice.at("knowledge_submitted"), 2);
  EXPECT_EQ(alice.at("knowledge_approved"), 1);
  const json::object& bob = handlers[1].as_object();
  EXPECT_DOUBLE_EQ(bob.at("score").as_double(), 95);
  EXPECT_EQ(bob.at("resolved"), 1);
  EXPECT_EQ(bob.at("responses_met"), 2);
  EXPECT_TRUE(bob.at("satisfaction").is_null());
  EXPECT_EQ(bob.at("complaints"), 1);
  EXPECT_EQ(bob.at("knowledge_submitted"), 0);
  EXPECT_EQ(bob.at("knowledge_approved"), 1);
  EXPECT_DOUBLE_EQ(handlers[2].at("score").as_double(), 87.5);
  EXPECT_DOUBLE_EQ(handlers[2].at("satisfaction").as_double(), 4);
  EXPECT_DOUBLE_EQ(handlers[3].at("score").as_double(), 12.5);
  EXPECT_EQ(handlers[3].at("responses"), 1);
  EXPECT_EQ(handlers[3].at("responses_met"), 0);
  const json::object& qa = Row(handlers, "name", "qa");
  EXPECT_TRUE(qa.at("score").is_null());
  EXPECT_EQ(qa.at("callbacks_made"), 4);
  EXPECT_EQ(qa.at("rank"), static_cast<std::int64_t>(handlers.size()));
  // erin answered F in October: nothing of hers is in November.
  for (const json::value& h : handlers) EXPECT_NE(h.at("name"), "erin");
}

TEST_F(OperationsReport, ServicesCountIncidentsSevereHoursSatisfactionAndKeyUsers) {
  const json::object report = Report();
  const json::array& services = report.at("services").as_array();
  // Orders: A B E; B (severity 2) open Fri 6 Nov 17:00 -> Thu 12 Nov 12:00 = 139 h;
  // satisfaction 5, 4 and ku1's 3 = 4.0; key users ku1 and ku2, ku1 reached.
  const json::object& orders = Row(services, "id", s1_);
  EXPECT_EQ(orders.at("name"), "Orders");
  EXPECT_EQ(orders.at("incidents"), 3);
  EXPECT_EQ(orders.at("severe_open_minutes"), 139 * 60);
  EXPECT_DOUBLE_EQ(orders.at("satisfaction").as_double(), 4.0);
  EXPECT_EQ(orders.at("scored_callbacks"), 3);
  EXPECT_EQ(orders.at("key_users"), 2);
  EXPECT_EQ(orders.at("key_users_called"), 1);
  // Payments: C D; D (severity 1) open from Fri 27 Nov 17:30 to the month's end = 78.5 h
  // (G, on 1 December local time, is not counted); satisfaction 2 (C).
  const json::object& payments = Row(services, "id", s2_);
  EXPECT_EQ(payments.at("incidents"), 2);
  EXPECT_EQ(payments.at("severe_open_minutes"), 4710);
  EXPECT_DOUBLE_EQ(payments.at("satisfaction").as_double(), 2.0);
  EXPECT_EQ(payments.at("key_users"), 1);
  EXPECT_EQ(payments.at("key_users_called"), 0);
}

TEST_F(OperationsReport, ChangesDriftAuditCoverageAndComplaints) {
  const json::object r = Report();
  const json::object& changes = r.at("changes").as_object();
  EXPECT_EQ(changes.at("completed"), 4);
  EXPECT_EQ(changes.at("failed"), 1);
  EXPECT_EQ(changes.at("rejected"), 0);
  EXPECT_EQ(changes.at("cancelled"), 0);
  const json::array& followed = changes.at("followed_by_incident_within_72h").as_array();
  ASSERT_EQ(followed.size(), 1U);
  EXPECT_EQ(followed[0].at("change_id"), 205);
  EXPECT_EQ(followed[0].at("incident_ids"), (json::array{103}));

  const json::object& drift = r.at("drift").as_object();
  EXPECT_EQ(drift.at("opened"), 3);
  EXPECT_EQ(drift.at("resolved"), 1);
  EXPECT_EQ(drift.at("accepted"), 1);
  EXPECT_EQ(drift.at("ignored"), 1);
  EXPECT_EQ(drift.at("open_at_end"), 2);
  EXPECT_EQ(drift.at("unauthorised_open_at_end"), 1);

  EXPECT_DOUBLE_EQ(r.at("audit").at("start").at("score").as_double(), 0.8);
  EXPECT_EQ(r.at("audit").at("start").at("run_id"), 9001);
  EXPECT_DOUBLE_EQ(r.at("audit").at("end").at("score").as_double(), 0.9);

  const json::object& coverage = r.at("callback_coverage").as_object();
  EXPECT_EQ(coverage.at("key_user_services"), 3);
  EXPECT_EQ(coverage.at("covered"), 1);
  EXPECT_EQ(coverage.at("uncovered").as_array().size(), 2U);

  const json::object& complaints = r.at("complaints").as_object();
  EXPECT_EQ(complaints.at("opened"), 3);
  EXPECT_EQ(complaints.at("closed"), 1);
  EXPECT_EQ(complaints.at("open_at_end"), 2);
  EXPECT_EQ(complaints.at("overdue"), 1);
  const json::array& open = complaints.at("open").as_array();
  ASSERT_EQ(open.size(), 2U);
  EXPECT_EQ(Row(open, "id", 302).at("overdue"), true);
  EXPECT_EQ(Row(open, "id", 304).at("overdue"), false);
}

TEST_F(OperationsReport, HtmlAndCsvCarryTheSameFigures) {
  HttpResult html = Get("/api/v1/reports/operations?month=2026-11&format=html&lang=zh");
  ASSERT_EQ(html.status, 200) << html.body;
  EXPECT_EQ(html.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(html.body.find("<html lang=\"zh\">"), std::string::npos);
  EXPECT_NE(html.body.find("运维月度报告 2026-11"), std::string::npos);
  EXPECT_NE(html.body.find("<svg"), std::string::npos);  // incidents per tier, satisfaction
  EXPECT_EQ(html.body.find("<script"), std::string::npos);
  EXPECT_EQ(html.body.find("<link"), std::string::npos);  // self-contained
  // English by Accept-Language.
  HttpResult en = Get("/api/v1/reports/operations?month=2026-11&format=html");
  EXPECT_NE(en.body.find("Operations review 2026-11"), std::string::npos);

  HttpResult csv = Get("/api/v1/reports/operations?month=2026-11&format=csv&bom=true");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("\xEF\xBB\xBFsection,table,row,column,value\r\n", 0), 0U);
  EXPECT_NE(csv.body.find("Monthly assessment of staff,,alice,Score,100.0\r\n"), std::string::npos)
      << csv.body.substr(0, 2000);
  EXPECT_NE(csv.header("content-disposition").find("operations-2026-11.csv"), std::string::npos);
}

TEST_F(OperationsReport, BadMonthIsRefusedNamingIt) {
  for (const char* bad : {"", "2026-13", "2026-1", "november", "2026-11-01"}) {
    HttpResult r = Get(std::string("/api/v1/reports/operations?month=") + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_NE(r.body.find("month"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Get("/api/v1/reports/operations?month=2026-11&format=pdf").status, 400);
  EXPECT_EQ(Get("/api/v1/reports/operations?month=2026-11&lang=fr").status, 400);
}

}  // namespace
}  // namespace cmdb::testing
