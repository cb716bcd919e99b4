#include <atomic>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "model/error.hpp"
#include "model/timestamp.hpp"
#include "store/ci_reader.hpp"
#include "store/ci_repository.hpp"
#include "store/connection_state.hpp"
#include "store/db_pool.hpp"
#include "store/pg.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class CisApi : public ServerTest {
 protected:
  std::string Path(std::int64_t id, const std::string& suffix = "") {
    return "/api/v1/cis/" + std::to_string(id) + suffix;
  }
};

TEST_F(CisApi, CreateReturnsTheCiWithLocationAndETag) {
  HttpResult r = Post("/api/v1/cis", R"({"type": "server", "name": "db-01", "status": "active",
      "owner": "dba-team", "tags": ["prod"], "attributes": {"hostname": "db-01", "ip": "10.0.0.5", "memory_mb": 65536}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto ci = r.json();
  std::int64_t id = ci.at("id").as_int64();
  EXPECT_EQ(r.header("location"), Path(id));
  EXPECT_EQ(r.header("etag"), "\"1\"");
  EXPECT_EQ(ci.at("version"), 1);
  EXPECT_EQ(ci.at("last_seen_at"), nullptr);
  EXPECT_EQ(ci.at("attributes").at("memory_mb"), 65536);
  EXPECT_TRUE(model::ParseTimestamp(ci.at("created_at").as_string()));
  HttpResult again = Get(Path(id));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json(), ci);
}

TEST_F(CisApi, ValidationFailuresListEveryFieldAndWriteNothing) {
  HttpResult r = Post("/api/v1/cis", R"({"type": "server", "name": "x", "status": "on fire",
      "attributes": {"ip": "999.1.1.1", "memory_mb": "lots", "colour": "red"}})");
  ASSERT_EQ(r.status, 422);
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"status", "attributes.ip", "attributes.memory_mb",
                                           "attributes.colour"}));
  HttpResult unknown_type = Post("/api/v1/cis", R"({"type": "toaster", "name": "x"})");
  EXPECT_EQ(unknown_type.status, 422);
  EXPECT_EQ(unknown_type.json().at("errors").at(0).at("field"), "type");
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 0U);
}

TEST_F(CisApi, MergePatchUpdatesWithHistoryAndETags) {
  std::int64_t id = CreateCi(R"({"type": "server", "name": "db-01", "owner": "dba",
      "attributes": {"memory_mb": 32768, "os": "Debian 12"}})");
  HttpResult patched = Patch(
      Path(id), R"({"attributes": {"memory_mb": 65536, "os": null}, "owner": null})", "\"1\"");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.header("etag"), "\"2\"");
  auto ci = patched.json();
  EXPECT_EQ(ci.at("owner"), nullptr);
  EXPECT_EQ(ci.at("attributes"), boost::json::parse(R"({"memory_mb": 65536})"));

  // A stale If-Match writes nothing.
  HttpResult stale = Patch(Path(id), R"({"name": "renamed"})", "\"1\"");
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(Get(Path(id)).json().at("name"), "db-01");
  EXPECT_EQ(Get(Path(id)).json().at("version"), 2);

  // A patch that changes nothing records no version.
  EXPECT_EQ(Patch(Path(id), R"({"name": "db-01"})").json().at("version"), 2);

  HttpResult history = Get(Path(id, "/history"));
  ASSERT_EQ(history.status, 200);
  auto items = history.json().at("items").as_array();
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(items[0].at("version"), 2);
  EXPECT_EQ(items[0].at("source"), "api");
  EXPECT_EQ(items[0].at("diff"), boost::json::parse(R"({
      "owner": {"old": "dba", "new": null},
      "memory_mb": {"old": 32768, "new": 65536},
      "os": {"old": "Debian 12", "new": null}})"));
  EXPECT_EQ(items[1].at("version"), 1);
  EXPECT_EQ(items[1].at("operation"), "create");

  HttpResult invalid = Patch(Path(id), R"({"attributes": {"memory_mb": -5}})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(invalid.json().at("errors").at(0).at("field"), "attributes.memory_mb");
  EXPECT_EQ(Patch(Path(id), R"({"type": "vm"})").status, 422);
}

TEST_F(CisApi, AsOfReadsThePastFromHistory) {
  std::int64_t id =
      CreateCi(R"({"type": "server", "name": "app-01", "attributes": {"memory_mb": 1024}})");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string between = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(Patch(Path(id), R"({"attributes": {"memory_mb": 2048}})").status, 200);
  std::int64_t later = CreateCi(R"({"type": "server", "name": "app-02"})");

  HttpResult then = Get(Path(id) + "?as_of=" + between);
  ASSERT_EQ(then.status, 200) << then.body;
  EXPECT_EQ(then.json().at("attributes").at("memory_mb"), 1024);
  EXPECT_EQ(then.json().at("version"), 1);
  EXPECT_EQ(Get(Path(id)).json().at("attributes").at("memory_mb"), 2048);
  EXPECT_EQ(Get(Path(later) + "?as_of=" + between).status, 404);

  auto listed = Get("/api/v1/cis?as_of=" + between).json().at("items").as_array();
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_EQ(listed[0].at("id"), id);
  EXPECT_EQ(listed[0].at("attributes").at("memory_mb"), 1024);

  // Deleting keeps history readable, as of before the delete too.
  std::string before_delete = model::FormatTimestamp(model::Timestamp::Now());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(Delete(Path(id)).status, 204);
  EXPECT_EQ(Get(Path(id)).status, 404);
  EXPECT_EQ(Get(Path(id) + "?as_of=" + before_delete).json().at("attributes").at("memory_mb"),
            2048);
  auto history = Get(Path(id, "/history")).json().at("items").as_array();
  ASSERT_EQ(history.size(), 3U);
  EXPECT_EQ(history[0].at("operation"), "delete");
  EXPECT_EQ(history[0].at("diff").at("name"),
            boost::json::parse(R"({"old": "app-01", "new": null})"));
}

// A CI's current version is its own row (0025_ci_current_versions.sql): a new CI writes no
// version row, each change keeps the version that ended, a delete keeps it and a tombstone,
// and a CI inserted by SQL has a history too. Versions tile time without gaps or overlaps.
TEST_F(CisApi, ACisCurrentVersionIsItsRowAndEndedOnesAreKept) {
  std::int64_t id =
      CreateCi(R"({"type": "server", "name": "h-01", "attributes": {"memory_mb": 1024}})");
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_versions").Int(0, 0), 0);
  ASSERT_EQ(Patch(Path(id), R"({"attributes": {"memory_mb": 2048}})").status, 200);
  ASSERT_EQ(Patch(Path(id), R"({"owner": "ops"})").status, 200);
  EXPECT_EQ(
      Sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM ci_versions").Text(0, 0),
      "1,2");
  // Each version ends where the next starts; the current one has no end.
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_history a JOIN ci_history b ON b.ci_id = a.ci_id AND "
                "b.version = a.version + 1 WHERE a.valid_to = b.valid_from")
                .Int(0, 0),
            2);
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_history WHERE valid_to IS NULL").Int(0, 0), 1);
  auto history = Get(Path(id, "/history")).json().at("items").as_array();
  ASSERT_EQ(history.size(), 3U);
  EXPECT_EQ(history[0].at("diff").at("owner"),
            boost::json::parse(R"({"old": null, "new": "ops"})"));
  EXPECT_EQ(history[2].at("operation"), "create");

  Sql("INSERT INTO configuration_items (type, name) VALUES ('server', 'by-sql')");
  const std::int64_t by_sql =
      Sql("SELECT id FROM configuration_items WHERE name = 'by-sql'").Int(0, 0);
  auto sql_history = Get(Path(by_sql, "/history")).json().at("items").as_array();
  ASSERT_EQ(sql_history.size(), 1U);
  EXPECT_EQ(sql_history[0].at("source"), "sql");
  EXPECT_EQ(sql_history[0].at("operation"), "create");

  ASSERT_EQ(Delete(Path(id)).status, 204);
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_versions WHERE ci_id = " + std::to_string(id)).Int(0, 0),
            4);  // versions 1 to 3, and the tombstone
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_history WHERE valid_to IS NULL").Int(0, 0), 1);  // by-sql
  EXPECT_EQ(Get(Path(id, "/history")).json().at("items").as_array().size(), 4U);
}

TEST_F(CisApi, ListFiltersByEveryField) {
  CreateCi(
      R"({"type": "server", "name": "web-01", "owner": "web", "tags": ["prod", "web"], "attributes": {"os": "Debian 12", "cpu_count": 8, "ip_addresses": ["10.0.0.1", "10.0.0.2"]}})");
  CreateCi(
      R"({"type": "server", "name": "web-02", "status": "retired", "owner": "web", "tags": ["prod"], "attributes": {"os": "Debian 11", "cpu_count": 4}})");
  CreateCi(
      R"({"type": "vm", "name": "DB_vm_%", "owner": "dba", "tags": ["dev"], "attributes": {"os": "Debian 12"}})");
  auto names = [&](const std::string& query) {
    std::vector<std::string> out;
    HttpResult r = Get("/api/v1/cis?" + query);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    for (const auto& ci : r.json().at("items").as_array())
      out.emplace_back(ci.at("name").as_string());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names("type=server"), (V{"web-01", "web-02"}));
  EXPECT_EQ(names("type=&owner="), (V{"web-01", "web-02", "DB_vm_%"}));
  EXPECT_EQ(names("status=retired"), (V{"web-02"}));
  EXPECT_EQ(names("owner=dba"), (V{"DB_vm_%"}));
  EXPECT_EQ(names("tag=prod&tag=web"), (V{"web-01"}));
  EXPECT_EQ(names("q=WEB"), (V{"web-01", "web-02"}));
  EXPECT_EQ(names("q=_vm_%25"), (V{"DB_vm_%"}));  // LIKE wildcards are literal
  EXPECT_EQ(names("q=B%25v"), (V{}));             // "%" matches only itself
  EXPECT_EQ(names("attr.os=Debian%2012"), (V{"web-01", "DB_vm_%"}));
  EXPECT_EQ(names("attr.cpu_count=8"), (V{"web-01"}));
  EXPECT_EQ(names("attr.ip_addresses=10.0.0.2"), (V{"web-01"}));
  EXPECT_EQ(names("type=server&attr.os=Debian%2012&owner=web"), (V{"web-01"}));
  EXPECT_EQ(Get("/api/v1/cis?status=bogus").status, 400);
  EXPECT_EQ(Get("/api/v1/cis?colour=red").status, 400);
  EXPECT_EQ(Get("/api/v1/cis?attr.Bad-Name=1").status, 400);
}

TEST_F(CisApi, CursorPaginationIsStableUnderConcurrentInserts) {
  for (int i = 0; i < 25; ++i)
    CreateCi(R"({"type": "vm", "name": "vm-)" + std::to_string(i) + "\"}");
  std::set<std::int64_t> seen;
  std::string cursor;
  int pages = 0;
  int inserted = 0;
  do {
    HttpResult page = Get("/api/v1/cis?limit=10" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(page.status, 200);
    for (const auto& ci : page.json().at("items").as_array()) {
      EXPECT_TRUE(seen.insert(ci.at("id").as_int64()).second) << "duplicate across pages";
    }
    // Writers keep inserting while the client pages.
    CreateCi(R"({"type": "vm", "name": "late-)" + std::to_string(inserted++) + "\"}");
    auto next = page.json().at("next_cursor");
    cursor = next.is_null() ? "" : std::string(next.as_string());
    ++pages;
  } while (!cursor.empty() && pages < 20);
  // Every CI that existed before paging started was seen exactly once.
  for (std::int64_t id = 1; id <= 25; ++id) EXPECT_TRUE(seen.contains(id)) << id;
  EXPECT_EQ(Get("/api/v1/cis?limit=0").status, 400);
  EXPECT_EQ(Get("/api/v1/cis?limit=1001").status, 400);
  EXPECT_EQ(Get("/api/v1/cis?cursor=garbage").status, 400);
}

TEST_F(CisApi, HostileNamesRoundTripUnchanged) {
  const std::string name = R"(<script>alert("x")</script> \ 'q' – сервер 日本 🚀)";
  boost::json::object body{{"type", "server"}, {"name", name}};
  HttpResult r = Post("/api/v1/cis", boost::json::serialize(body));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Get(Path(r.json().at("id").as_int64())).json().at("name"), boost::json::value(name));
}

TEST_F(CisApi, UnknownAndOverflowingIdsAreTold) {
  EXPECT_EQ(Get("/api/v1/cis/424242").status, 404);
  EXPECT_EQ(Get("/api/v1/cis/9223372036854775808").status, 400);
  EXPECT_EQ(Get("/api/v1/cis/abc").status, 400);
  EXPECT_EQ(Patch("/api/v1/cis/424242", "{}").status, 404);
  EXPECT_EQ(Delete("/api/v1/cis/424242").status, 404);
  EXPECT_EQ(Get("/api/v1/cis/424242/history").status, 404);
}

// GET of one CI goes through the batched reader: concurrent reads of different CIs, some
// missing, each get their own answer, and it really was the reader that answered.
TEST_F(CisApi, ConcurrentReadsOfOneCiEachGetTheirOwnAnswer) {
  // A read takes the batched path with a token verified within the cache's lifetime (a second
  // by default); kept for a minute here, so that a slow run sends no read to a worker.
  server::ServeConfig config = Config();
  config.token_cache = std::chrono::minutes(1);
  Restart(config);
  std::map<std::int64_t, std::string> names;
  for (int i = 0; i < 24; ++i) {
    const std::string name = "host-" + std::to_string(i) + " \"q\" <é>";
    boost::json::object body{{"type", "server"}, {"name", name}};
    names[CreateCi(boost::json::serialize(body))] = name;
  }
  std::vector<std::int64_t> ids;
  for (const auto& [id, name] : names) ids.push_back(id);
  ids.push_back(ids.back() + 1000);  // never created: 404
  std::atomic<int> wrong{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      for (int i = 0; i < 40; ++i) {
        const std::int64_t id = ids[random() % ids.size()];
        HttpResult r = Get(Path(id));
        answered.fetch_add(1);
        auto it = names.find(id);
        const bool right =
            it == names.end()
                ? r.status == 404 && r.header("content-type") == "application/problem+json"
                : r.status == 200 && r.json().at("id") == id &&
                      r.json().at("name") == boost::json::value(it->second) &&
                      r.header("etag") == "\"1\"";
        if (!right) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(answered.load(), 320);
  EXPECT_EQ(wrong.load(), 0);
  const std::string metrics = Get("/metrics").body;
  const std::string gauge = "\ncmdb_ci_reads_batched_total ";
  const std::size_t at = metrics.find(gauge);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stod(metrics.substr(at + gauge.size())), 320.0);
}

// Reads that arrive while a query is at PostgreSQL go together in the next one. The table
// is locked so that every reader thread's first query waits: the other reads queue meanwhile.
TEST_F(CisApi, ReadsQueuedDuringAQueryGoTogetherAndStopAnswersThem) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(CreateCi(R"({"type":"server","name":"r)" + std::to_string(i) + R"("})"));
  }
  store::BatchedCiReader reader(dsn_, 2);
  SqlConnection locker(dsn_);
  locker.Query("BEGIN");
  locker.Query("LOCK TABLE configuration_items IN ACCESS EXCLUSIVE MODE");
  constexpr int kReads = 100;
  std::mutex mutex;
  std::vector<std::optional<model::ConfigurationItem>> got(kReads);
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kReads; ++i) {
    const std::int64_t id = i % 10 == 9 ? ids.back() + 500 : ids[i % ids.size()];
    ASSERT_TRUE(reader.Read(
        id, [&, i](std::optional<model::ConfigurationItem> ci, const std::exception_ptr& error) {
          if (error) failed.fetch_add(1);
          std::lock_guard lock(mutex);
          got[i] = std::move(ci);
          done.fetch_add(1);
        }));
  }
  // Stop waits for the queued reads, which wait for the lock.
  auto stopped = std::async(std::launch::async, [&] { reader.Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_EQ(done.load(), 0);
  locker.Query("COMMIT");
  stopped.get();
  EXPECT_EQ(done.load(), kReads);
  EXPECT_EQ(failed.load(), 0);
  for (int i = 0; i < kReads; ++i) {
    if (i % 10 == 9) {
      EXPECT_FALSE(got[i].has_value()) << i;
    } else {
      ASSERT_TRUE(got[i].has_value()) << i;
      EXPECT_EQ(got[i]->id, ids[i % ids.size()]);
      EXPECT_EQ(got[i]->name, "r" + std::to_string(i % ids.size()));
    }
  }
  EXPECT_EQ(reader.reads(), static_cast<std::size_t>(kReads));
  // At most one query per thread waited on the lock, and at most one more each took the rest.
  EXPECT_LE(reader.batches(), 4U);
  EXPECT_FALSE(reader.Read(ids[0], [](auto&&...) {}));  // stopped
}

// A reader whose connections were cut reports the failure and reconnects for the next read.
TEST_F(CisApi, ReaderRecoversFromLostConnections) {
  const std::int64_t id = CreateCi(R"({"type":"server","name":"survivor"})");
  store::BatchedCiReader reader(dsn_, 1);
  auto read = [&reader, id] {
    std::promise<std::pair<bool, std::exception_ptr>> result;
    reader.Read(
        id, [&result](std::optional<model::ConfigurationItem> ci, const std::exception_ptr& error) {
          result.set_value({ci.has_value(), error});
        });
    return result.get_future().get();
  };
  ASSERT_TRUE(read().first);
  SqlResult cut = Sql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
      " AND pid <> pg_backend_pid() AND query LIKE '%ANY($1::bigint[])%'");
  ASSERT_EQ(cut.rows(), 1);  // the reader's one connection (the server's has not read yet)
  ASSERT_TRUE(cut.Bool(0, 0));
  int attempts = 0;
  std::pair<bool, std::exception_ptr> r{false, nullptr};
  while (!r.first && attempts < 3) {
    r = read();
    ++attempts;
    if (r.second) {
      try {
        std::rethrow_exception(r.second);
      } catch (const model::Error& e) {
        EXPECT_EQ(e.code(), model::ErrorCode::kUnavailable) << e.what();  // answered 503
      }
    }
  }
  EXPECT_TRUE(r.first) << "no read succeeded after the connection was cut";
  EXPECT_EQ(attempts, 2);  // the read on the cut connection failed; the next one reconnected
}

// What a connection has prepared belongs to that connection: kept while it lives, dropped
// when the pool reopens it (the new backend has none of it), never shared or leaked.
TEST_F(CisApi, PreparedStatementsLiveAndDieWithTheirConnection) {
  const std::int64_t id = CreateCi(R"({"type":"server","name":"prepared"})");
  store::DbPool pool(dsn_, 1);
  auto prepared = [](store::DbSession& s) { return s.state().prepared.size(); };
  // The batched reader's statement, prepared through libpq on the same connection.
  auto native = [](store::DbSession& s) {
    int seen = 0;
    store::pg::ForEachPreparedRow(s, "probe", "SELECT $1::int", {"7"},
                                  [&](const store::pg::Fields& f) { seen = f[0] == "7" ? 1 : 0; });
    return seen == 1 && s.state().native_prepared.size() == 1;
  };
  int backend = 0;
  {
    store::DbSession session = pool.Lease();
    EXPECT_EQ(prepared(session), 0U);
    ASSERT_TRUE(store::CiRepository(session).FindById(id));
    ASSERT_TRUE(store::CiRepository(session).FindById(id, model::Timestamp::Now()));
    EXPECT_EQ(prepared(session), 2U);
    EXPECT_TRUE(native(session));
    EXPECT_TRUE(native(session));  // prepared once
    backend = static_cast<int>(Query(session, "SELECT pg_backend_pid()").Int(0, 0));
  }
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(Sql("SELECT pg_terminate_backend($1)", {P(backend)}).Bool(0, 0));
    {
      store::DbSession session = pool.Lease();  // not yet known to be lost
      try {
        store::CiRepository(session).FindById(id);
        ADD_FAILURE() << "a read on a terminated connection succeeded";
      } catch (const model::Error& e) {
        EXPECT_EQ(e.code(), model::ErrorCode::kUnavailable) << e.what();
      }
    }
    store::DbSession session = pool.Lease();  // reopened: nothing prepared on it yet
    EXPECT_EQ(prepared(session), 0U) << "round " << round;
    EXPECT_TRUE(session.state().native_prepared.empty()) << "round " << round;
    ASSERT_TRUE(store::CiRepository(session).FindById(id));
    EXPECT_EQ(prepared(session), 1U);
    EXPECT_TRUE(native(session)) << "round " << round;
    backend = static_cast<int>(Query(session, "SELECT pg_backend_pid()").Int(0, 0));
  }
}

}  // namespace
}  // namespace cmdb::testing
