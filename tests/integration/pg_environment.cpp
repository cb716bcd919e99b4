#include "tests/integration/pg_environment.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <libpq-fe.h>
#include <unistd.h>

#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"

namespace cmdb::testing {
namespace {

std::string base_dsn;           // set once by the environment, before any test runs
std::string template_database;  // this process's template database
std::unique_ptr<store::EmbeddedPostgres> cluster;
std::string cluster_dir;

void Exec(const std::string& dsn, const std::string& sql) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect for '" + sql + "': " + message);
  }
  PGresult* r = PQexec(conn, sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string message = PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
  if (!ok) throw std::runtime_error(sql + ": " + message);
}

class PgEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* given = std::getenv("CMDB_TEST_DSN");  // NOLINT(concurrency-mt-unsafe): once
    if (given != nullptr && *given != '\0') {
      base_dsn = given;
    } else {
      char dir[] = "/tmp/cmdbpg-XXXXXX";
      if (mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
      cluster_dir = dir;
      cluster = std::make_unique<store::EmbeddedPostgres>(
          store::EmbeddedPostgresOptions{cluster_dir, /*durable=*/false, ""});
      cluster->Start();
      base_dsn = cluster->ConnectionString("postgres");
    }
    // One template per process: with CMDB_TEST_DSN, test processes run side by side on one
    // server, and a shared template would be dropped under another process's copy.
    template_database = "cmdb_test_template_" + std::to_string(getpid());
    Exec(DsnFor("postgres"), "DROP DATABASE IF EXISTS " + template_database + " WITH (FORCE)");
    Exec(DsnFor("postgres"), "CREATE DATABASE " + template_database);
    {
      store::DbSession session = store::DbSession::Connect(DsnFor(template_database));
      store::ApplyMigrations(session);
    }
  }

  void TearDown() override {
    try {
      Exec(DsnFor("postgres"), "DROP DATABASE IF EXISTS " + template_database + " WITH (FORCE)");
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the cluster may be gone
    }
    if (cluster) {
      cluster->Stop();
      cluster.reset();
      std::error_code ec;
      std::filesystem::remove_all(cluster_dir, ec);
    }
  }
};

std::string NextName() {
  static std::atomic<int> counter{0};
  return "cmdb_test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

}  // namespace

std::string DsnFor(const std::string& database) { return base_dsn + " dbname=" + database; }

std::string ServerDsn() { return base_dsn; }

std::string CreateEmptyDatabase() {
  std::string name = NextName();
  Exec(DsnFor("postgres"), "CREATE DATABASE " + name);
  return name;
}

std::string CreateScratchDatabase() {
  std::string name = NextName();
  Exec(DsnFor("postgres"), "CREATE DATABASE " + name + " TEMPLATE " + template_database);
  return name;
}

void DropDatabase(const std::string& name) {
  Exec(DsnFor("postgres"), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

void PgTest::SetUp() {
  database_ = CreateScratchDatabase();
  dsn_ = DsnFor(database_);
}

void PgTest::TearDown() { DropDatabase(database_); }

server::ServeConfig ServerTest::Config() const {
  server::ServeConfig config;
  config.database = dsn_;
  config.listen = "127.0.0.1:0";
  config.pool_size = 4;
  config.log_requests = false;
  config.bootstrap_token = kTestAdminToken;
  config.token_pepper = kTestPepper;
  return config;
}

Headers ServerTest::Auth(Headers headers) const {
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  return headers;
}

void ServerTest::SetUp() {
  PgTest::SetUp();
  app_ = std::make_unique<server::App>(Config());
  app_->Start();
}

void ServerTest::Relate(std::int64_t from, std::int64_t to, const std::string& type) {
  HttpResult r =
      Post("/api/v1/relations", R"({"type": ")" + type + R"(", "from": )" + std::to_string(from) +
                                    R"(, "to": )" + std::to_string(to) + "}");
  ASSERT_EQ(r.status, 201) << r.body;
}

SqlResult ServerTest::Sql(const std::string& query, const SqlParams& params) {
  if (!sql_) sql_ = std::make_unique<SqlConnection>(dsn_);
  return sql_->Query(query, params);
}

void ServerTest::TearDown() {
  sql_.reset();
  if (app_) app_->Stop();
  app_.reset();
  PgTest::TearDown();
}

void ServerTest::Restart(const server::ServeConfig& config) {
  app_->Stop();
  app_ = std::make_unique<server::App>(config);
  app_->Start();
}

HttpResult ServerTest::Get(const std::string& target) {
  return HttpRequest(port(), "GET", target, "", Auth({}));
}

HttpResult ServerTest::Post(const std::string& target, const std::string& body,
                            const std::string& content_type) {
  return HttpRequest(port(), "POST", target, body, Auth({{"Content-Type", content_type}}));
}

HttpResult ServerTest::Patch(const std::string& target, const std::string& body,
                             const std::string& if_match) {
  Headers h{{"Content-Type", "application/merge-patch+json"}};
  if (!if_match.empty()) h.emplace_back("If-Match", if_match);
  return HttpRequest(port(), "PATCH", target, body, Auth(h));
}

HttpResult ServerTest::Put(const std::string& target, const std::string& body,
                           const std::string& if_match) {
  Headers h{{"Content-Type", "application/json"}};
  if (!if_match.empty()) h.emplace_back("If-Match", if_match);
  return HttpRequest(port(), "PUT", target, body, Auth(h));
}

HttpResult ServerTest::Delete(const std::string& target, const std::string& if_match) {
  Headers h;
  if (!if_match.empty()) h.emplace_back("If-Match", if_match);
  return HttpRequest(port(), "DELETE", target, "", Auth(h));
}

std::string ServerTest::TokenFor(const std::string& name, const std::string& roles,
                                 const std::string& extra) {
  const Headers admin{{"Content-Type", "application/json"},
                      {"Authorization", std::string("Bearer ") + kTestAdminToken}};
  HttpResult user =
      HttpRequest(port(), "POST", "/api/v1/users",
                  R"({"name": ")" + name + R"(", "roles": )" + roles + extra + "}", admin);
  EXPECT_EQ(user.status, 201) << user.body;
  HttpResult token = HttpRequest(port(), "POST", "/api/v1/users/" + name + "/tokens",
                                 R"({"name": "test"})", admin);
  EXPECT_EQ(token.status, 201) << token.body;
  return token.status == 201 ? std::string(token.json().at("token").as_string()) : "";
}

HttpResult ServerTest::PostAs(const std::string& token, const std::string& target,
                              const std::string& body) {
  return HttpRequest(port(), "POST", target, body,
                     {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}});
}

std::int64_t ServerTest::CreateCi(const std::string& body) {
  HttpResult r = Post("/api/v1/cis", body);
  if (r.status != 201) {
    ADD_FAILURE() << "creating " << body << " -> " << r.status << " " << r.body;
    return 0;
  }
  return r.json().at("id").as_int64();
}

}  // namespace cmdb::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new cmdb::testing::PgEnvironment);  // gtest owns it
  return RUN_ALL_TESTS();
}
