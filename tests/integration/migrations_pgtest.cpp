#include <array>
#include <thread>
#include <vector>

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "model/db_errors.hpp"
#include "model/db_migrations.hpp"
#include "model/error.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

TEST(Migrations, TwoInstancesMigratingOneDatabaseApplyEachOnce) {
  std::string db = CreateEmptyDatabase();
  const std::string dsn = DsnFor(db) + " options='-c client_min_messages=warning'";
  std::array<std::vector<std::string>, 2> applied;
  std::array<std::string, 2> failure;
  std::array<std::thread, 2> threads;
  for (std::size_t i = 0; i < 2; ++i) {
    threads[i] = std::thread([&, i] {
      try {
        soci::session sql(soci::postgresql, dsn);
        applied[i] = model::ApplyMigrations(sql);
      } catch (const std::exception& e) {
        failure[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failure[0], "");
  EXPECT_EQ(failure[1], "");
  const std::size_t total = model::BuiltInMigrations().size();
  // One instance applied everything, the other found the database current.
  EXPECT_EQ(applied[0].size() + applied[1].size(), total);
  EXPECT_TRUE(applied[0].empty() || applied[1].empty());
  soci::session sql(soci::postgresql, dsn);
  int rows = 0;
  int distinct = 0;
  sql << "SELECT count(*), count(DISTINCT number) FROM schema_migrations", soci::into(rows),
      soci::into(distinct);
  EXPECT_EQ(rows, static_cast<int>(total));
  EXPECT_EQ(distinct, static_cast<int>(total));
  // Running again changes nothing.
  EXPECT_TRUE(model::ApplyMigrations(sql).empty());
  sql.close();
  DropDatabase(db);
}

TEST(Migrations, RefusesADatabaseNewerThanTheBinary) {
  std::string db = CreateEmptyDatabase();
  {
    soci::session sql(soci::postgresql, DsnFor(db) + " options='-c client_min_messages=warning'");
    model::ApplyMigrations(sql);
    sql << "INSERT INTO schema_migrations (number, name) VALUES (9999, '9999_future.sql')";
    try {
      model::ApplyMigrations(sql);
      ADD_FAILURE() << "a newer schema was accepted";
    } catch (const model::Error& e) {
      EXPECT_EQ(e.code(), model::ErrorCode::kFailedPrecondition);
      EXPECT_NE(std::string(e.what()).find("9999"), std::string::npos);
    }
  }
  DropDatabase(db);
}

TEST(Migrations, InstallTheDefaultCatalogue) {
  std::string db = CreateScratchDatabase();
  {
    soci::session sql(soci::postgresql, DsnFor(db));
    std::vector<std::string> types(20);
    sql << "SELECT name FROM ci_types ORDER BY name", soci::into(types);
    for (const char* expected :
         {"application", "business_service", "database", "network_device", "server", "vm"}) {
      EXPECT_NE(std::find(types.begin(), types.end(), expected), types.end()) << expected;
    }
    std::vector<std::string> relations(20);
    std::vector<std::string> propagation(20);
    sql << "SELECT name, propagation FROM relation_types ORDER BY name", soci::into(relations),
        soci::into(propagation);
    std::map<std::string, std::string> by_name;
    for (std::size_t i = 0; i < relations.size(); ++i) by_name[relations[i]] = propagation[i];
    EXPECT_EQ(by_name["depends_on"], "to_from");
    EXPECT_EQ(by_name["runs_on"], "to_from");
    EXPECT_EQ(by_name["hosted_on"], "to_from");
    EXPECT_EQ(by_name["contains"], "from_to");
    EXPECT_EQ(by_name["connected_to"], "both");
    EXPECT_EQ(by_name["member_of"], "from_to");
  }
  DropDatabase(db);
}

// A database whose sightings 0011 wrote as rows is carried over by 0014: an open streak
// becomes a bit of its source's block, a closed one stays a row, nothing else moves.
TEST(Migrations, OpenSightingStreaksBecomeBlocks) {
  std::string db = CreateEmptyDatabase();
  {
    soci::session sql(soci::postgresql, DsnFor(db) + " options='-c client_min_messages=warning'");
    model::ExecuteRaw(sql,
                      "CREATE TABLE schema_migrations (number integer PRIMARY KEY, name text NOT "
                      "NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())");
    for (const model::Migration& m : model::BuiltInMigrations()) {
      if (m.number >= 14) break;
      model::ExecuteRaw(sql, std::string(m.sql));
      sql << "INSERT INTO schema_migrations (number, name) VALUES (:n, :name)", soci::use(m.number),
          soci::use(m.name);
    }
    model::ExecuteRaw(
        sql,
        "INSERT INTO discovery_sources (id, name, kind, sighted_run_id, sighted_at) VALUES "
        "(1, 'agents', 'agent', 9, '2026-11-20 10:00+00'), (2, 'scanner', 'nmap_xml', 4, "
        "'2026-11-19 08:00+00');"
        // Open streaks of source 1 on both sides of a block edge and far away; a closed one.
        "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at, streak) "
        "VALUES (1023, 1, 5, '2026-11-18 00:00+00', true), (1024, 1, 9, '2026-11-20 10:00+00', "
        "true), (70000, 1, 3, '2026-11-01 00:00+00', true), (1, 1, 7, '2026-11-19 00:00+00', "
        "false), (1023, 2, 4, '2026-11-19 08:00+00', true), (1, 2, 2, '2026-11-02 00:00+00', "
        // A streak of a source deleted without closing it: kept as a row.
        "false), (5, 3, 1, '2026-10-01 00:00+00', true)");
    EXPECT_EQ(model::ApplyMigrations(sql).size(), model::BuiltInMigrations().size() - 13);

    std::vector<long long> source(10);
    std::vector<long long> ci(10);
    sql << "SELECT b.source_id, (b.block << 10) + i FROM discovery_sighting_blocks b, "
           "generate_series(0, 1023) i WHERE get_bit(b.bits, i) = 1 ORDER BY 1, 2",
        soci::into(source), soci::into(ci);
    EXPECT_EQ(source, (std::vector<long long>{1, 1, 1, 2}));
    EXPECT_EQ(ci, (std::vector<long long>{1023, 1024, 70000, 1023}));
    std::vector<long long> row_source(10);
    std::vector<long long> row_ci(10);
    std::vector<long long> row_run(10);
    sql << "SELECT source_id, ci_id, last_run_id FROM discovery_sightings ORDER BY 1, 2",
        soci::into(row_source), soci::into(row_ci), soci::into(row_run);
    EXPECT_EQ(row_source, (std::vector<long long>{1, 2, 3}));
    EXPECT_EQ(row_ci, (std::vector<long long>{1, 1, 5}));
    EXPECT_EQ(row_run, (std::vector<long long>{7, 2, 1}));
  }
  DropDatabase(db);
}

}  // namespace
}  // namespace cmdb::testing
