#pragma once
// The database side of the integration tests. The test binary's main() starts one throwaway
// PostgreSQL cluster (or uses CMDB_TEST_DSN, a libpq keyword string), applies the migrations
// to a template database of its own once (named after the process, so that test processes
// running side by side on one server do not race), and each test gets a fresh database
// copied from it.

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "server/app.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/sql_client.hpp"

namespace cmdb::testing {

// A connection string for `database` on the test cluster.
std::string DsnFor(const std::string& database);
// The test cluster's connection string without a database: what CMDB_TEST_DSN holds.
std::string ServerDsn();

// Creates an empty database with no migrations applied (for migration tests).
std::string CreateEmptyDatabase();
// Creates a migrated database from the template; returns its name.
std::string CreateScratchDatabase();
void DropDatabase(const std::string& name);

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::string database_;
  std::string dsn_;
};

// The token of user admin in every ServerTest (CMDB_BOOTSTRAP_TOKEN), and the pepper.
inline constexpr const char* kTestAdminToken = "test-admin-token_0123456789abcdefghijklmnop";
inline constexpr const char* kTestPepper = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz";

// A running server on a scratch database, reached over real HTTP on a free port. Requests
// carry `token_` (the admin's unless a test changes it).
class ServerTest : public PgTest {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Restarts the server on the same database with a changed configuration.
  void Restart(const server::ServeConfig& config);
  server::ServeConfig Config() const;

  HttpResult Get(const std::string& target);
  HttpResult Post(const std::string& target, const std::string& body,
                  const std::string& content_type = "application/json");
  HttpResult Patch(const std::string& target, const std::string& body,
                   const std::string& if_match = "");
  HttpResult Put(const std::string& target, const std::string& body,
                 const std::string& if_match = "");
  HttpResult Delete(const std::string& target, const std::string& if_match = "");
  // Creates user `name` with `roles` (a JSON array; `extra`: more members, such as
  // `, "tier": 1`) as admin, and returns a new token of theirs.
  std::string TokenFor(const std::string& name, const std::string& roles,
                       const std::string& extra = "");
  // POST with another user's token.
  HttpResult PostAs(const std::string& token, const std::string& target,
                    const std::string& body = "");
  // Creates a CI and returns its id (asserting 201).
  std::int64_t CreateCi(const std::string& body);
  // Creates a relation `from` -type-> `to` (asserting 201).
  void Relate(std::int64_t from, std::int64_t to, const std::string& type = "depends_on");
  // Runs SQL on the test database directly, for states the API cannot produce (a run left
  // by a crashed instance, an event in the past).
  SqlResult Sql(const std::string& query, const SqlParams& params = {});

  std::uint16_t port() const { return app_->port(); }
  // `headers` and the Authorization of `token_`.
  Headers Auth(Headers headers) const;
  std::string token_ = kTestAdminToken;
  std::unique_ptr<server::App> app_;
  std::unique_ptr<SqlConnection> sql_;
};

}  // namespace cmdb::testing
