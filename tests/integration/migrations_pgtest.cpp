#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/change.hpp"
#include "model/discovery_source.hpp"
#include "model/drift_finding.hpp"
#include "model/error.hpp"
#include "model/incident.hpp"
#include "model/job_state.hpp"
#include "model/knowledge.hpp"
#include "model/relation.hpp"
#include "store/db_pool.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

// Applies the built-in migrations numbered below `number`, recorded as cmdb records them, so
// that a test can write data in an older schema and then let ApplyMigrations carry it over.
void ApplyMigrationsBefore(store::DbSession& session, int number) {
  store::pg::ExecuteScript(
      session,
      "CREATE TABLE schema_migrations (number integer PRIMARY KEY, name text NOT "
      "NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  for (const store::Migration& m : store::BuiltInMigrations()) {
    if (m.number >= number) break;
    store::pg::ExecuteScript(session, std::string(m.sql));
    session.sql() << "INSERT INTO schema_migrations (number, name) VALUES (:n, :name)",
        soci::use(m.number), soci::use(m.name);
  }
}

TEST(Migrations, TwoInstancesMigratingOneDatabaseApplyEachOnce) {
  std::string db = CreateEmptyDatabase();
  const std::string dsn = DsnFor(db) + " options='-c client_min_messages=warning'";
  std::array<std::vector<std::string>, 2> applied;
  std::array<std::string, 2> failure;
  std::array<std::thread, 2> threads;
  for (std::size_t i = 0; i < 2; ++i) {
    threads[i] = std::thread([&, i] {
      try {
        store::DbSession session = store::DbSession::Connect(dsn);
        applied[i] = store::ApplyMigrations(session);
      } catch (const std::exception& e) {
        failure[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failure[0], "");
  EXPECT_EQ(failure[1], "");
  const std::size_t total = store::BuiltInMigrations().size();
  // One instance applied everything, the other found the database current.
  EXPECT_EQ(applied[0].size() + applied[1].size(), total);
  EXPECT_TRUE(applied[0].empty() || applied[1].empty());
  store::DbSession session = store::DbSession::Connect(dsn);
  soci::session& sql = session.sql();
  int rows = 0;
  int distinct = 0;
  sql << "SELECT count(*), count(DISTINCT number) FROM schema_migrations", soci::into(rows),
      soci::into(distinct);
  EXPECT_EQ(rows, static_cast<int>(total));
  EXPECT_EQ(distinct, static_cast<int>(total));
  // Running again changes nothing.
  EXPECT_TRUE(store::ApplyMigrations(session).empty());
  sql.close();
  DropDatabase(db);
}

// Test processes that share one server (CMDB_TEST_DSN, ctest -j2) each migrate a template
// of their own: none drops a template another is copying from.
TEST(Migrations, TestProcessesSharingOneServerDoNotRaceOnTheTemplate) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  for (int round = 0; round < 2; ++round) {
    std::vector<pid_t> children;
    std::vector<std::string> logs;
    for (int i = 0; i < 3; ++i) {
      logs.push_back("/tmp/cmdb-race-" + std::to_string(getpid()) + "-" + std::to_string(i));
      const pid_t child = fork();
      ASSERT_GE(child, 0);
      if (child == 0) {
        setenv("CMDB_TEST_DSN", ServerDsn().c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
        const std::string log = logs.back();
        FILE* out = std::freopen(log.c_str(), "w", stdout);
        (void)out;
        execl(self.c_str(), self.c_str(), "--gtest_filter=Migrations.InstallTheDefaultCatalogue",
              static_cast<char*>(nullptr));
        _exit(127);
      }
      children.push_back(child);
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      int status = 0;
      waitpid(children[i], &status, 0);
      std::ifstream log(logs[i]);
      std::stringstream text;
      text << log.rdbuf();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "round " << round << ", process " << i << ":\n"
          << text.str();
      std::filesystem::remove(logs[i]);
    }
  }
}

TEST(Migrations, RefusesADatabaseNewerThanTheBinary) {
  std::string db = CreateEmptyDatabase();
  {
    store::DbSession session = store::DbSession::Connect(DsnFor(db));
    soci::session& sql = session.sql();
    store::ApplyMigrations(session);
    sql << "INSERT INTO schema_migrations (number, name) VALUES (9999, '9999_future.sql')";
    try {
      store::ApplyMigrations(session);
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

// The names the code writes for each state and kind are exactly those the database's CHECK
// constraints allow: a value added on one side only would fail at the first write.
std::vector<std::string> AllowedByConstraint(soci::session& sql, const std::string& name) {
  std::string definition;
  sql << "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :n", soci::use(name),
      soci::into(definition);
  std::vector<std::string> names;
  static const std::regex quoted("'([a-z_]+)'");
  for (auto it = std::sregex_iterator(definition.begin(), definition.end(), quoted);
       it != std::sregex_iterator(); ++it) {
    names.push_back((*it)[1]);
  }
  std::sort(names.begin(), names.end());
  return names;
}

template <typename Table>
std::vector<std::string> NamesOf(const Table& table) {
  std::vector<std::string> names;
  for (const auto& row : table) names.emplace_back(row.name);
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Migrations, StateAndKindNamesAreThoseTheDatabaseAllows) {
  std::string db = CreateScratchDatabase();
  {
    soci::session sql(soci::postgresql, DsnFor(db));
    EXPECT_EQ(NamesOf(model::kChangeStateNames), AllowedByConstraint(sql, "ck_changes_state"));
    EXPECT_EQ(NamesOf(model::kIncidentStateNames), AllowedByConstraint(sql, "ck_incidents_state"));
    EXPECT_EQ(NamesOf(model::kArticleStateNames), AllowedByConstraint(sql, "ck_knowledge_state"));
    EXPECT_EQ(NamesOf(model::kFindingStateNames),
              AllowedByConstraint(sql, "ck_drift_findings_state"));
    EXPECT_EQ(NamesOf(model::kJobStateNames), AllowedByConstraint(sql, "ck_discovery_runs_state"));
    EXPECT_EQ(NamesOf(model::kJobStateNames), AllowedByConstraint(sql, "ck_import_jobs_state"));
    EXPECT_EQ(NamesOf(model::kSourceKinds), AllowedByConstraint(sql, "ck_discovery_sources_kind"));
    std::vector<std::string> propagation;
    for (auto p : {model::Propagation::kToFrom, model::Propagation::kFromTo,
                   model::Propagation::kBoth, model::Propagation::kNone}) {
      propagation.emplace_back(model::PropagationName(p));
    }
    std::sort(propagation.begin(), propagation.end());
    EXPECT_EQ(propagation, AllowedByConstraint(sql, "ck_relation_types_propagation"));
  }
  DropDatabase(db);
}

// A database whose sightings 0011 wrote as rows is carried over by 0014: an open streak
// becomes a bit of its source's block, a closed one stays a row, nothing else moves.
TEST(Migrations, OpenSightingStreaksBecomeBlocks) {
  std::string db = CreateEmptyDatabase();
  {
    store::DbSession session = store::DbSession::Connect(DsnFor(db));
    soci::session& sql = session.sql();
    ApplyMigrationsBefore(session, 14);
    store::pg::ExecuteScript(
        session,
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
    EXPECT_EQ(store::ApplyMigrations(session).size(), store::BuiltInMigrations().size() - 13);

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

// A database written before 0023 is carried over: a live relation's current version moves into
// the relation (who wrote it, from where, its diff), the versions of a deleted relation stay,
// and the history read through relation_history is the same as before.
TEST(Migrations, LiveRelationVersionsMoveIntoTheirRelations) {
  std::string db = CreateEmptyDatabase();
  {
    store::DbSession session = store::DbSession::Connect(DsnFor(db));
    soci::session& sql = session.sql();
    ApplyMigrationsBefore(session, 23);
    const std::string before =
        "SELECT string_agg(concat_ws('|', relation_id, version, deleted, type, from_ci, to_ci, "
        "attributes, valid_from, valid_to, changed_by, source, diff), E'\\n' ORDER BY "
        "relation_id, version) FROM ";
    store::pg::ExecuteScript(
        session,
        "INSERT INTO configuration_items (id, type, name) VALUES (1, 'server', 'a'), "
        "(2, 'server', 'b');"
        "INSERT INTO relations (id, type, from_ci, to_ci, attributes, created_at, updated_at) "
        "VALUES (10, 'runs_on', 1, 2, '{\"port\": 1}', '2026-11-01 00:00+00', "
        "'2026-11-01 00:00+00');"
        "INSERT INTO relation_versions (relation_id, version, type, from_ci, to_ci, attributes, "
        "valid_from, changed_by, source, diff) VALUES (10, 1, 'runs_on', 1, 2, '{\"port\": 1}', "
        "'2026-11-01 00:00+00', 'alice', 'api', '{\"port\": {\"new\": 1, \"old\": null}}');"
        // A relation deleted before the migration: its closed version and its tombstone.
        "INSERT INTO relation_versions (relation_id, version, deleted, type, from_ci, to_ci, "
        "attributes, valid_from, valid_to, changed_by, source, diff) VALUES (11, 1, false, "
        "'depends_on', 2, 1, '{}', '2026-11-02 00:00+00', '2026-11-03 00:00+00', 'bob', 'import', "
        "NULL), (11, 2, true, 'depends_on', 2, 1, '{}', '2026-11-03 00:00+00', "
        "'2026-11-03 00:00+00', 'carol', 'api', '{\"deleted\": {\"new\": true, \"old\": "
        "false}}')");
    std::string old_history;
    sql << before + "relation_versions", soci::into(old_history);
    EXPECT_EQ(store::ApplyMigrations(session).size(), store::BuiltInMigrations().size() - 22);

    std::string new_history;
    sql << before + "relation_history", soci::into(new_history);
    EXPECT_EQ(new_history, old_history);
    std::string changed_by;
    std::string source;
    sql << "SELECT changed_by, source FROM relations WHERE id = 10", soci::into(changed_by),
        soci::into(source);
    EXPECT_EQ(changed_by, "alice");
    EXPECT_EQ(source, "api");
    long long stored = 0;
    sql << "SELECT count(*) FROM relation_versions", soci::into(stored);
    EXPECT_EQ(stored, 2);  // the deleted relation's two; the live one's is its row
  }
  DropDatabase(db);
}

// A database written before 0025 is carried over: a live CI's current version moves into the
// CI (who wrote it, from where, its diff), its ended versions and those of a deleted CI stay,
// and the history read through ci_history is the same as before.
TEST(Migrations, LiveCiVersionsMoveIntoTheirCis) {
  std::string db = CreateEmptyDatabase();
  {
    store::DbSession session = store::DbSession::Connect(DsnFor(db));
    soci::session& sql = session.sql();
    ApplyMigrationsBefore(session, 25);
    const std::string before =
        "SELECT string_agg(concat_ws('|', ci_id, version, deleted, type, name, status, owner, "
        "tags, attributes, min_healthy, valid_from, valid_to, changed_by, source, diff), E'\\n' "
        "ORDER BY ci_id, version) FROM ";
    store::pg::ExecuteScript(
        session,
        // CI 1 changed once (version 2 current), CI 2 never changed.
        "INSERT INTO configuration_items (id, type, name, owner, attributes, version, created_at, "
        "updated_at) VALUES (1, 'server', 'a', 'ops', '{\"cpu\": 4}', 2, '2026-11-01 00:00+00', "
        "'2026-11-02 00:00+00'), (2, 'server', 'b', NULL, '{}', 1, '2026-11-01 00:00+00', "
        "'2026-11-01 00:00+00');"
        "INSERT INTO ci_versions (ci_id, version, deleted, type, name, status, owner, tags, "
        "attributes, valid_from, valid_to, changed_by, source, diff) VALUES "
        "(1, 1, false, 'server', 'a', 'active', 'ops', '{}', '{\"cpu\": 2}', '2026-11-01 "
        "00:00+00', "
        "'2026-11-02 00:00+00', 'alice', 'api', NULL), "
        "(1, 2, false, 'server', 'a', 'active', 'ops', '{}', '{\"cpu\": 4}', '2026-11-02 "
        "00:00+00', "
        "NULL, 'bob', 'import', '{\"attributes.cpu\": {\"new\": 4, \"old\": 2}}'), "
        "(2, 1, false, 'server', 'b', 'active', NULL, '{}', '{}', '2026-11-01 00:00+00', NULL, "
        "'carol', "
        "'discovery', NULL), "
        // A CI deleted before the migration: its closed version and its tombstone.
        "(3, 1, false, 'server', 'c', 'active', NULL, '{}', '{}', '2026-11-01 00:00+00', "
        "'2026-11-03 00:00+00', 'alice', 'api', NULL), (3, 2, true, 'server', 'c', 'active', "
        "NULL, '{}', '{}', '2026-11-03 00:00+00', '2026-11-03 00:00+00', 'dave', 'api', "
        "'{\"deleted\": {\"new\": true, \"old\": false}}')");
    std::string old_history;
    sql << before + "ci_versions", soci::into(old_history);
    EXPECT_EQ(store::ApplyMigrations(session).size(), store::BuiltInMigrations().size() - 24);

    std::string new_history;
    sql << before + "ci_history", soci::into(new_history);
    EXPECT_EQ(new_history, old_history);
    std::vector<std::string> changed_by(3);
    std::vector<std::string> source(3);
    sql << "SELECT changed_by, source FROM configuration_items ORDER BY id", soci::into(changed_by),
        soci::into(source);
    EXPECT_EQ(changed_by, (std::vector<std::string>{"bob", "carol"}));
    EXPECT_EQ(source, (std::vector<std::string>{"import", "discovery"}));
    long long stored = 0;
    sql << "SELECT count(*) FROM ci_versions", soci::into(stored);
    EXPECT_EQ(stored, 3);  // CI 1's first version and the deleted CI's two
  }
  DropDatabase(db);
}

}  // namespace
}  // namespace cmdb::testing
