#include <array>
#include <thread>
#include <vector>

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

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

}  // namespace
}  // namespace cmdb::testing
