#include <chrono>
#include <thread>

#include <libpq-fe.h>

#include "import/demo_estate.hpp"
#include "model/timestamp.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class ImpactApi : public ServerTest {
 protected:
  void TearDown() override {
    if (app2_) app2_->Stop();
    app2_.reset();
    ServerTest::TearDown();
  }
  std::unique_ptr<server::App> app2_;
  void SetUp() override {
    ServerTest::SetUp();
    HttpResult r = Post("/api/v1/import", boost::json::serialize(import::DemoEstateDocument()));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // The value of an unlabelled metric in /metrics; -1 (and a failure) when it is missing.
  double Metric(const std::string& name) {
    const std::string metrics = Get("/metrics").body;
    const std::size_t at = metrics.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << metrics;
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size() + 2));
  }
  std::int64_t IdOf(const std::string& name) {
    HttpResult all = Get("/api/v1/cis?limit=1000");
    for (const auto& ci : all.json().at("items").as_array()) {
      if (ci.at("name").as_string() == name) return ci.at("id").as_int64();
    }
    ADD_FAILURE() << "no CI named " << name;
    return 0;
  }
  std::set<std::string> Names(const boost::json::value& impact, const char* list = "nodes") {
    std::set<std::string> out;
    for (const auto& n : impact.at(list).as_array()) out.emplace(n.at("name").as_string());
    return out;
  }
  HttpResult Impact(std::int64_t id, const std::string& query = "", std::uint16_t on_port = 0) {
    return HttpRequest(on_port != 0 ? on_port : port(), "GET",
                       "/api/v1/cis/" + std::to_string(id) + "/impact" + query, "", Auth({}));
  }
};

TEST_F(ImpactApi, ADatabaseOutageReachesTheServicesThatNeedIt) {
  HttpResult r = Impact(IdOf("shop-db"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& body = r.json();
  EXPECT_EQ(body.at("root").at("name"), "shop-db");
  EXPECT_EQ(Names(body, "services"), (std::set<std::string>{"Online Shop"}));
  std::set<std::string> nodes = Names(body);
  for (const char* n : {"shop-db", "shop-api", "shop-checkout", "shop-web", "Online Shop",
                        "shop-db-replica", "reporting"}) {
    EXPECT_TRUE(nodes.contains(n)) << n;
  }
  EXPECT_FALSE(nodes.contains("Payroll"));
  EXPECT_FALSE(nodes.contains("db-srv-01"));  // what shop-db runs on does not fail with it
  for (const auto& n : body.at("nodes").as_array()) {
    EXPECT_EQ(n.at("via").as_array().size(), static_cast<std::size_t>(n.at("distance").as_int64()));
  }
  EXPECT_FALSE(body.at("truncated").as_bool());
}

TEST_F(ImpactApi, HostileNamesComeBackExactlyInTheJson) {
  // Quotes, backslashes, markup, entities, non-Latin scripts and emoji (names refuse control
  // characters; the writer's escaping of those is a unit test).
  const std::string exact =
      "Shop \"EU\" \\ <script>alert(1)</script> &amp; \u041c\u0430\u0433\u0430\u0437\u0438\u043d "
      "\u5546\u5e97 \U0001F6D2";
  boost::json::object ci{{"type", "business_service"}, {"name", exact}};
  const std::int64_t service = CreateCi(boost::json::serialize(ci));
  Relate(service, IdOf("shop-db"));
  HttpResult r = Impact(IdOf("shop-db"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Names(r.json(), "services").contains(exact)) << r.body;
  EXPECT_TRUE(Names(r.json()).contains(exact));
  HttpResult up = Impact(service, "?direction=up");
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(std::string(up.json().at("root").at("name").as_string()), exact);
}

TEST_F(ImpactApi, ReadsNeverReloadAndAnotherWritersChangeIsLoadedOnceInTheBackground) {
  auto loads = [&] { return Metric("cmdb_graph_loads"); };
  const std::int64_t db = IdOf("shop-db");
  ASSERT_EQ(Impact(db).status, 200);
  // The listener's echo of the fixture's import may still be loading: let it settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double before = loads();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Impact(db).status, 200);
  EXPECT_EQ(loads(), before);  // reads never reload
  // Another writer's relation, while a transaction holds the relations table locked: the
  // notification makes the listener reload, and that load waits for the lock. Readers keep
  // the previous graph meanwhile instead of waiting with it.
  PGconn* locker = PQconnectdb(dsn_.c_str());
  ASSERT_EQ(PQstatus(locker), CONNECTION_OK);
  Sql("INSERT INTO relations (type, from_ci, to_ci) VALUES ('depends_on', $1, $2)",
      {P(IdOf("Payroll")), P(db)});
  // PostgreSQL ends the locking transaction after 1.5 s whatever happens, so a reader that
  // does wait fails the test instead of hanging it.
  PQclear(PQexec(locker,
                 "SET idle_in_transaction_session_timeout = '1500ms'; BEGIN; LOCK TABLE relations "
                 "IN ACCESS EXCLUSIVE MODE"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the listener is waiting now
  for (int i = 0; i < 5; ++i) {
    const auto started = std::chrono::steady_clock::now();
    HttpResult r = Impact(db);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(r.status, 200);
    EXPECT_LT(took, std::chrono::milliseconds(500)) << "a reader waited for the reload";
  }
  PQclear(PQexec(locker, "COMMIT"));
  PQfinish(locker);
  bool seen = false;
  for (int i = 0; i < 40 && !seen; ++i) {
    seen = Names(Impact(db).json(), "services").contains("Payroll");
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(seen) << "the other writer's relation was not used within a second of the lock";
  EXPECT_EQ(loads(), before + 1);  // one notification, one load
}

TEST_F(ImpactApi, ARestartStartsFromTheStoredGraphAndAnswersTheSame) {
  const std::int64_t db = IdOf("shop-db");
  HttpResult before = Impact(db);
  ASSERT_EQ(before.status, 200);
  // The instance that read both tables stores the graph in the background.
  bool stored = false;
  for (int i = 0; i < 200 && !stored; ++i) {
    stored = Sql("SELECT count(*) FROM graph_snapshots").Int(0, 0) == 1;
    if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(stored) << "no graph snapshot was stored";
  // Written after the snapshot: the restarted instance must apply it on top.
  Sql("INSERT INTO relations (type, from_ci, to_ci) VALUES ('depends_on', $1, $2)",
      {P(IdOf("Payroll")), P(db)});
  Restart(Config());
  HttpResult after = Impact(db);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(Metric("cmdb_graph_full_loads"), 0);
  EXPECT_GE(Metric("cmdb_graph_loads"), 1);
  std::set<std::string> expected = Names(before.json());
  expected.insert("Payroll");
  EXPECT_EQ(Names(after.json()), expected);
}

TEST_F(ImpactApi, RedundancyKeepsAClusterUpAndSaysWhy) {
  HttpResult one = Impact(IdOf("web-vm-01"));
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(Names(one.json()), (std::set<std::string>{"web-vm-01"}));
  ASSERT_EQ(one.json().at("absorbed").as_array().size(), 1U);
  const auto& absorbed = one.json().at("absorbed").at(0);
  EXPECT_EQ(absorbed.at("name"), "web-pool");
  EXPECT_EQ(absorbed.at("providers"), 4);
  EXPECT_EQ(absorbed.at("healthy"), 3);
  EXPECT_EQ(absorbed.at("min_healthy"), 2);
  // Hypervisor esx-01 hosts web-vm-01 (the pool keeps 3 of 4 and absorbs it) and
  // checkout-vm-01 (shop-checkout has no redundancy, so the shop is reached).
  HttpResult esx = Impact(IdOf("esx-01"));
  EXPECT_TRUE(Names(esx.json(), "absorbed").contains("web-pool"));
  EXPECT_TRUE(Names(esx.json()).contains("Online Shop"));  // through shop-checkout's VM
}

TEST_F(ImpactApi, UpListsWhatACiNeeds) {
  HttpResult r = Impact(IdOf("payroll-app"), "?direction=up");
  ASSERT_EQ(r.status, 200);
  std::set<std::string> needs = Names(r.json());
  for (const char* n : {"payroll-db", "db-srv-03", "payroll-vm-01", "auth-service", "dns"}) {
    EXPECT_TRUE(needs.contains(n)) << n;
  }
  EXPECT_FALSE(needs.contains("Payroll"));
}

TEST_F(ImpactApi, DepthTypesAndCap) {
  std::int64_t db = IdOf("shop-db");
  auto depth1 = Impact(db, "?depth=1").json();
  for (const auto& n : depth1.at("nodes").as_array()) EXPECT_LE(n.at("distance").as_int64(), 1);
  auto runs_on_only = Impact(IdOf("db-srv-01"), "?relation_types=runs_on").json();
  EXPECT_EQ(Names(runs_on_only), (std::set<std::string>{"db-srv-01", "shop-db"}));
  auto capped = Impact(db, "?max_nodes=2").json();
  EXPECT_EQ(capped.at("nodes").as_array().size(), 2U);
  EXPECT_TRUE(capped.at("truncated").as_bool());
}

TEST_F(ImpactApi, BadParametersAreTold) {
  std::int64_t db = IdOf("shop-db");
  EXPECT_EQ(Impact(db, "?direction=sideways").status, 400);
  EXPECT_EQ(Impact(db, "?depth=-5").status, 400);
  EXPECT_EQ(Impact(db, "?depth=abc").status, 400);
  EXPECT_EQ(Impact(db, "?max_nodes=0").status, 400);
  EXPECT_EQ(Impact(db, "?max_nodes=1000000").status, 400);
  HttpResult type = Impact(db, "?relation_types=depends_on,loves");
  EXPECT_EQ(type.status, 400);
  EXPECT_NE(type.body.find("loves"), std::string::npos);
  EXPECT_EQ(Impact(db, "?as_of=yesterday").status, 400);
  EXPECT_EQ(Impact(db, "?as_of=2999-01-01T00:00:00Z").status, 400);
  EXPECT_EQ(Impact(db, "?colour=red").status, 400);
  EXPECT_EQ(Impact(987654321).status, 404);
}

TEST_F(ImpactApi, WritesShowAtOnceAndAsOfReadsThePast) {
  std::int64_t db = IdOf("payroll-db");
  std::int64_t app = IdOf("reporting");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string before = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(Names(Impact(db).json()).contains("reporting"));
  ASSERT_EQ(Post("/api/v1/relations", R"({"type": "depends_on", "from": )" + std::to_string(app) +
                                          R"(, "to": )" + std::to_string(db) + "}")
                .status,
            201);
  EXPECT_TRUE(Names(Impact(db).json()).contains("reporting"));  // read-your-writes
  auto past = Impact(db, "?as_of=" + before).json();
  EXPECT_FALSE(Names(past).contains("reporting"));
  EXPECT_EQ(past.at("as_of"), boost::json::value(before));
  // History read as of now agrees with the in-memory graph.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::string now = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (const char* name : {"payroll-db", "esx-02", "core-sw-01", "auth-service"}) {
    for (const char* dir : {"down", "up"}) {
      auto present = Impact(IdOf(name), std::string("?direction=") + dir).json();
      auto replayed = Impact(IdOf(name), std::string("?direction=") + dir + "&as_of=" + now).json();
      EXPECT_EQ(present.at("nodes"), replayed.at("nodes")) << name << " " << dir;
      EXPECT_EQ(present.at("edges"), replayed.at("edges")) << name << " " << dir;
      EXPECT_EQ(present.at("absorbed"), replayed.at("absorbed")) << name << " " << dir;
    }
  }
}

// A relation type created elsewhere (another instance, or SQL) after this instance loaded its
// graph: the writer's next read still shows a relation of that type it wrote.
TEST_F(ImpactApi, AWriteOfARelationTypeTheGraphDoesNotKnowShowsAtOnce) {
  std::int64_t db = IdOf("payroll-db");
  std::int64_t app = IdOf("reporting");
  EXPECT_FALSE(Names(Impact(db).json()).contains("reporting"));  // the graph is loaded
  Sql("INSERT INTO relation_types (name, description, propagation) VALUES ('feeds_from', "
      "'made elsewhere', 'to_from')");
  ASSERT_EQ(Post("/api/v1/relations", R"({"type": "feeds_from", "from": )" + std::to_string(app) +
                                          R"(, "to": )" + std::to_string(db) + "}")
                .status,
            201);
  EXPECT_TRUE(Names(Impact(db).json()).contains("reporting"));
}

TEST_F(ImpactApi, AsOfGraphsAreKeptAndStayRightAfterLaterWrites) {
  // Nothing else may hold a transaction begun before the instant when it is first asked for,
  // or it is not final and not kept: no workers polling, no graph load still running.
  server::ServeConfig config = Config();
  config.discovery_worker = false;
  config.import_worker = false;
  Restart(config);
  const std::int64_t db = IdOf("payroll-db");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string then = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  HttpResult first = Impact(db, "?as_of=" + then);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Metric("cmdb_history_graph_builds_total"), 1.0);
  ASSERT_EQ(Post("/api/v1/relations", R"({"type": "depends_on", "from": )" +
                                          std::to_string(IdOf("reporting")) + R"(, "to": )" +
                                          std::to_string(db) + "}")
                .status,
            201);
  // The picture and the JSON of the same instant share one graph, which the write after it
  // does not change.
  EXPECT_EQ(Impact(db, "/graph?format=dot&as_of=" + then).status, 200);
  HttpResult again = Impact(db, "?as_of=" + then);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_FALSE(Names(again.json()).contains("reporting"));
  EXPECT_EQ(Metric("cmdb_history_graph_builds_total"), 1.0);
  EXPECT_EQ(Metric("cmdb_history_graph_hits_total"), 2.0);
}

TEST_F(ImpactApi, RendersSvgPngAndDot) {
  std::int64_t db = IdOf("shop-db");
  HttpResult svg = Impact(db, "/graph");
  ASSERT_EQ(svg.status, 200) << svg.body;
  EXPECT_EQ(svg.header("content-type"), "image/svg+xml");
  EXPECT_NE(svg.body.find("Online Shop"), std::string::npos);
  HttpResult png = Impact(db, "/graph?format=png&direction=up");
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.header("content-type"), "image/png");
  EXPECT_EQ(png.body.substr(0, 4), "\x89PNG");
  HttpResult dot = Impact(db, "/graph?format=dot&depth=1");
  ASSERT_EQ(dot.status, 200);
  EXPECT_EQ(dot.body.rfind("digraph impact", 0), 0U);
  EXPECT_EQ(dot.body.find("Online Shop"), std::string::npos);  // two hops away
  EXPECT_EQ(Impact(db, "/graph?format=gif").status, 400);
  EXPECT_EQ(Impact(db, "/graph?direction=left").status, 400);
  EXPECT_EQ(Impact(987654321, "/graph").status, 404);
}

TEST_F(ImpactApi, OnlyWritesThatChangeTheGraphNotifyTheInstances) {
  std::int64_t id =
      CreateCi(R"({"type": "server", "name": "n-1", "attributes": {"memory_mb": 1}})");
  const std::string path = "/api/v1/cis/" + std::to_string(id);
  PGconn* conn = PQconnectdb(dsn_.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK);
  PQclear(PQexec(conn, "LISTEN cmdb_graph"));
  auto notified = [&](int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    bool any = false;
    while (!any && std::chrono::steady_clock::now() < deadline) {
      PQconsumeInput(conn);
      while (PGnotify* n = PQnotifies(conn)) {
        any = true;
        PQfreemem(n);
      }
      if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return any;
  };
  // Attributes, owner and tags are not in the graph: nobody reloads for them.
  EXPECT_EQ(
      Patch(path, R"({"attributes": {"memory_mb": 2}, "owner": "ops", "tags": ["x"]})").status,
      200);
  EXPECT_FALSE(notified(300));
  EXPECT_EQ(Patch(path, R"({"status": "maintenance"})").status, 200);
  EXPECT_TRUE(notified(2000));
  EXPECT_EQ(Patch(path, R"({"name": "n-2"})").status, 200);
  EXPECT_TRUE(notified(2000));
  // And the instance's own graph follows the name it was told about.
  std::int64_t host = CreateCi(R"({"type": "server", "name": "h-1"})");
  Relate(id, host);
  EXPECT_TRUE(notified(2000));
  EXPECT_NE(Get("/api/v1/cis/" + std::to_string(host) + "/impact").body.find("n-2"),
            std::string::npos);
  PQfinish(conn);
}

TEST_F(ImpactApi, ASecondInstanceSeesARelationWithinASecond) {
  app2_ = std::make_unique<server::App>(Config());
  app2_->Start();
  std::int64_t db = IdOf("payroll-db");
  std::int64_t app = IdOf("shop-search");
  // Instance B loads its graph before the write.
  EXPECT_FALSE(Names(Impact(db, "", app2_->port()).json()).contains("shop-search"));
  ASSERT_EQ(Post("/api/v1/relations", R"({"type": "depends_on", "from": )" + std::to_string(app) +
                                          R"(, "to": )" + std::to_string(db) + "}")
                .status,
            201);
  auto started = std::chrono::steady_clock::now();
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
    seen = Names(Impact(db, "", app2_->port()).json()).contains("shop-search");
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(seen) << "instance B did not see instance A's relation within a second";
  app2_->Stop();
  app2_.reset();
}

}  // namespace
}  // namespace cmdb::testing
