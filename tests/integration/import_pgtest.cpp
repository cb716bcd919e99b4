#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "import/import_cache.hpp"
#include "import/importer.hpp"
#include "import/kept_warmup.hpp"
#include "store/ci_type_repository.hpp"
#include "store/db_pool.hpp"
#include "store/pg.hpp"
#include "tests/integration/cmdb_process.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class ImportApi : public ServerTest {
 protected:
  // Polls the job until `done` says so (60 s at most).
  template <typename Done>
  boost::json::value WaitForJob(const std::string& location, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResult r = Get(location);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) return nullptr;
      if (done(r.json())) return r.json();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << location << " did not get there";
    return nullptr;
  }
  boost::json::value WaitForJob(const std::string& location) {
    return WaitForJob(location, [](const boost::json::value& job) {
      return job.at("state") == "succeeded" || job.at("state") == "failed";
    });
  }
};

const char* kDoc = R"({
  "cis": [
    {"type": "server", "name": "db-01", "attributes": {"serial": "S1", "hostname": "db-01", "memory_mb": 1024}},
    {"type": "server", "name": "db-02", "attributes": {"serial": "S2", "hostname": "db-02"}},
    {"type": "application", "name": "shop", "attributes": {"app_code": "SHOP"}}
  ],
  "relations": [
    {"type": "runs_on", "from": {"type": "application", "name": "shop"}, "to": {"type": "server", "identity": {"serial": "S1"}}},
    {"type": "runs_on", "from": {"type": "application", "identity": {"app_code": "SHOP"}}, "to": {"type": "server", "name": "db-02"}}
  ]})";

TEST_F(ImportApi, CreatesThenUpdatesByIdentityThenLeavesUnchanged) {
  HttpResult first = Post("/api/v1/import", kDoc);
  ASSERT_EQ(first.status, 200) << first.body;
  auto r = first.json();
  EXPECT_EQ(r.at("created"), 3);
  EXPECT_EQ(r.at("updated"), 0);
  EXPECT_EQ(r.at("relations").at("created"), 2);
  std::int64_t db01 = r.at("ci_ids").at(0).as_int64();
  // Each created CI's first version is its row as written, with the import as its source and
  // the creation's diff (every field from null).
  const boost::json::value created_ci = Get("/api/v1/cis/" + std::to_string(db01)).json();
  for (const auto& id : r.at("ci_ids").as_array()) {
    auto versions =
        Get("/api/v1/cis/" + std::to_string(id.as_int64()) + "/history").json().at("items");
    ASSERT_EQ(versions.as_array().size(), 1U) << versions;
    EXPECT_EQ(versions.at(0).at("version"), 1);
    EXPECT_EQ(versions.at(0).at("operation"), "create");
    EXPECT_EQ(versions.at(0).at("source"), "import");
    EXPECT_FALSE(versions.at(0).at("changed_by").as_string().empty());
  }
  const auto creation =
      Get("/api/v1/cis/" + std::to_string(db01) + "/history").json().at("items").at(0);
  EXPECT_EQ(creation.at("changed_at"), created_ci.at("created_at"));
  EXPECT_EQ(creation.at("diff").at("memory_mb"),
            boost::json::parse(R"({"old": null, "new": 1024})"))
      << creation;

  HttpResult again = Post("/api/v1/import", kDoc);
  EXPECT_EQ(again.json().at("unchanged"), 3);
  EXPECT_EQ(again.json().at("relations").at("unchanged"), 2);

  // Same serial, new name and memory: matched by identify_by ["serial"], updated in place.
  HttpResult changed = Post("/api/v1/import", R"({"cis": [
      {"type": "server", "name": "db-01-renamed", "attributes": {"serial": "S1", "memory_mb": 2048}}]})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(changed.json().at("updated"), 1);
  EXPECT_EQ(changed.json().at("ci_ids").at(0), db01);
  auto ci = Get("/api/v1/cis/" + std::to_string(db01)).json();
  EXPECT_EQ(ci.at("name"), "db-01-renamed");
  EXPECT_EQ(ci.at("attributes").at("memory_mb"), 2048);
  EXPECT_EQ(ci.at("attributes").at("hostname"), "db-01");  // attributes not named are kept
  auto history =
      Get("/api/v1/cis/" + std::to_string(db01) + "/history").json().at("items").as_array();
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[0].at("source"), "import");
  EXPECT_EQ(history[0].at("diff").at("memory_mb"),
            boost::json::parse(R"({"old": 1024, "new": 2048})"));
  // As of the first import, the CI is what that import wrote.
  const std::string first_time = created_ci.at("created_at").as_string().c_str();
  HttpResult then = Get("/api/v1/cis/" + std::to_string(db01) + "?as_of=" + first_time);
  ASSERT_EQ(then.status, 200) << then.body;
  EXPECT_EQ(then.json().at("name"), "db-01");
  EXPECT_EQ(then.json().at("attributes"), created_ci.at("attributes"));
  EXPECT_EQ(
      Get("/api/v1/relations?ci=" + std::to_string(db01)).json().at("items").as_array().size(), 1U);
}

// Matched CIs are read back by COPY: a NULL and the text \N, tabs, newlines and backslashes
// must come back as they were, or the nightly re-import would see changes that are not there.
TEST_F(ImportApi, ReimportOfUnusualTextIsUnchanged) {
  const std::string doc = R"({"cis": [
    {"type": "server", "name": "back \\ slash", "owner": "\\N",
     "attributes": {"serial": "\\N", "hostname": "h\u00e9 \"q\" <a>",
                    "os": "tab\there\nnewline \\ back"}},
    {"type": "server", "name": "plain", "attributes": {"serial": "S-2"}}]})";
  HttpResult first = Post("/api/v1/import", doc);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json().at("created"), 2);
  HttpResult again = Post("/api/v1/import", doc);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("unchanged"), 2) << again.body;
  EXPECT_EQ(again.json().at("updated"), 0);
  const std::int64_t id = first.json().at("ci_ids").at(0).as_int64();
  HttpResult ci = Get("/api/v1/cis/" + std::to_string(id));
  EXPECT_EQ(ci.json().at("owner"), "\\N");
  EXPECT_EQ(ci.json().at("name"), "back \\ slash");
  EXPECT_EQ(ci.json().at("attributes").at("os"), "tab\there\nnewline \\ back");
  EXPECT_EQ(ci.json().at("attributes").at("serial"), "\\N");
  // The other one has no owner: NULL stays NULL.
  HttpResult plain =
      Get("/api/v1/cis/" + std::to_string(first.json().at("ci_ids").at(1).as_int64()));
  EXPECT_TRUE(plain.json().at("owner").is_null());
}

TEST_F(ImportApi, AtomicImportRejectsEverythingAndListsEveryBadRow) {
  HttpResult r = Post("/api/v1/import", R"({"cis": [
      {"type": "server", "name": "ok-1"},
      {"type": "server", "name": "bad-1", "attributes": {"memory_mb": "x"}},
      {"type": "nope", "name": "bad-2"},
      {"type": "server", "name": "ok-2"}],
    "relations": [{"type": "depends_on", "from": 9999, "to": {"type": "server", "name": "ok-1"}}]})");
  ASSERT_EQ(r.status, 422) << r.body;
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_TRUE(fields.contains("cis[1].attributes.memory_mb"));
  EXPECT_TRUE(fields.contains("cis[2].type"));
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 0U);
}

TEST_F(ImportApi, PartialImportCommitsTheGoodRows) {
  HttpResult r = Post("/api/v1/import?mode=partial", R"({"cis": [
      {"type": "server", "name": "ok-1", "attributes": {"serial": "A"}},
      {"type": "server", "name": "bad-1", "attributes": {"memory_mb": "x"}},
      {"type": "server", "name": "dup", "attributes": {"serial": "A"}}],
    "relations": [{"type": "depends_on", "from": 9999, "to": {"type": "server", "name": "ok-1"}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(body.at("created"), 1);
  EXPECT_EQ(body.at("rejected"), 2);
  EXPECT_EQ(body.at("relations").at("rejected"), 1);
  EXPECT_EQ(body.at("ci_ids").at(1), nullptr);
  std::set<std::string> rows;
  for (const auto& e : body.at("errors").as_array())
    rows.insert(std::string(e.at("row").as_string()));
  EXPECT_EQ(rows, (std::set<std::string>{"cis[1]", "cis[2]", "relations[0]"}));
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 1U);
}

// A re-import reads the CIs it matched without locking them and locks only those it changes:
// a write that commits in between is not lost, the import's change is merged onto it. Both
// ways of reading: the matched CI read by id after the match (the import names few CIs of
// the type), and read whole with the type's identities (it names most of them).
TEST_F(ImportApi, AWriteBetweenTheReadAndTheLockIsMergedNotLost) {
  for (const bool few : {false, true}) {
    SCOPED_TRACE(few ? "the import names one server of four" : "the only server");
    if (few) {
      for (const char* other : {"other-1", "other-2", "other-3"}) {
        CreateCi(std::string(R"({"type": "server", "name": ")") + other + R"("})");
      }
    }
    const std::string name = few ? "db-02" : "db-01";
    const std::int64_t id = CreateCi(R"({"type": "server", "name": ")" + name +
                                     R"(", "attributes": {"memory_mb": 1024}})");
    // Another writer holds the row, its change not yet committed.
    Sql("BEGIN");
    Sql("UPDATE configuration_items SET attributes = attributes || '{\"ip\": \"10.1.1.1\"}', "
        "version = version + 1 WHERE id = $1",
        {P(id)});
    HttpResult imported;
    std::thread import([&] {
      imported = Post("/api/v1/import", R"({"cis": [{"type": "server", "name": ")" + name +
                                            R"(", "attributes": {"memory_mb": 2048}}]})");
    });
    // The import read version 1, merged, and now waits for the row.
    bool waiting = false;
    for (int i = 0; i < 500 && !waiting; ++i) {
      SqlConnection watcher(dsn_);
      waiting = watcher
                    .Query(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%FOR UPDATE%'")
                    .Int(0, 0) > 0;
      if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Sql("COMMIT");
    import.join();
    ASSERT_TRUE(waiting) << "the import never waited for the row";
    ASSERT_EQ(imported.status, 200) << imported.body;
    EXPECT_EQ(imported.json().at("updated"), 1);
    const boost::json::value ci = Get("/api/v1/cis/" + std::to_string(id)).json();
    EXPECT_EQ(ci.at("attributes").at("memory_mb"), 2048);
    EXPECT_EQ(ci.at("attributes").at("ip"), "10.1.1.1") << ci;  // the other write survives
    EXPECT_EQ(ci.at("version"), 3);
  }
}

// The nightly sync matches against what the instance kept of the type (its identities and a
// digest of each CI's fields) instead of reading it again. Whatever other writers did in
// between must count as if the import had read the type: a change through the API, a plain
// SQL update, a CI created with an identity a row names, a delete and a rename.
TEST_F(ImportApi, KeptIdentitiesFollowEveryWriterBetweenImports) {
  auto doc = [](const std::string& extra) {
    return R"({"cis": [
      {"type": "server", "name": "k-01", "owner": "team-a", "attributes": {"serial": "K1", "memory_mb": 1024}},
      {"type": "server", "name": "k-02", "owner": "team-a", "attributes": {"serial": "K2"}},
      {"type": "server", "name": "k-03", "owner": "team-a"},
      {"type": "server", "name": "k-04", "owner": "team-a", "attributes": {"serial": "K4"}})" +
           extra + "]}";
  };
  auto kept = [](const HttpResult& r) {
    return r.json().at("timings").as_object().contains("kept_identities");
  };
  HttpResult first = Post("/api/v1/import", doc(""));
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json().at("created"), 4);
  const auto& ids = first.json().at("ci_ids").as_array();
  const std::int64_t k01 = ids.at(0).as_int64();
  const std::int64_t k02 = ids.at(1).as_int64();
  const std::int64_t k03 = ids.at(2).as_int64();
  const std::int64_t k04 = ids.at(3).as_int64();
  for (int night = 0; night < 2; ++night) {
    HttpResult again = Post("/api/v1/import", doc(""));
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.json().at("unchanged"), 4) << again.body;
    EXPECT_TRUE(kept(again)) << again.body;
  }

  // Between two nights: an API change, a plain SQL change (no version bump, no API), a CI
  // created with the serial a new row names, a delete, a rename behind the API's back, and a
  // CI of another type named as a new server row (in the change log, never a server's match).
  ASSERT_EQ(
      Patch("/api/v1/cis/" + std::to_string(k01), R"({"attributes": {"memory_mb": 4096}})").status,
      200);
  Sql("UPDATE configuration_items SET owner = 'rogue' WHERE id = $1", {P(k02)});
  const std::int64_t k05 =
      CreateCi(R"({"type": "server", "name": "k-05", "attributes": {"serial": "K5"}})");
  ASSERT_EQ(Delete("/api/v1/cis/" + std::to_string(k04)).status, 204);
  Sql("UPDATE configuration_items SET name = 'k-03b' WHERE id = $1", {P(k03)});
  const std::int64_t app = CreateCi(R"({"type": "application", "name": "k-08"})");

  const std::string next =
      doc(R"(, {"type": "server", "name": "k-05-renamed", "attributes": {"serial": "K5"}},
               {"type": "server", "name": "k-08"})");
  HttpResult synced = Post("/api/v1/import", next);
  ASSERT_EQ(synced.status, 200) << synced.body;
  EXPECT_TRUE(kept(synced)) << synced.body;
  EXPECT_EQ(synced.json().at("updated"), 3) << synced.body;  // k-01, k-02, k-05
  // k-03 (renamed), k-04 (deleted), k-08 (the application is no server)
  EXPECT_EQ(synced.json().at("created"), 3) << synced.body;
  EXPECT_EQ(synced.json().at("unchanged"), 0) << synced.body;
  const auto& now = synced.json().at("ci_ids").as_array();
  EXPECT_EQ(now.at(0), k01);
  EXPECT_EQ(now.at(1), k02);
  EXPECT_NE(now.at(2), k03);
  EXPECT_NE(now.at(3), k04);
  EXPECT_EQ(now.at(4), k05);  // matched by serial, not created twice
  EXPECT_NE(now.at(5), app);
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(k01)).json().at("attributes").at("memory_mb"),
            1024);
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(k02)).json().at("owner"), "team-a");
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(k05)).json().at("name"), "k-05-renamed");
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(k03)).json().at("name"), "k-03b");
  EXPECT_EQ(
      Sql("SELECT count(*) FROM configuration_items WHERE name IN ('k-03', 'k-04')").Int(0, 0), 2);

  // A rejected import leaves nothing of its rows in what is kept: the same new row imports
  // afterwards, once.
  HttpResult rejected =
      Post("/api/v1/import",
           R"({"cis": [{"type": "server", "name": "k-06", "attributes": {"serial": "K6"}},
                  {"type": "server", "name": "k-07", "attributes": {"memory_mb": "lots"}}]})");
  ASSERT_EQ(rejected.status, 422) << rejected.body;
  HttpResult k06 =
      Post("/api/v1/import",
           R"({"cis": [{"type": "server", "name": "k-06", "attributes": {"serial": "K6"}}]})");
  ASSERT_EQ(k06.status, 200) << k06.body;
  EXPECT_EQ(k06.json().at("created"), 1) << k06.body;

  HttpResult quiet = Post("/api/v1/import", next);
  ASSERT_EQ(quiet.status, 200) << quiet.body;
  EXPECT_EQ(quiet.json().at("unchanged"), 6) << quiet.body;
  EXPECT_TRUE(kept(quiet));

  // Without the cache, the same import reads the type and answers the same.
  server::ServeConfig config = Config();
  config.import_cache = false;
  Restart(config);
  HttpResult uncached = Post("/api/v1/import", next);
  ASSERT_EQ(uncached.status, 200) << uncached.body;
  EXPECT_EQ(uncached.json().at("unchanged"), 6) << uncached.body;
  EXPECT_FALSE(kept(uncached));
}

// The import that creates a type's CIs keeps what it wrote once it commits, so the nightly
// sync right after it matches against those instead of reading them all again. Past 10,000
// changes since the entry was kept, an import reads the type whole (and does not report
// kept_identities): the creating import's own rows in the change log must be skipped, and
// only those. Another writer's change in between is still read.
TEST_F(ImportApi, TheImportThatCreatesCisKeepsThemForTheNextSync) {
  constexpr int kServers = 10050;
  auto doc = [&](int changed) {
    std::string body = R"({"cis": [)";
    for (int i = 0; i < kServers; ++i) {
      const std::string n = std::to_string(i);
      body += std::string(i == 0 ? "" : ",") + R"({"type": "server", "name": "sync-)" + n +
              R"(", "owner": "ops", "attributes": {"serial": "SY)" + n + R"(", "memory_mb": )" +
              std::to_string(i == changed ? 2048 : 1024) + "}}";
    }
    return body + "]}";
  };
  auto kept = [](const HttpResult& r) {
    return r.json().at("timings").as_object().contains("kept_identities");
  };
  HttpResult created = Post("/api/v1/import", doc(-1));
  ASSERT_EQ(created.status, 200) << created.body.substr(0, 2000);
  ASSERT_EQ(created.json().at("created"), kServers);
  EXPECT_TRUE(created.json().at("timings").as_object().contains("keep_written"));
  // Another writer, after the import committed, and one inside a rolled-back transaction.
  Sql("UPDATE configuration_items SET owner = 'rogue' WHERE name = 'sync-17'");
  Sql("BEGIN");
  Sql("UPDATE configuration_items SET owner = 'ghost' WHERE name = 'sync-18'");
  Sql("ROLLBACK");

  HttpResult synced = Post("/api/v1/import", doc(42));
  ASSERT_EQ(synced.status, 200) << synced.body.substr(0, 2000);
  EXPECT_TRUE(kept(synced)) << synced.json().at("timings");
  EXPECT_EQ(synced.json().at("updated"), 2);  // sync-17 (owner back) and sync-42 (memory)
  EXPECT_EQ(synced.json().at("unchanged"), kServers - 2);
  EXPECT_EQ(synced.json().at("created"), 0);
  EXPECT_EQ(synced.json().at("ci_ids"), created.json().at("ci_ids"));
  EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(created.json().at("ci_ids").at(17).as_int64()))
                .json()
                .at("owner"),
            "ops");

  // What the sync changed is kept as written too: the same document again changes nothing.
  HttpResult again = Post("/api/v1/import", doc(42));
  ASSERT_EQ(again.status, 200) << again.body.substr(0, 2000);
  EXPECT_TRUE(kept(again));
  EXPECT_EQ(again.json().at("unchanged"), kServers);
}

// A restarted instance builds, in the background, the identities that imports kept in the
// last two days (import_kept_types), so that the first nightly sync after the restart matches
// against them instead of reading the type whole: a change before the restart is in what the
// warm-up read, one after it comes from the change log, and the answer is a whole read's.
TEST_F(ImportApi, ARestartedInstanceBuildsWhatImportsKeptBeforeTheNextSync) {
  constexpr int kServers = 40;
  std::string doc = R"({"cis": [)";
  for (int i = 0; i < kServers; ++i) {
    const std::string n = std::to_string(i);
    doc += std::string(i == 0 ? "" : ",") + R"({"type": "server", "name": "r-)" + n +
           R"(", "owner": "ops", "attributes": {"serial": "R)" + n + R"("}})";
  }
  doc += "]}";
  auto kept = [](const HttpResult& r) {
    return r.json().at("timings").as_object().contains("kept_identities");
  };
  auto warm_up_done = [&] {
    for (int i = 0; i < 1000; ++i) {
      const std::string metrics = Get("/metrics").body;
      if (metrics.find("\ncmdb_import_warmup_running 0\n") != std::string::npos) return true;
      EXPECT_NE(metrics.find("\ncmdb_import_warmup_running 1\n"), std::string::npos);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  HttpResult created = Post("/api/v1/import", doc);
  ASSERT_EQ(created.status, 200) << created.body;
  ASSERT_EQ(created.json().at("created"), kServers);
  EXPECT_EQ(Sql("SELECT type FROM import_kept_types").Text(0, 0), "server");
  Sql("UPDATE configuration_items SET owner = 'before' WHERE name = 'r-3'");

  Restart(Config());
  ASSERT_TRUE(warm_up_done());
  Sql("UPDATE configuration_items SET owner = 'after' WHERE name = 'r-5'");
  HttpResult synced = Post("/api/v1/import", doc);
  ASSERT_EQ(synced.status, 200) << synced.body;
  EXPECT_TRUE(kept(synced)) << synced.json().at("timings");
  EXPECT_EQ(synced.json().at("updated"), 2) << synced.body;  // r-3 and r-5: owner back
  EXPECT_EQ(synced.json().at("unchanged"), kServers - 2);
  EXPECT_EQ(synced.json().at("ci_ids"), created.json().at("ci_ids"));
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items WHERE owner = 'ops'").Int(0, 0),
            kServers);

  // --no-import-warmup: the first sync after a restart reads the type whole (a part at a time
  // into what it keeps), and puts back what changed.
  server::ServeConfig cold = Config();
  cold.import_warmup = false;
  Restart(cold);
  ASSERT_TRUE(warm_up_done());
  Sql("UPDATE configuration_items SET owner = 'cold' WHERE name = 'r-7'");
  HttpResult read_whole = Post("/api/v1/import", doc);
  ASSERT_EQ(read_whole.status, 200) << read_whole.body;
  EXPECT_FALSE(kept(read_whole)) << read_whole.json().at("timings");
  EXPECT_EQ(read_whole.json().at("updated"), 1) << read_whole.body;
  EXPECT_EQ(read_whole.json().at("unchanged"), kServers - 1);
  EXPECT_EQ(read_whole.json().at("ci_ids"), created.json().at("ci_ids"));
  HttpResult next = Post("/api/v1/import", doc);
  EXPECT_TRUE(kept(next));
  EXPECT_EQ(next.json().at("unchanged"), kServers);
  // A type deleted since it was kept takes its record with it; the warm-up builds the rest.
  ASSERT_EQ(Post("/api/v1/import", R"({"cis": [{"type": "vm", "name": "gone"}]})").status, 200);
  EXPECT_EQ(Sql("SELECT count(*) FROM import_kept_types").Int(0, 0), 2);
  Sql("DELETE FROM configuration_items WHERE type = 'vm'");
  Sql("DELETE FROM ci_types WHERE name = 'vm'");
  EXPECT_EQ(Sql("SELECT count(*) FROM import_kept_types").Int(0, 0), 1);
  Restart(Config());
  ASSERT_TRUE(warm_up_done());
  EXPECT_TRUE(kept(Post("/api/v1/import", doc)));
}

// An import's changes are kept as the CIs became, not as its rows were: a row that leaves out
// the attributes keeps the CI's serial, and the next import finds the CI by it.
TEST_F(ImportApi, WhatAnImportChangedIsKeptAsTheCiBecame) {
  HttpResult first =
      Post("/api/v1/import",
           R"({"cis": [{"type": "server", "name": "w-01", "attributes": {"serial": "W1"}}]})");
  ASSERT_EQ(first.status, 200) << first.body;
  const boost::json::value id = first.json().at("ci_ids").at(0);
  HttpResult owner =
      Post("/api/v1/import", R"({"cis": [{"type": "server", "name": "w-01", "owner": "team-w"}]})");
  ASSERT_EQ(owner.status, 200) << owner.body;
  EXPECT_EQ(owner.json().at("updated"), 1) << owner.body;
  HttpResult renamed = Post(
      "/api/v1/import",
      R"({"cis": [{"type": "server", "name": "w-01-new", "owner": "team-w", "attributes": {"serial": "W1"}}]})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_TRUE(renamed.json().at("timings").as_object().contains("kept_identities"));
  EXPECT_EQ(renamed.json().at("updated"), 1) << renamed.body;
  EXPECT_EQ(renamed.json().at("created"), 0) << renamed.body;
  EXPECT_EQ(renamed.json().at("ci_ids").at(0), id);
}

// An import that writes nothing (the nightly sync of an estate that did not change) asks for
// no audit run; one that writes, synchronous or background, does.
TEST_F(ImportApi, OnlyAnImportThatWritesAsksForAnAudit) {
  auto requested = [&] {
    return Sql("SELECT count(*) FROM audit_schedule WHERE requested_at IS NOT NULL").Int(0, 0);
  };
  ASSERT_EQ(Post("/api/v1/import", kDoc).status, 200);
  EXPECT_EQ(requested(), 1);
  Sql("UPDATE audit_schedule SET requested_at = NULL, requested_by = NULL");
  HttpResult same = Post("/api/v1/import", kDoc);
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.json().at("unchanged"), 3) << same.body;
  EXPECT_EQ(requested(), 0);
  auto post_async = [&](const std::string& body) {
    return HttpRequest(port(), "POST", "/api/v1/import", body,
                       Auth({{"Content-Type", "application/json"}, {"Prefer", "respond-async"}}));
  };
  HttpResult job = post_async(kDoc);
  ASSERT_EQ(job.status, 202) << job.body;
  EXPECT_EQ(WaitForJob(job.headers["location"]).at("result").at("unchanged"), 3);
  EXPECT_EQ(requested(), 0);

  const std::string changed = std::regex_replace(std::string(kDoc), std::regex("1024"), "2048");
  ASSERT_EQ(post_async(changed).status, 202);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (requested() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(requested(), 1);
}

TEST_F(ImportApi, AmbiguousMatchesAreNeverMerged) {
  CreateCi(R"({"type": "server", "name": "a", "attributes": {"hostname": "twin"}})");
  CreateCi(R"({"type": "server", "name": "b", "attributes": {"hostname": "twin"}})");
  HttpResult r = Post(
      "/api/v1/import?mode=partial",
      R"({"cis": [{"type": "server", "name": "c", "attributes": {"hostname": "twin", "os": "x"}}]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("rejected"), 1);
  EXPECT_NE(r.json().at("errors").at(0).at("message").as_string().find("matches 2 CIs"),
            std::string::npos);
}

TEST_F(ImportApi, ImportsCsvOfOneType) {
  std::string csv =
      "name,status,owner,tags,hostname,memory_mb,open_ports,ip\r\n"
      "web-01,active,web,prod;web,web-01,4096,80;443,10.0.0.1\r\n"
      "\"web, the second\",planned,,,web-02,,,\r\n";
  HttpResult r = Post("/api/v1/import?type=server", csv, "text/csv");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("created"), 2);
  auto list = Get("/api/v1/cis?q=web").json().at("items").as_array();
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list[0].at("attributes").at("open_ports"), boost::json::parse("[80, 443]"));
  EXPECT_EQ(list[0].at("tags"), boost::json::parse(R"(["prod", "web"])"));
  EXPECT_EQ(list[1].at("name"), "web, the second");
  EXPECT_EQ(list[1].at("status"), "planned");

  // Again, by identity: the rows given merge into the CIs (columns not given are kept).
  HttpResult again = Post(
      "/api/v1/import?type=server",
      "name,hostname,memory_mb\nweb-01,web-01,8192\n\"web, the second\",web-02,\n", "text/csv");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("updated"), 1);
  EXPECT_EQ(again.json().at("unchanged"), 1);
  const boost::json::value web01 = Get("/api/v1/cis?q=web-01").json().at("items").at(0);
  EXPECT_EQ(web01.at("attributes").at("memory_mb"), 8192);
  EXPECT_EQ(web01.at("attributes").at("ip"), "10.0.0.1");
  EXPECT_EQ(web01.at("owner"), "web");
  EXPECT_EQ(web01.at("version"), 2);

  HttpResult bad = Post("/api/v1/import?type=server", "name,colour\nx,red\n", "text/csv");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().at("errors").at(0).at("field"), "header.colour");
  HttpResult bad_row =
      Post("/api/v1/import?type=server", "name,memory_mb\nx,lots\ny,1,2\n", "text/csv");
  EXPECT_EQ(bad_row.status, 422);
  EXPECT_EQ(bad_row.json().at("errors").as_array().size(), 2U);
  EXPECT_EQ(Post("/api/v1/import", csv, "text/csv").status, 400);  // no ?type=
  EXPECT_EQ(Post("/api/v1/import?type=toaster", csv, "text/csv").status, 422);
  EXPECT_EQ(Post("/api/v1/import?type=server", "name\n\"open", "text/csv").status, 400);
}

TEST_F(ImportApi, AsyncImportAnswers202AndTheJobHoldsTheResult) {
  HttpResult queued = HttpRequest(
      port(), "POST", "/api/v1/import", kDoc,
      Auth({{"Content-Type", "application/json"}, {"Prefer", "wait=5, Respond-Async"}}));
  ASSERT_EQ(queued.status, 202) << queued.body;
  EXPECT_EQ(queued.headers["preference-applied"], "respond-async");
  const std::string location = queued.headers["location"];
  const std::int64_t id = queued.json().at("id").as_int64();
  EXPECT_EQ(location, "/api/v1/import-jobs/" + std::to_string(id));
  EXPECT_EQ(queued.json().at("format"), "json");
  EXPECT_EQ(queued.json().at("mode"), "atomic");
  EXPECT_EQ(queued.json().at("payload_bytes"), std::strlen(kDoc));
  EXPECT_EQ(queued.json().at("result"), nullptr);

  boost::json::value job = WaitForJob(location);
  ASSERT_EQ(job.at("state"), "succeeded") << job;
  EXPECT_EQ(job.at("attempts"), 1);
  EXPECT_EQ(job.at("error"), nullptr);
  EXPECT_EQ(job.at("progress").at("phases_done"), 8);
  EXPECT_EQ(job.at("progress").at("phases_total"), 8);
  EXPECT_EQ(job.at("progress").at("rows"), 5);  // 3 CIs + 2 relations
  const auto& result = job.at("result");
  EXPECT_EQ(result.at("created"), 3);
  EXPECT_EQ(result.at("relations").at("created"), 2);
  const std::int64_t db01 = result.at("ci_ids").at(0).as_int64();
  HttpResult ci = Get("/api/v1/cis/" + std::to_string(db01));
  ASSERT_EQ(ci.status, 200);
  EXPECT_EQ(ci.json().at("name"), "db-01");
  auto history = Get("/api/v1/cis/" + std::to_string(db01) + "/history").json().at("items");
  EXPECT_EQ(history.at(0).at("source"), "import");
  // The graph the impact analysis reads has the imported relations at once.
  HttpResult impact = Get("/api/v1/cis/" + std::to_string(db01) + "/impact");
  ASSERT_EQ(impact.status, 200) << impact.body;
  EXPECT_EQ(impact.json().at("nodes").as_array().size(), 2U) << impact.body;

  // The same document again, with ?async=true: matched by identity, nothing new.
  HttpResult again = Post("/api/v1/import?async=true&mode=partial", kDoc);
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(again.json().at("mode"), "partial");
  boost::json::value second = WaitForJob(again.headers["location"]);
  EXPECT_EQ(second.at("result").at("unchanged"), 3) << second;

  auto succeeded = Get("/api/v1/import-jobs?state=succeeded").json().at("items").as_array();
  ASSERT_EQ(succeeded.size(), 2U);
  EXPECT_EQ(succeeded[0].at("id"), id);
  EXPECT_EQ(Get("/api/v1/import-jobs?state=failed").json().at("items").as_array().size(), 0U);
  auto page = Get("/api/v1/import-jobs?limit=1").json();
  EXPECT_EQ(page.at("items").as_array().size(), 1U);
  auto rest =
      Get("/api/v1/import-jobs?cursor=" + std::string(page.at("next_cursor").as_string())).json();
  ASSERT_EQ(rest.at("items").as_array().size(), 1U);
  EXPECT_NE(rest.at("items").at(0).at("id"), id);
}

TEST_F(ImportApi, AFailedAsyncImportHoldsTheProblemAndWritesNothing) {
  HttpResult queued = Post("/api/v1/import?async=1", R"({"cis": [
      {"type": "server", "name": "ok-1"},
      {"type": "server", "name": "bad-1", "attributes": {"memory_mb": "x"}}]})");
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value job = WaitForJob(queued.headers["location"]);
  ASSERT_EQ(job.at("state"), "failed") << job;
  EXPECT_EQ(job.at("result"), nullptr);
  const auto& error = job.at("error");
  EXPECT_EQ(error.at("status"), 422);
  EXPECT_EQ(error.at("type"), "/problems/validation-failed");
  EXPECT_EQ(error.at("instance").as_string(), queued.headers["location"]);
  EXPECT_EQ(error.at("errors").at(0).at("field"), "cis[1].attributes.memory_mb") << error;
  EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 0U);

  // A CSV of an unknown type fails when it runs, naming the type.
  HttpResult csv = Post("/api/v1/import?type=toaster&async=true", "name\nx\n", "text/csv");
  ASSERT_EQ(csv.status, 202) << csv.body;
  EXPECT_EQ(csv.json().at("type"), "toaster");
  boost::json::value failed = WaitForJob(csv.headers["location"]);
  ASSERT_EQ(failed.at("state"), "failed") << failed;
  EXPECT_EQ(failed.at("error").at("errors").at(0).at("field"), "type");
  // The payload is dropped once a job has finished.
  EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);
}

TEST_F(ImportApi, AsyncImportsRejectBadRequestsBeforeQueueingAnything) {
  // Malformed JSON, a document of the wrong shape, a bad flag: answered now, nothing queued.
  EXPECT_EQ(Post("/api/v1/import?async=true", R"({"cis": [)").status, 400);
  HttpResult shape = Post("/api/v1/import?async=true", R"({"cis": {}, "extra": 1})");
  EXPECT_EQ(shape.status, 422) << shape.body;
  EXPECT_EQ(Post("/api/v1/import?async=maybe", kDoc).status, 400);
  EXPECT_EQ(Post("/api/v1/import?async=true", "name\nx\n", "text/csv").status, 400);  // no type
  EXPECT_EQ(Post("/api/v1/import?async=true", "<cis/>", "application/xml").status, 415);
  EXPECT_EQ(Get("/api/v1/import-jobs").json().at("items").as_array().size(), 0U);
  EXPECT_EQ(Get("/api/v1/import-jobs/999").status, 404);
  EXPECT_EQ(Get("/api/v1/import-jobs/abc").status, 400);
  EXPECT_EQ(Get("/api/v1/import-jobs/99999999999999999999").status, 400);
  EXPECT_EQ(Get("/api/v1/import-jobs?state=lost").status, 400);
  EXPECT_EQ(Get("/api/v1/import-jobs?colour=red").status, 400);
}

TEST_F(ImportApi, AJobReportsThePhaseItIsIn) {
  // Another import of servers holds the per-type lock: the job waits in that phase.
  Sql("SELECT pg_advisory_lock(hashtext('cmdb.import.server'))");
  struct Unlock {
    std::function<void()> release;
    ~Unlock() { release(); }
  } unlock{[this] { Sql("SELECT pg_advisory_unlock_all()"); }};
  HttpResult queued = Post("/api/v1/import?async=true", kDoc);
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value waiting = WaitForJob(queued.headers["location"], [](const auto& job) {
    return job.at("progress").at("phase") == "lock_and_load_identities" ||
           job.at("state") == "succeeded" || job.at("state") == "failed";
  });
  ASSERT_EQ(waiting.at("state"), "running") << waiting;
  EXPECT_EQ(waiting.at("progress").at("phases_done"), 2);
  EXPECT_EQ(waiting.at("progress").at("rows"), 5);
  EXPECT_FALSE(waiting.at("claimed_by").as_string().empty());
  EXPECT_NE(waiting.at("started_at"), nullptr);
  Sql("SELECT pg_advisory_unlock_all()");
  boost::json::value done = WaitForJob(queued.headers["location"]);
  EXPECT_EQ(done.at("state"), "succeeded") << done;
  EXPECT_EQ(done.at("progress").at("phase"), nullptr);
}

// A job abandoned by stopped instances for the third time fails for good, and its payload
// goes with it; one queued again starts its progress over.
TEST_F(ImportApi, AJobAbandonedForGoodKeepsNoPayload) {
  server::ServeConfig config = Config();
  config.import_worker = false;
  Restart(config);
  HttpResult first = Post("/api/v1/import?async=true", kDoc);
  HttpResult second = Post("/api/v1/import?async=true", kDoc);
  ASSERT_EQ(first.status, 202) << first.body;
  ASSERT_EQ(second.status, 202) << second.body;
  EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 2);
  Sql("UPDATE import_jobs SET state = 'running', attempts = 3, claimed_by = 'dead:1', "
      "started_at = now() WHERE id = $1",
      {P(first.json().at("id").as_int64())});
  Sql("UPDATE import_jobs SET state = 'running', attempts = 1, claimed_by = 'dead:2', "
      "started_at = now(), rows_done = 77, bytes_read = 99 WHERE id = $1",
      {P(second.json().at("id").as_int64())});
  // Queued again (as an instance's recovery does): its progress starts over.
  Sql("UPDATE import_jobs SET state = 'queued' WHERE id = $1",
      {P(second.json().at("id").as_int64())});
  EXPECT_EQ(Sql("SELECT rows_done + bytes_read FROM import_jobs WHERE id = $1",
                {P(second.json().at("id").as_int64())})
                .Int(0, 0),
            0);
  config.import_worker = true;
  Restart(config);
  const boost::json::value failed = WaitForJob(first.headers["location"]);
  EXPECT_EQ(failed.at("state"), "failed") << failed;
  EXPECT_NE(failed.at("error").at("detail").as_string().find("abandoned"), std::string::npos);
  const boost::json::value done = WaitForJob(second.headers["location"]);
  EXPECT_EQ(done.at("state"), "succeeded") << done;
  EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);
}

TEST_F(ImportApi, AJobLeftRunningByAStoppedInstanceIsRunAgain) {
  server::ServeConfig config = Config();
  config.import_worker = false;
  Restart(config);
  HttpResult queued = Post("/api/v1/import?async=true", kDoc);
  ASSERT_EQ(queued.status, 202) << queued.body;
  // Nobody executes it here; then it looks like what a crashed instance leaves behind.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Get(queued.headers["location"]).json().at("state"), "queued");
  Sql("UPDATE import_jobs SET state = 'running', attempts = 1, claimed_by = 'dead:1', "
      "started_at = now() WHERE id = $1",
      {P(queued.json().at("id").as_int64())});
  Restart(Config());
  boost::json::value job = WaitForJob(queued.headers["location"]);
  EXPECT_EQ(job.at("state"), "succeeded") << job;
  EXPECT_EQ(job.at("attempts"), 2);
  EXPECT_EQ(job.at("result").at("created"), 3);
}

// An import document of `n` servers named <prefix>-0.., each depending on the next by name,
// with `pad` spaces after each row (so that rows straddle the 1 MiB parts the server reads),
// relations first when `relations_first`. Row `bad` has a memory_mb that is no number; row
// `twin` names the same server as row 3.
std::string ChainDocument(const std::string& prefix, int n, std::size_t pad, bool relations_first,
                          int bad = -1, int twin = -1) {
  const std::string spaces(pad, ' ');
  std::string cis = R"("cis": [)";
  for (int i = 0; i < n; ++i) {
    if (i > 0) cis += ",";
    const std::string name = prefix + "-" + std::to_string(i == twin ? 3 : i);
    cis += R"({"type": "server", "name": ")" + name + R"(", "attributes": {"memory_mb": )" +
           (i == bad ? std::string(R"("lots")") : std::to_string(1024 + i)) + "}}" + spaces;
  }
  cis += "]";
  std::string relations = R"("relations": [)";
  for (int i = 0; i + 1 < n; ++i) {
    if (i > 0) relations += ",";
    relations += R"({"type": "depends_on", "from": {"type": "server", "name": ")" + prefix + "-" +
                 std::to_string(i) + R"("}, "to": {"type": "server", "name": ")" + prefix + "-" +
                 std::to_string(i + 1) + R"("}})" + spaces;
  }
  relations += "]";
  return "{" + (relations_first ? relations + ", " + cis : cis + ", " + relations) + "}";
}

class StreamedImport : public ImportApi {
 protected:
  void SetUp() override {
    ImportApi::SetUp();
    server::ServeConfig config = Config();
    config.import_limits.batches.cis = 7;
    config.import_limits.batches.relations = 5;
    Restart(config);
  }

  HttpResult PostAsync(const std::string& target, const std::string& body) {
    return HttpRequest(port(), "POST", target, body,
                       Auth({{"Content-Type", "application/json"}, {"Prefer", "respond-async"}}));
  }

  // Imports a chain of 30 servers in partial mode, row 20 bad and row 25 a twin of row 3,
  // in the background or in the request, and checks what a user relies on: rows in batches
  // across the parts of the body behave as in one import.
  void ImportChain(const std::string& prefix, bool relations_first, bool async = true) {
    const std::string doc = ChainDocument(prefix, 30, 100000, relations_first, 20, 25);
    ASSERT_GT(doc.size(), std::size_t{5} << 20);
    boost::json::value result;
    if (async) {
      HttpResult queued = PostAsync("/api/v1/import?mode=partial", doc);
      ASSERT_EQ(queued.status, 202) << queued.body;
      EXPECT_EQ(queued.json().at("payload_bytes"), doc.size());
      boost::json::value job = WaitForJob(queued.headers["location"]);
      ASSERT_EQ(job.at("state"), "succeeded") << job;
      result = job.at("result");
      const auto& progress = job.at("progress");
      EXPECT_EQ(progress.at("rows"), 59);
      EXPECT_EQ(progress.at("rows_done"), 59);
      EXPECT_EQ(progress.at("bytes_read"), doc.size());
      EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);
    } else {
      HttpResult answered = Post("/api/v1/import?mode=partial", doc);
      ASSERT_EQ(answered.status, 200) << answered.body;
      result = answered.json();
      // Written in batches, each beside the reading of the next.
      EXPECT_TRUE(result.at("timings").as_object().contains("await_write")) << result;
    }
    EXPECT_EQ(result.at("created"), 28) << result;
    EXPECT_EQ(result.at("rejected"), 2);
    const auto& errors = result.at("errors").as_array();
    ASSERT_EQ(errors.size(), 6U) << result;
    EXPECT_EQ(errors[0].at("field"), "cis[20].attributes.memory_mb");
    EXPECT_EQ(errors[1].at("row"), "cis[25]");
    EXPECT_NE(errors[1].at("message").as_string().find("cis[3]"), std::string::npos) << result;
    // The relations to and from the rejected rows name no CI; the others, written in batches
    // of five, find the CIs of every batch of seven before them.
    EXPECT_EQ(errors[2].at("field"), "relations[19].to");
    EXPECT_EQ(errors[3].at("field"), "relations[20].from");
    EXPECT_EQ(errors[4].at("field"), "relations[24].to");
    EXPECT_EQ(errors[5].at("field"), "relations[25].from");
    EXPECT_EQ(result.at("relations").at("created"), 25);
    EXPECT_EQ(result.at("relations").at("rejected"), 4);
    EXPECT_EQ(result.at("errors_omitted"), 0);
    const auto& ids = result.at("ci_ids").as_array();
    ASSERT_EQ(ids.size(), 30U);
    EXPECT_EQ(ids[20], nullptr);
    EXPECT_EQ(ids[25], nullptr);
    for (int i : {0, 6, 7, 13, 14, 29}) {  // the first and last rows of batches
      EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(ids[i].as_int64())).json().at("name"),
                boost::json::value(prefix + "-" + std::to_string(i)));
    }
    // The impact follows the chain from its end to its cut at the twin row: 29, 28, 27, 26.
    HttpResult impact =
        Get("/api/v1/cis/" + std::to_string(ids[29].as_int64()) + "/impact?direction=down");
    ASSERT_EQ(impact.status, 200) << impact.body;
    EXPECT_EQ(impact.json().at("nodes").as_array().size(), 4U) << impact.body;
    // Every relation carries the import's time, not the epoch's.
    EXPECT_EQ(Sql("SELECT count(*) FROM relations WHERE created_at < now() - interval '1 hour'")
                  .Int(0, 0),
              0);
  }
};

TEST_F(StreamedImport, ABackgroundImportIsReadAsAStreamAndWrittenInBatches) {
  ImportChain("s", false);
}

TEST_F(StreamedImport, RelationsBeforeTheirCisAreReadInASecondPass) { ImportChain("t", true); }

// A CSV background import is read as a stream too: records across the parts and batches,
// labelled by their lines, a twin found in an earlier batch.
TEST_F(StreamedImport, ACsvBackgroundImportIsReadAsAStream) {
  constexpr int kBlank = 60000;  // blank CRLF lines after each row: rows straddle the parts
  auto line_of = [](int row) { return 2 + row * (kBlank + 1); };
  std::string csv = "name,memory_mb\r\n";
  for (int i = 0; i < 20; ++i) {
    const std::string name = "c-" + std::to_string(i == 17 ? 3 : i);
    csv += name + "," + (i == 11 ? std::string("lots") : std::to_string(512 + i)) + "\r\n";
    for (int b = 0; b < kBlank; ++b) csv += "\r\n";
  }
  ASSERT_GT(csv.size(), std::size_t{2} << 20);
  HttpResult queued =
      HttpRequest(port(), "POST", "/api/v1/import?type=server&mode=partial", csv,
                  Auth({{"Content-Type", "text/csv"}, {"Prefer", "respond-async"}}));
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value job = WaitForJob(queued.headers["location"]);
  ASSERT_EQ(job.at("state"), "succeeded") << job;
  const auto& result = job.at("result");
  EXPECT_EQ(result.at("created"), 18) << result;
  EXPECT_EQ(result.at("rejected"), 2);
  const auto& errors = result.at("errors").as_array();
  ASSERT_EQ(errors.size(), 2U) << result;
  EXPECT_EQ(errors[0].at("field").as_string(),
            "line " + std::to_string(line_of(11)) + ".attributes.memory_mb");
  EXPECT_EQ(errors[1].at("row").as_string(), "line " + std::to_string(line_of(17)));
  EXPECT_NE(errors[1].at("message").as_string().find("line " + std::to_string(line_of(3))),
            std::string::npos)
      << result;
  EXPECT_EQ(job.at("progress").at("bytes_read"), csv.size());
  EXPECT_EQ(Get("/api/v1/cis?q=c-19").json().at("items").at(0).at("attributes").at("memory_mb"),
            531);
}

// A request's import document is read in batches too, each batch's CIs written while the
// next is read: the same answers as one import, and as the background import above.
TEST_F(StreamedImport, ARequestsImportIsReadInBatchesLikeABackgroundOne) {
  ImportChain("r", false, /*async=*/false);
}

TEST_F(StreamedImport, ARequestWhoseRelationsComeFirstIsReadTwice) {
  ImportChain("q", true, /*async=*/false);
}

// An atomic request with bad rows in several batches: the answer names every one of them
// (the batches already written are rolled back and the document read again whole), and
// nothing is written. Then the same rows, fixed, come in whole and are re-imported unchanged.
TEST_F(StreamedImport, AnAtomicRequestListsTheBadRowsOfEveryBatch) {
  std::string doc = ChainDocument("b", 30, 100000, false, 9, 23);
  HttpResult r = Post("/api/v1/import", doc);
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/problem+json");
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array()) {
    fields.insert(std::string(e.at("field").as_string()));
  }
  EXPECT_TRUE(fields.contains("cis[9].attributes.memory_mb")) << r.body;
  EXPECT_TRUE(fields.contains("cis[23]")) << r.body;  // the twin of cis[3], four batches on
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_history").Int(0, 0), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM relations").Int(0, 0), 0);

  doc = ChainDocument("b", 30, 100000, false);
  r = Post("/api/v1/import", doc);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("created"), 30);
  EXPECT_TRUE(r.json().at("timings").as_object().contains("await_write")) << r.body;
  EXPECT_EQ(r.json().at("relations").at("created"), 29);
  r = Post("/api/v1/import", doc);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("unchanged"), 30) << r.body;
  EXPECT_EQ(r.json().at("relations").at("unchanged"), 29) << r.body;
  // Not JSON: the answer names the problem as it always did, and nothing is written.
  r = Post("/api/v1/import", R"({"cis": [{"type": "server", "name": "x"},)");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 30);
}

// A batch whose write fails in PostgreSQL while the next batch is being read (here a trigger
// refuses one name of a later batch): the request fails as a whole, nothing of the earlier
// batches stays, and the server and its sessions go on serving.
TEST_F(StreamedImport, AWriteThatFailsBesideTheNextBatchWritesNothing) {
  Sql(R"(CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.name = 'w-22' THEN RAISE EXCEPTION 'refused by the test'; END IF;
           RETURN NEW;
         END $$)");
  Sql("CREATE TRIGGER test_refuse BEFORE INSERT ON configuration_items FOR EACH ROW "
      "EXECUTE FUNCTION test_refuse()");
  for (int attempt = 0; attempt < 3; ++attempt) {
    HttpResult r = Post("/api/v1/import?mode=partial", ChainDocument("w", 30, 100000, false));
    EXPECT_EQ(r.status, 500) << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/problem+json");
    EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 0);
    EXPECT_EQ(Sql("SELECT count(*) FROM ci_history").Int(0, 0), 0);
  }
  Sql("DROP TRIGGER test_refuse ON configuration_items");
  HttpResult r = Post("/api/v1/import", ChainDocument("w", 30, 100000, false));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("created"), 30);
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 30);
}

// The nightly sync as background jobs: the upload counts the payload's CI rows, so a job on a
// new instance, whose batches (about ten rows per stored part) each name less than half of the
// 30 servers, still reads them whole and keeps their identities, and the next job matches
// against those (kept_identities) with the same answers.
TEST_F(StreamedImport, BackgroundReimportsMatchAgainstKeptIdentities) {
  const std::string doc = ChainDocument("n", 30, 100000, false);  // ~10 rows per stored part
  auto run = [&] {
    HttpResult queued = PostAsync("/api/v1/import", doc);
    EXPECT_EQ(queued.status, 202) << queued.body;
    boost::json::value job = WaitForJob(queued.headers["location"]);
    EXPECT_EQ(job.at("state"), "succeeded") << job;
    return job.at("result");
  };
  const boost::json::value created = run();
  EXPECT_EQ(created.at("created"), 30) << created;
  EXPECT_EQ(Sql("SELECT ci_rows FROM import_jobs ORDER BY id LIMIT 1").Int(0, 0), 30);
  // A new instance keeps nothing yet (without the warm-up of what imports kept, which
  // ImportApi.ARestartedInstanceBuildsWhatImportsKeptBeforeTheNextSync covers).
  server::ServeConfig config = Config();
  config.import_warmup = false;
  config.import_limits.batches.cis = 7;
  config.import_limits.batches.relations = 5;
  Restart(config);
  const boost::json::value first = run();  // reads the servers whole, keeps their identities
  EXPECT_EQ(first.at("unchanged"), 30) << first;
  EXPECT_FALSE(first.at("timings").as_object().contains("kept_identities")) << first;
  Sql("UPDATE configuration_items SET attributes = '{\"memory_mb\": 1}' WHERE name = 'n-12'");
  const boost::json::value second = run();
  EXPECT_TRUE(second.at("timings").as_object().contains("kept_identities")) << second;
  EXPECT_EQ(second.at("unchanged"), 29) << second;
  EXPECT_EQ(second.at("updated"), 1) << second;
  EXPECT_EQ(second.at("ci_ids"), created.at("ci_ids"));
  EXPECT_EQ(second.at("relations").at("unchanged"), 29) << second;
  EXPECT_EQ(Get("/api/v1/cis?q=n-12").json().at("items").at(0).at("attributes").at("memory_mb"),
            1036);
}

// The same for a CSV file sent as background jobs: its records are counted as it is uploaded
// (the header is not a row, nor is a blank line), so the first job on a new
// instance reads the 30 servers whole and the next one matches against what that kept.
TEST_F(StreamedImport, CsvBackgroundReimportsMatchAgainstKeptIdentities) {
  std::string csv = "name,serial,owner\n";
  for (int i = 0; i < 30; ++i) {
    csv += "v-" + std::to_string(i) + ",V" + std::to_string(i) +
           (i == 4 ? ",\"team, four\"\n\n\n" : ",team\n");
  }
  auto run = [&] {
    HttpResult queued =
        HttpRequest(port(), "POST", "/api/v1/import?type=server", csv,
                    Auth({{"Content-Type", "text/csv"}, {"Prefer", "respond-async"}}));
    EXPECT_EQ(queued.status, 202) << queued.body;
    boost::json::value job = WaitForJob(queued.headers["location"]);
    EXPECT_EQ(job.at("state"), "succeeded") << job;
    return job.at("result");
  };
  EXPECT_EQ(run().at("created"), 30);
  EXPECT_EQ(Sql("SELECT ci_rows FROM import_jobs ORDER BY id LIMIT 1").Int(0, 0), 30);
  server::ServeConfig config = Config();
  config.import_warmup = false;
  config.import_limits.batches.cis = 7;
  Restart(config);
  // The job recorded the type it kept once it had committed (the stopped instance's worker
  // has finished), for the warm-up after a restart, left out here.
  EXPECT_EQ(Sql("SELECT type FROM import_kept_types").Text(0, 0), "server");
  const boost::json::value first = run();
  EXPECT_EQ(first.at("unchanged"), 30) << first;
  EXPECT_FALSE(first.at("timings").as_object().contains("kept_identities")) << first;
  const boost::json::value second = run();
  EXPECT_EQ(second.at("unchanged"), 30) << second;
  EXPECT_TRUE(second.at("timings").as_object().contains("kept_identities")) << second;

  // A file the job will refuse is queued as before, uncounted, and fails as a job.
  HttpResult open = HttpRequest(port(), "POST", "/api/v1/import?type=server", "name\n\"open",
                                Auth({{"Content-Type", "text/csv"}, {"Prefer", "respond-async"}}));
  ASSERT_EQ(open.status, 202) << open.body;
  EXPECT_EQ(WaitForJob(open.headers["location"]).at("state"), "failed");
  EXPECT_EQ(Sql("SELECT count(*) FROM import_jobs WHERE ci_rows IS NULL").Int(0, 0), 1);
  // Nor is a record past 16 MiB (one field without an end), which neither the upload nor
  // the job holds whole: the job fails naming its line, writes nothing (a batch of 7 rows was
  // written before it) and the server stays up.
  std::string rows_then_huge = "name\n";
  for (int i = 0; i < 10; ++i) rows_then_huge += "ok-" + std::to_string(i) + "\n";
  HttpResult huge = HttpRequest(port(), "POST", "/api/v1/import?type=server",
                                rows_then_huge + std::string(std::size_t{17} << 20, 'x'),
                                Auth({{"Content-Type", "text/csv"}, {"Prefer", "respond-async"}}));
  ASSERT_EQ(huge.status, 202) << huge.body;
  EXPECT_EQ(Sql("SELECT count(*) FROM import_jobs WHERE ci_rows IS NULL").Int(0, 0), 2);
  const boost::json::value failed = WaitForJob(huge.headers["location"]);
  EXPECT_EQ(failed.at("state"), "failed") << failed;
  EXPECT_EQ(failed.at("error").at("status"), 400) << failed;
  EXPECT_NE(
      failed.at("error").at("detail").as_string().find("line 12: a record is longer than 16 MiB"),
      std::string::npos)
      << failed;
  EXPECT_EQ(Get("/api/v1/cis?q=ok-").json().at("items").as_array().size(), 0U);
  EXPECT_EQ(Get("/api/v1/cis?q=v-4").json().at("items").as_array().size(), 1U);
}

// A JSON import's first batches are small and double up to the batch size, so that the first
// write starts early; rows across the smaller batches behave as in one import. Each batch is
// written at its own instant, so the CIs' creation times show the batches.
TEST_F(StreamedImport, TheFirstBatchesAreSmallAndGrow) {
  server::ServeConfig config = Config();
  config.import_limits.batches.cis = 7;
  config.import_limits.batches.first_cis = 2;
  Restart(config);
  for (const bool async : {false, true}) {
    const std::string prefix = async ? "g" : "s";
    // Each row longer than a part of the body, so that a batch is taken at its size exactly;
    // row 20 is invalid and row 25 a twin of row 3.
    std::string doc = R"({"cis": [)";
    for (int i = 0; i < 30; ++i) {
      doc += std::string(i > 0 ? "," : "") + R"({"type": "server", "name": ")" + prefix + "-" +
             std::to_string(i == 25 ? 3 : i) + R"(", "attributes": {"memory_mb": )" +
             (i == 20 ? std::string(R"("lots")") : std::to_string(1024 + i)) + "}}" +
             std::string(300000, ' ');
    }
    doc += "]}";
    boost::json::value result;
    if (async) {
      HttpResult queued = PostAsync("/api/v1/import?mode=partial", doc);
      ASSERT_EQ(queued.status, 202) << queued.body;
      boost::json::value job = WaitForJob(queued.headers["location"]);
      ASSERT_EQ(job.at("state"), "succeeded") << job;
      result = job.at("result");
    } else {
      HttpResult answered = Post("/api/v1/import?mode=partial", doc);
      ASSERT_EQ(answered.status, 200) << answered.body;
      result = answered.json();
    }
    EXPECT_EQ(result.at("created"), 28) << result;
    EXPECT_EQ(result.at("rejected"), 2);
    const auto& errors = result.at("errors").as_array();
    ASSERT_EQ(errors.size(), 2U) << result;
    EXPECT_EQ(errors[0].at("field"), "cis[20].attributes.memory_mb");
    EXPECT_NE(errors[1].at("message").as_string().find("cis[3]"), std::string::npos) << result;
    const auto& ids = result.at("ci_ids").as_array();
    ASSERT_EQ(ids.size(), 30U);
    for (int i : {0, 1, 2, 5, 6, 12, 13, 29}) {  // the first and last rows of batches
      EXPECT_EQ(Get("/api/v1/cis/" + std::to_string(ids[i].as_int64())).json().at("name"),
                boost::json::value(prefix + "-" + std::to_string(i)));
    }
    // A request's body is read in parts shorter than a row: batches of 2, 4, then 7 rows
    // (0-1, 2-5, 6-12, 13-19, 20-26 less the two rejected, 27-29). A job's payload is read in
    // chunks of a MiB, three or four rows, and a batch is taken once a chunk completes it.
    const std::string sizes(
        Sql("SELECT string_agg(n::text, ',' ORDER BY t) FROM (SELECT created_at t, count(*) n "
            "FROM configuration_items WHERE name LIKE '" +
            prefix + "-%' GROUP BY created_at) b")
            .Text(0, 0));
    if (async) {
      EXPECT_LT(std::stoi(sizes.substr(0, sizes.find(','))), 7) << sizes;
    } else {
      EXPECT_EQ(sizes, "2,4,7,7,5,3");
    }
  }
}

// A background import of relations alone (its CIs imported before) writes them at the
// database's clock, as every other import does, not at the epoch.
TEST_F(StreamedImport, RelationsImportedAloneCarryTheTimeOfTheirImport) {
  HttpResult r = Post("/api/v1/import", R"({"cis": [{"type": "server", "name": "e-0"},
                                                        {"type": "server", "name": "e-1"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  HttpResult queued = PostAsync("/api/v1/import", R"({"relations": [{"type": "depends_on",
      "from": {"type": "server", "name": "e-0"}, "to": {"type": "server", "name": "e-1"}}]})");
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value job = WaitForJob(queued.headers["location"]);
  ASSERT_EQ(job.at("state"), "succeeded") << job;
  EXPECT_EQ(job.at("result").at("relations").at("created"), 1) << job;
  EXPECT_EQ(Sql("SELECT count(*) FROM relations WHERE created_at > now() - interval '1 hour' "
                "AND created_at <= now()")
                .Int(0, 0),
            1);
}

TEST_F(StreamedImport, AnAtomicOneStopsAtTheFirstBadBatchAndWritesNothing) {
  HttpResult queued = PostAsync("/api/v1/import", ChainDocument("a", 30, 0, false, 10));
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value job = WaitForJob(queued.headers["location"]);
  ASSERT_EQ(job.at("state"), "failed") << job;
  EXPECT_EQ(job.at("error").at("status"), 422);
  EXPECT_EQ(job.at("error").at("errors").at(0).at("field"), "cis[10].attributes.memory_mb");
  // The first batch of seven was written, then rolled back with the rest.
  EXPECT_EQ(Sql("SELECT count(*) FROM configuration_items").Int(0, 0), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM ci_history").Int(0, 0), 0);
}

TEST_F(StreamedImport, ErrorsBeyondTheLimitAreCounted) {
  server::ServeConfig config = Config();
  config.import_limits.batches.cis = 7;
  config.import_limits.max_errors = 3;
  Restart(config);
  std::string doc = R"({"cis": [)";
  for (int i = 0; i < 20; ++i) doc += std::string(i > 0 ? "," : "") + R"({"type": "toaster"})";
  doc += "]}";
  HttpResult queued = PostAsync("/api/v1/import?mode=partial", doc);
  ASSERT_EQ(queued.status, 202) << queued.body;
  boost::json::value job = WaitForJob(queued.headers["location"]);
  ASSERT_EQ(job.at("state"), "succeeded") << job;
  EXPECT_EQ(job.at("result").at("rejected"), 20);
  EXPECT_EQ(job.at("result").at("errors").as_array().size(), 3U);
  EXPECT_GE(job.at("result").at("errors_omitted").as_int64(), 17);
}

TEST_F(StreamedImport, BadUploadsAreAnsweredAtTheirEndAndQueueNothing) {
  const std::string padding(std::size_t{3} << 20, ' ');
  // Not JSON, found after 3 MiB were stored: 400, and the stored parts are rolled back.
  HttpResult broken = PostAsync("/api/v1/import", R"({"cis": [)" + padding + "{]}");
  EXPECT_EQ(broken.status, 400) << broken.body;
  EXPECT_EQ(broken.header("content-type"), "application/problem+json");
  // Not an import document: 422 naming the field.
  HttpResult shape = PostAsync("/api/v1/import", R"({"cis": [], "colour": )" + padding + "1}");
  EXPECT_EQ(shape.status, 422) << shape.body;
  EXPECT_EQ(shape.json().at("errors").at(0).at("field"), "colour");
  // Refused from the headers alone, the body unread.
  HttpResult mode = PostAsync("/api/v1/import?mode=some", R"({"cis": [)" + padding + "]}");
  EXPECT_EQ(mode.status, 400) << mode.body;
  HttpResult empty = PostAsync("/api/v1/import", "");
  EXPECT_EQ(empty.status, 400) << empty.body;
  EXPECT_EQ(Get("/api/v1/import-jobs").json().at("items").as_array().size(), 0U);
  EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);

  // Over the upload limit: 413 once the limit is passed.
  server::ServeConfig config = Config();
  config.upload_limit = 65536;
  Restart(config);
  HttpResult big = PostAsync("/api/v1/import", R"({"cis": [)" + padding + "]}");
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_EQ(Get("/api/v1/import-jobs").json().at("items").as_array().size(), 0U);
  // A synchronous import stays under the body limit.
  EXPECT_EQ(Post("/api/v1/import", R"({"cis": [)" + std::string(std::size_t{17} << 20, ' ') + "]}")
                .status,
            413);
}

TEST_F(StreamedImport, AClientThatSaysExpectContinueIsToldToGoOn) {
  const std::string body = ChainDocument("e", 3, 0, false);
  const std::string raw =
      "POST /api/v1/import HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nPrefer: respond-async\r\nExpect: 100-continue\r\n"
      "Authorization: Bearer " +
      token_ +
      "\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string answer = RawExchange(port(), raw);
  EXPECT_EQ(answer.rfind("HTTP/1.1 100 Continue\r\n", 0), 0U) << answer;
  EXPECT_NE(answer.find("HTTP/1.1 202 Accepted\r\n"), std::string::npos) << answer;
}

TEST_F(StreamedImport, AClientGoneMidUploadLeavesNothingAndTheSessionFree) {
  for (int i = 0; i < 6; ++i) {  // more than the pool's sessions: each is given back
    const int fd = ConnectLoopback(port());
    ASSERT_GE(fd, 0);
    const std::string head =
        "POST /api/v1/import HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nPrefer: "
        "respond-async\r\nAuthorization: Bearer " +
        token_ + "\r\nContent-Length: 4000000\r\n\r\n{\"cis\": [" +
        std::string(std::size_t{1500} << 10, ' ');
    ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    close(fd);
  }
  // Every upload's session came back to the pool: a new upload gets one and is queued.
  HttpResult queued = PostAsync("/api/v1/import", ChainDocument("g", 3, 0, false));
  ASSERT_EQ(queued.status, 202) << queued.body;
  EXPECT_EQ(WaitForJob(queued.headers["location"]).at("state"), "succeeded");
  auto jobs = Get("/api/v1/import-jobs").json().at("items").as_array();
  EXPECT_EQ(jobs.size(), 1U);
  EXPECT_EQ(Sql("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);
}

// `cmdb serve` on the test's database in a child process.
CmdbProcess StartOn(const std::string& dsn) {
  return StartCmdb(CMDB_BINARY, {"--listen", "127.0.0.1:0", "--database", dsn, "--no-request-log"},
                   false,
                   {std::string("CMDB_BOOTSTRAP_TOKEN=") + kTestAdminToken,
                    std::string("CMDB_TOKEN_PEPPER=") + kTestPepper});
}

// The warm-up itself, on a real database: taking the type's rows in parts smaller than the
// type, it builds the entry an import that reads the type whole leaves, and a stop leaves
// nothing half built.
class KeptWarmup : public PgTest {};

TEST_F(KeptWarmup, BuildsInPartsWhatAWholeReadKeeps) {
  std::string doc = R"({"cis": [)";
  for (int i = 0; i < 30; ++i) {
    const std::string n = std::to_string(i);
    doc += std::string(i == 0 ? "" : ",") + R"({"type": "server", "name": "p-)" + n +
           R"(", "tags": ["t)" + n + R"("], "attributes": {"serial": "P)" + n +
           R"(", "mac_addresses": ["02:00:00:00:00:)" + (i < 10 ? "0" : "") + n + R"("]}})";
  }
  doc += "]}";
  store::DbSession db = store::DbSession::Connect(dsn_);
  import::ImportCache imported;
  import::ImportOptions options;
  options.cache = &imported;
  const std::optional<import::ImportResult> result =
      import::ImportJsonText(db, doc, options, import::BatchSizes{});
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->cis.created, 30);
  const std::shared_ptr<import::ImportCache::Type> whole = imported.Of("server");
  ASSERT_EQ(whole->cis.size(), 30U);

  import::ImportCache stopped;
  import::WarmupOptions stop_now;
  stop_now.part = 7;
  stop_now.stop = [] { return true; };
  EXPECT_TRUE(import::WarmKeptTypes(db, stopped, stop_now).empty());
  {
    // Stopped in the middle of the read, which leaves its connection to be closed.
    store::DbSession own = store::DbSession::Connect(dsn_);
    int polls = 0;
    stop_now.stop = [&polls] { return ++polls > 3; };  // after the type's first two parts
    EXPECT_TRUE(import::WarmKeptTypes(own, stopped, stop_now).empty());
    EXPECT_EQ(polls, 4);
  }
  EXPECT_TRUE(stopped.Of("server")->snapshot.empty());
  EXPECT_TRUE(stopped.Of("server")->cis.empty());

  import::ImportCache warmed;
  import::WarmupOptions in_parts;
  in_parts.part = 7;
  const std::vector<import::WarmedType> built = import::WarmKeptTypes(db, warmed, in_parts);
  ASSERT_EQ(built.size(), 1U);
  EXPECT_EQ(built[0].type, "server");
  EXPECT_EQ(built[0].cis, 30U);
  const std::shared_ptr<import::ImportCache::Type> parts = warmed.Of("server");
  EXPECT_FALSE(parts->snapshot.empty());
  ASSERT_EQ(parts->cis.size(), whole->cis.size());
  const model::CiType type = store::CiTypeRepository(db).Find("server").value_or(model::CiType{});
  for (const auto& [id, known] : whole->cis) {
    const auto it = parts->cis.find(id);
    ASSERT_NE(it, parts->cis.end()) << id;
    EXPECT_EQ(it->second.digest, known.digest) << known.name;
    EXPECT_EQ(it->second.keys, known.keys) << known.name;
    int used_set = 0;
    const import::IdentityIndex::Ids* found =
        parts->index.Match(type, known.name, known.keys, used_set);
    ASSERT_NE(found, nullptr) << known.name;
    EXPECT_EQ(std::vector<model::CiId>(found->begin(), found->end()), std::vector<model::CiId>{id});
  }
  // Built already: a second warm-up leaves it be.
  EXPECT_TRUE(import::WarmKeptTypes(db, warmed, in_parts).empty());
}

// Relation ends named by name or identity, of types an import writes no CI of, are resolved
// against what the instance keeps of those types instead of the database, brought up to date
// from the change log first; an entry another import holds is not waited for.
class KeptEnds : public PgTest {
 protected:
  static bool HasPhase(const import::ImportResult& result, std::string_view name) {
    return std::any_of(result.phases.begin(), result.phases.end(),
                       [&](const import::ImportPhase& p) { return p.name == name; });
  }
  // Every relation as "from-name>to-name", sorted.
  static SqlResult RelationsByEndNames(store::DbSession& db) {
    return Query(db,
                 "SELECT f.name || '>' || t.name FROM relations r "
                 "JOIN configuration_items f ON f.id = r.from_ci "
                 "JOIN configuration_items t ON t.id = r.to_ci ORDER BY 1");
  }
  // 20 servers k-0.. (serial K0..) and 2 applications app-0, app-1 (app_code A0, A1).
  static std::string ServersAndApps() {
    std::string doc = R"({"cis": [)";
    for (int i = 0; i < 20; ++i) {
      const std::string n = std::to_string(i);
      doc += R"({"type": "server", "name": "k-)" + n + R"(", "attributes": {"serial": "K)" + n +
             R"("}},)";
    }
    return doc + R"({"type": "application", "name": "app-0", "attributes": {"app_code": "A0"}},
            {"type": "application", "name": "app-1", "attributes": {"app_code": "A1"}}]})";
  }
};

TEST_F(KeptEnds, RelationEndsMatchTheKeptIdentitiesOfEveryWriter) {
  const std::string doc = ServersAndApps();
  store::DbSession db = store::DbSession::Connect(dsn_);
  import::ImportCache kept;
  import::ImportOptions options;
  options.cache = &kept;
  options.atomic = false;
  ASSERT_EQ(import::ImportJsonText(db, doc, options, import::BatchSizes{})->cis.created, 22);
  ASSERT_EQ(kept.Find("server")->cis.size(), 20U);

  // Other writers after the import: a rename, a CI created and one deleted by plain SQL.
  Query(db, "UPDATE configuration_items SET name = 'k-renamed' WHERE name = 'k-1'");
  Query(db,
        "INSERT INTO configuration_items (type, name, attributes) "
        "VALUES ('server', 'k-new', '{\"serial\": \"KNEW\"}')");
  Query(db, "DELETE FROM configuration_items WHERE name = 'k-2'");

  const std::optional<import::ImportResult> linked =
      import::ImportJsonText(db, R"({"relations": [
    {"type": "runs_on", "from": {"type": "application", "name": "app-0"}, "to": {"type": "server", "name": "k-renamed"}},
    {"type": "runs_on", "from": {"type": "application", "identity": {"app_code": "A1"}}, "to": {"type": "server", "identity": {"serial": "K3"}}},
    {"type": "runs_on", "from": {"type": "application", "name": "app-1"}, "to": {"type": "server", "identity": {"serial": "KNEW"}}},
    {"type": "runs_on", "from": {"type": "application", "name": "app-0"}, "to": {"type": "server", "name": "k-1"}},
    {"type": "runs_on", "from": {"type": "application", "name": "app-0"}, "to": {"type": "server", "name": "k-2"}}]})",
                             options, import::BatchSizes{});
  ASSERT_TRUE(linked.has_value());
  EXPECT_TRUE(HasPhase(*linked, "relations.kept_identities"));
  EXPECT_EQ(linked->relations.created, 3);
  EXPECT_EQ(linked->relations.rejected, 2);
  ASSERT_EQ(linked->errors.size(), 2U);
  EXPECT_EQ(linked->errors[0].row, "relations[3]");
  EXPECT_EQ(linked->errors[1].row, "relations[4]");
  for (const import::ImportRowError& e : linked->errors) {
    EXPECT_EQ(e.field, "to");
    EXPECT_EQ(e.message, "matches no CI");
  }
  SqlResult written = RelationsByEndNames(db);
  ASSERT_EQ(written.rows(), 3);
  EXPECT_EQ(written.Text(0, 0), "app-0>k-renamed");
  EXPECT_EQ(written.Text(1, 0), "app-1>k-3");
  EXPECT_EQ(written.Text(2, 0), "app-1>k-new");

  // The servers' entry held by another import: this one resolves its ends from the database
  // rather than wait (that import may be waiting for this one's locks).
  {
    const std::lock_guard busy(kept.Find("server")->in_use);
    const std::optional<import::ImportResult> busy_linked =
        import::ImportJsonText(db, R"({"relations": [
      {"type": "depends_on", "from": {"type": "server", "name": "k-5"}, "to": {"type": "server", "identity": {"serial": "K6"}}},
      {"type": "depends_on", "from": {"type": "server", "name": "k-new"}, "to": {"type": "server", "name": "k-7"}}]})",
                               options, import::BatchSizes{});
    ASSERT_TRUE(busy_linked.has_value());
    EXPECT_FALSE(HasPhase(*busy_linked, "relations.kept_identities"));
    EXPECT_EQ(busy_linked->relations.created, 2);
  }
  // Free again, and caught up with what the log holds since: the CI created by SQL is found
  // by name as well.
  const std::optional<import::ImportResult> again =
      import::ImportJsonText(db, R"({"relations": [
    {"type": "depends_on", "from": {"type": "server", "name": "k-new"}, "to": {"type": "server", "name": "k-8"}}]})",
                             options, import::BatchSizes{});
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(HasPhase(*again, "relations.kept_identities"));
  EXPECT_EQ(again->relations.created, 1);
  EXPECT_EQ(Query(db, "SELECT count(*) FROM relations WHERE type = 'depends_on'").Int(0, 0), 3);

  // A CI deleted where the change log does not see it (as if between the look-up and the
  // write): its end matches what is kept, and the row is reported, not the import failed.
  Query(db, "SET session_replication_role = replica");
  Query(db, "DELETE FROM configuration_items WHERE name = 'k-9'");
  Query(db, "SET session_replication_role = origin");
  const std::optional<import::ImportResult> gone =
      import::ImportJsonText(db, R"({"relations": [
    {"type": "depends_on", "from": {"type": "server", "name": "k-10"}, "to": {"type": "server", "name": "k-9"}},
    {"type": "depends_on", "from": {"type": "server", "name": "k-10"}, "to": {"type": "server", "name": "k-11"}}]})",
                             options, import::BatchSizes{});
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->relations.created, 1);
  ASSERT_EQ(gone->errors.size(), 1U);
  EXPECT_EQ(gone->errors[0].row, "relations[0]");
  EXPECT_EQ(gone->errors[0].field, "to");
  EXPECT_NE(gone->errors[0].message.find("which no longer exists"), std::string::npos)
      << gone->errors[0].message;
}

TEST_F(KeptEnds, EndsByIdentityReadTheirTypeOnceForTheImportsAfter) {
  const std::string doc = ServersAndApps();
  store::DbSession db = store::DbSession::Connect(dsn_);
  // Created by an import that keeps nothing (as a discovery run's, inside its transaction).
  ASSERT_EQ(
      import::ImportJsonText(db, doc, import::ImportOptions{}, import::BatchSizes{})->cis.created,
      22);
  import::ImportCache kept;
  import::ImportOptions options;
  options.cache = &kept;
  options.atomic = false;
  auto link = [&](const std::string& relations) {
    std::optional<import::ImportResult> result = import::ImportJsonText(
        db, R"({"relations": [)" + relations + "]}", options, import::BatchSizes{});
    EXPECT_TRUE(result.has_value());
    return result.value_or(import::ImportResult{});
  };

  // Ends by name only: one query, nothing kept.
  import::ImportResult by_name = link(
      R"({"type": "runs_on", "from": {"type": "application", "name": "app-0"}, "to": {"type": "server", "name": "k-0"}})");
  EXPECT_EQ(by_name.relations.created, 1);
  EXPECT_FALSE(HasPhase(by_name, "relations.kept_identities"));
  EXPECT_EQ(kept.Find("server"), nullptr);

  // Ends by identity: each type is read into its entry, and recorded for the warm-up.
  import::ImportResult by_identity = link(
      R"({"type": "runs_on", "from": {"type": "application", "identity": {"app_code": "A1"}}, "to": {"type": "server", "identity": {"serial": "K1"}}})");
  EXPECT_EQ(by_identity.relations.created, 1);
  EXPECT_TRUE(HasPhase(by_identity, "relations.kept_identities"));
  ASSERT_NE(kept.Find("server"), nullptr);
  EXPECT_EQ(kept.Find("server")->cis.size(), 20U);
  ASSERT_NE(kept.Find("application"), nullptr);
  EXPECT_EQ(kept.Find("application")->cis.size(), 2U);
  EXPECT_EQ(
      Query(db, "SELECT string_agg(type, ',' ORDER BY type) FROM import_kept_types").Text(0, 0),
      "application,server");

  // The next import uses the entry, brought up to date: a rename by plain SQL is seen.
  Query(db, "UPDATE configuration_items SET name = 'k-2b' WHERE name = 'k-2'");
  import::ImportResult next = link(
      R"({"type": "depends_on", "from": {"type": "server", "name": "k-2b"}, "to": {"type": "server", "identity": {"serial": "K3"}}})");
  EXPECT_EQ(next.relations.created, 1);
  EXPECT_TRUE(HasPhase(next, "relations.kept_identities"));

  // Held by another import: the batch reads the identities itself, and waits for nothing.
  {
    const std::lock_guard busy(kept.Find("server")->in_use);
    import::ImportResult busy_identity = link(
        R"({"type": "depends_on", "from": {"type": "server", "identity": {"serial": "K4"}}, "to": {"type": "server", "identity": {"serial": "K5"}}})");
    EXPECT_EQ(busy_identity.relations.created, 1);
    EXPECT_FALSE(HasPhase(busy_identity, "relations.kept_identities"));
  }
  SqlResult written = RelationsByEndNames(db);
  ASSERT_EQ(written.rows(), 4);
  EXPECT_EQ(written.Text(0, 0), "app-0>k-0");
  EXPECT_EQ(written.Text(1, 0), "app-1>k-1");
  EXPECT_EQ(written.Text(2, 0), "k-2b>k-3");
  EXPECT_EQ(written.Text(3, 0), "k-4>k-5");
}

class ImportProcess : public PgTest {
 protected:
  const Headers kAdmin{{"Authorization", std::string("Bearer ") + kTestAdminToken}};
};

// kill -9 of the instance running a background import: nothing of the import is left, and the
// next instance runs the job again from the start, to the same result as one clean run.
TEST_F(ImportProcess, AJobKilledMidImportIsRunAgainByTheNextInstance) {
  constexpr int kCis = 6000;
  std::string doc = R"({"cis": [)";
  for (int i = 0; i < kCis; ++i) {
    doc += std::string(i > 0 ? "," : "") + R"({"type": "vm", "name": "k-)" + std::to_string(i) +
           R"("})";
  }
  doc += R"(], "relations": [)";
  for (int i = 0; i + 1 < kCis; ++i) {
    doc += std::string(i > 0 ? "," : "") +
           R"({"type": "depends_on", "from": {"type": "vm", "name": "k-)" + std::to_string(i) +
           R"("}, "to": {"type": "vm", "name": "k-)" + std::to_string(i + 1) + R"("}})";
  }
  doc += "]}";
  CmdbProcess first = StartOn(dsn_);
  const std::uint16_t port = first.port;
  ASSERT_NE(port, 0) << "cmdb did not print its URL";
  HttpResult queued = HttpRequest(port, "POST", "/api/v1/import", doc,
                                  {{"Content-Type", "application/json"},
                                   {"Prefer", "respond-async"},
                                   {"Authorization", std::string("Bearer ") + kTestAdminToken}});
  ASSERT_EQ(queued.status, 202) << queued.body;
  const std::string location = queued.headers["location"];
  // Killed once the job is well into the import.
  bool running = false;
  for (int i = 0; i < 3000 && !running; ++i) {
    const boost::json::value job = HttpRequest(port, "GET", location, "", kAdmin).json();
    running = job.at("state") == "running" && job.at("progress").at("phases_done").as_int64() >= 3;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(running) << "the job never got going";
  StopCmdb(first, SIGKILL);
  SqlConnection sql(dsn_);
  EXPECT_EQ(sql.Query("SELECT state FROM import_jobs").Text(0, 0), "running");

  CmdbProcess second = StartOn(dsn_);
  const std::uint16_t port2 = second.port;
  ASSERT_NE(port2, 0);
  boost::json::value job;
  for (int i = 0; i < 1200; ++i) {
    job = HttpRequest(port2, "GET", location, "", kAdmin).json();
    if (job.at("state") != "running" && job.at("state") != "queued") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  StopCmdb(second);
  ASSERT_EQ(job.at("state"), "succeeded") << job;
  EXPECT_EQ(job.at("attempts"), 2);
  EXPECT_EQ(job.at("result").at("created"), kCis);
  EXPECT_EQ(job.at("result").at("relations").at("created"), kCis - 1);
  // Exactly one run's rows: each CI once with one version, each relation once.
  EXPECT_EQ(sql.Query("SELECT count(*) FROM configuration_items").Int(0, 0), kCis);
  EXPECT_EQ(sql.Query("SELECT count(*) FROM ci_history").Int(0, 0), kCis);
  EXPECT_EQ(sql.Query("SELECT count(*) FROM ci_versions").Int(0, 0), 0);  // none ended
  EXPECT_EQ(sql.Query("SELECT count(*) FROM relations").Int(0, 0), kCis - 1);
  EXPECT_EQ(sql.Query("SELECT count(*) FROM import_job_chunks").Int(0, 0), 0);
}

// The import streams its COPY while encoding it: a part that cannot be made ends the COPY,
// writes nothing, and leaves the session usable for the rollback and what follows.
TEST_F(ImportApi, AStreamedCopyWhosePartFailsWritesNothing) {
  store::DbSession session = store::DbSession::Connect(dsn_);
  Query(session, "CREATE TABLE copied (n integer)");
  store::pg::CopyBuffer first;
  first.Int(1);
  first.EndRow();
  store::pg::CopyBuffer second;
  second.Int(2);
  second.EndRow();
  store::pg::CopyIn(
      session, "COPY copied (n) FROM STDIN", 2,
      [&](std::size_t p) -> const store::pg::CopyBuffer& { return p == 0 ? first : second; });
  EXPECT_EQ(Query(session, "SELECT sum(n) FROM copied").Int(0, 0), 3);
  EXPECT_THROW(store::pg::CopyIn(session, "COPY copied (n) FROM STDIN", 3,
                                 [&](std::size_t p) -> const store::pg::CopyBuffer& {
                                   if (p == 2) throw std::runtime_error("cannot encode part 2");
                                   return first;
                                 }),
               std::runtime_error);
  EXPECT_EQ(Query(session, "SELECT count(*) FROM copied").Int(0, 0), 2);
}

// Background import jobs that finished longer ago than --import-job-retention-days are deleted
// with their results, at start and then hourly; queued and running jobs are never touched.
TEST_F(ImportApi, FinishedJobsAreDeletedAfterTheirRetention) {
  Sql("INSERT INTO import_jobs (id, state, format, submitted_by, queued_at, finished_at) VALUES "
      "(901, 'succeeded', 'json', 'ops', now() - interval '40 days', now() - interval '31 days'), "
      "(902, 'failed', 'json', 'ops', now() - interval '40 days', now() - interval '31 days'), "
      "(903, 'succeeded', 'json', 'ops', now() - interval '40 days', now() - interval '29 days'), "
      "(904, 'queued', 'json', 'ops', now() - interval '40 days', NULL), "
      "(905, 'running', 'json', 'ops', now() - interval '40 days', NULL)");
  ASSERT_EQ(Get("/api/v1/import-jobs/901").status, 200);
  server::ServeConfig config = Config();
  config.import_worker = false;  // the queued and running rows are not real jobs
  config.import_job_retention_days = 30;
  Restart(config);
  auto left = [this] { return Sql("SELECT count(*) FROM import_jobs WHERE id < 903").Int(0, 0); };
  for (int i = 0; i < 200 && left() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(left(), 0);
  EXPECT_EQ(Get("/api/v1/import-jobs/901").status, 404);
  EXPECT_EQ(Get("/api/v1/import-jobs/902").status, 404);
  for (const char* kept : {"903", "904", "905"}) {
    EXPECT_EQ(Get(std::string("/api/v1/import-jobs/") + kept).status, 200) << kept;
  }
}

}  // namespace
}  // namespace cmdb::testing
