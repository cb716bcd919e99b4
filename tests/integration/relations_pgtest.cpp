#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class RelationsApi : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    app_id_ = CreateCi(R"({"type": "application", "name": "shop"})");
    db_id_ = CreateCi(R"({"type": "database", "name": "shop-db"})");
    host_id_ = CreateCi(R"({"type": "server", "name": "db-srv"})");
  }
  std::string Rel(const std::string& type, std::int64_t from, std::int64_t to) {
    return R"({"type": ")" + type + R"(", "from": )" + std::to_string(from) + R"(, "to": )" +
           std::to_string(to) + "}";
  }
  std::int64_t app_id_ = 0;
  std::int64_t db_id_ = 0;
  std::int64_t host_id_ = 0;
};

TEST_F(RelationsApi, CreatesListsAndDeletesRelations) {
  HttpResult created = Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_));
  ASSERT_EQ(created.status, 201) << created.body;
  std::int64_t rel = created.json().at("id").as_int64();
  EXPECT_EQ(created.header("location"), "/api/v1/relations/" + std::to_string(rel));
  ASSERT_EQ(Post("/api/v1/relations", Rel("runs_on", db_id_, host_id_)).status, 201);

  auto of_db = Get("/api/v1/relations?ci=" + std::to_string(db_id_)).json().at("items").as_array();
  EXPECT_EQ(of_db.size(), 2U);
  auto typed = Get("/api/v1/relations?ci=" + std::to_string(db_id_) + "&type=runs_on")
                   .json()
                   .at("items")
                   .as_array();
  ASSERT_EQ(typed.size(), 1U);
  EXPECT_EQ(typed[0].at("to"), host_id_);

  EXPECT_EQ(Delete("/api/v1/relations/" + std::to_string(rel), "\"9\"").status, 412);
  EXPECT_EQ(Delete("/api/v1/relations/" + std::to_string(rel)).status, 204);
  EXPECT_EQ(Get("/api/v1/relations/" + std::to_string(rel)).status, 404);
  auto history =
      Get("/api/v1/relations/" + std::to_string(rel) + "/history").json().at("items").as_array();
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history[0].at("operation"), "delete");
}

// A relation's history pages like a CI's: a truncated page says where the next one starts.
TEST_F(RelationsApi, HistoryPagesWithACursor) {
  HttpResult created = Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::int64_t rel = created.json().at("id").as_int64();
  ASSERT_EQ(Delete("/api/v1/relations/" + std::to_string(rel)).status, 204);
  const std::string history = "/api/v1/relations/" + std::to_string(rel) + "/history";
  HttpResult first = Get(history + "?limit=1");
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(first.json().at("items").at(0).at("version"), 2);
  ASSERT_TRUE(first.json().at("next_cursor").is_string()) << first.body;
  HttpResult second =
      Get(history + "?limit=1&cursor=" + std::string(first.json().at("next_cursor").as_string()));
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(second.json().at("items").as_array().size(), 1U);
  EXPECT_EQ(second.json().at("items").at(0).at("version"), 1);
  EXPECT_EQ(second.json().at("items").at(0).at("operation"), "create");
  EXPECT_TRUE(second.json().at("next_cursor").is_null());
}

TEST_F(RelationsApi, BadRelationsNameTheFieldAndWriteNothing) {
  HttpResult unknown_type = Post("/api/v1/relations", Rel("loves", app_id_, db_id_));
  EXPECT_EQ(unknown_type.status, 422);
  EXPECT_EQ(unknown_type.json().at("errors").at(0).at("field"), "type");
  HttpResult missing = Post("/api/v1/relations", Rel("depends_on", app_id_, 999999));
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(missing.json().at("errors").at(0).at("field"), "to");
  EXPECT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, app_id_)).status, 422);
  EXPECT_EQ(
      Post("/api/v1/relations", R"({"type": "depends_on", "from": "x", "to": 1, "weight": 3})")
          .status,
      422);
  ASSERT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).status, 201);
  EXPECT_EQ(Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).status, 409);
  EXPECT_EQ(Get("/api/v1/relations").json().at("items").as_array().size(), 1U);
}

TEST_F(RelationsApi, DeletingACiRemovesItsRelationsWithHistory) {
  std::int64_t r1 =
      Post("/api/v1/relations", Rel("depends_on", app_id_, db_id_)).json().at("id").as_int64();
  std::int64_t r2 =
      Post("/api/v1/relations", Rel("runs_on", db_id_, host_id_)).json().at("id").as_int64();
  ASSERT_EQ(Delete("/api/v1/cis/" + std::to_string(db_id_)).status, 204);
  EXPECT_EQ(Get("/api/v1/relations").json().at("items").as_array().size(), 0U);
  for (std::int64_t r : {r1, r2}) {
    auto history =
        Get("/api/v1/relations/" + std::to_string(r) + "/history").json().at("items").as_array();
    ASSERT_EQ(history.size(), 2U);
    EXPECT_EQ(history[0].at("operation"), "delete");
    EXPECT_NE(history[0].at("diff").at("reason").as_string().find(std::to_string(db_id_)),
              std::string::npos);
  }
}

}  // namespace
}  // namespace cmdb::testing
