#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class BadInput : public ServerTest {
 protected:
  void ExpectProblem(const HttpResult& r, int status, const std::string& needle = "") {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json") << r.body;
    if (!needle.empty()) {
      EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
    }
  }
  void ExpectNothingWrittenAndServerUp() {
    EXPECT_EQ(Get("/health").status, 200);
    EXPECT_EQ(Get("/api/v1/cis").json().at("items").as_array().size(), 0U);
  }
};

TEST_F(BadInput, MalformedJsonIs400) {
  ExpectProblem(Post("/api/v1/cis", R"({"type": "server", "name": )"), 400, "not valid JSON");
  ExpectProblem(Post("/api/v1/cis", R"({"type": "server"} trailing)"), 400);
  ExpectProblem(Post("/api/v1/cis", ""), 400, "empty");
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, HundredThousandLevelsOfNestingAre400) {
  std::string deep = R"({"type": "server", "name": "x", "attributes": {"extra": )" +
                     std::string(100000, '[') + std::string(100000, ']') + "}}";
  ExpectProblem(Post("/api/v1/cis", deep), 400, "nesting deeper");
  ExpectProblem(Post("/api/v1/import", std::string(100000, '{')), 400);
  ExpectNothingWrittenAndServerUp();
}

// Found by fuzzing (fuzz/fuzz_json): 1e999 read as infinity, which no JSON answer and no
// jsonb column can hold.
TEST_F(BadInput, NumbersBeyondTheDoubleRangeAre400NamingWhere) {
  HttpResult r =
      Post("/api/v1/cis", R"({"type": "server", "name": "x", "attributes": {"memory_mb": 1e999}})");
  ExpectProblem(r, 400, "beyond the range of a double");
  EXPECT_EQ(r.json().at("errors").at(0).at("field"), "/attributes/memory_mb");
  ExpectProblem(
      Post("/api/v1/import",
           R"({"cis": [{"type": "server", "name": "x", "attributes": {"memory_mb": -1e999}}]})"),
      400, "beyond the range of a double");
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, InvalidUtf8Is400) {
  ExpectProblem(Post("/api/v1/cis", "{\"type\": \"server\", \"name\": \"\xff\xfe\"}"), 400);
  ExpectProblem(Post("/api/v1/cis", "{\"type\": \"server\", \"name\": \"\xed\xa0\x80\"}"), 400);
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, WrongContentTypeIs415) {
  ExpectProblem(Post("/api/v1/cis", R"({"type": "server", "name": "x"})", "text/plain"), 415);
  ExpectProblem(Post("/api/v1/cis", R"({"type": "server", "name": "x"})", "application/xml"), 415);
  ExpectProblem(Post("/api/v1/import", "<cis/>", "application/xml"), 415);
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, UnknownFieldsAre422NamingThem) {
  HttpResult r =
      Post("/api/v1/cis", R"({"type": "server", "name": "x", "colour": "red", "id": 5})");
  ExpectProblem(r, 422);
  std::set<std::string> fields;
  for (const auto& e : r.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"colour", "id"}));
  ExpectProblem(Post("/api/v1/import", R"({"cis": [], "extra": 1})"), 422, "extra");
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, OverflowingIdsAndBadQueryParametersAre400) {
  ExpectProblem(Get("/api/v1/cis/99999999999999999999"), 400, "out of range");
  ExpectProblem(Get("/api/v1/relations?ci=99999999999999999999"), 400);
  ExpectProblem(Get("/api/v1/cis?as_of=not-a-time"), 400, "RFC 3339");
  ExpectProblem(Get("/api/v1/cis?as_of=2999-01-01T00:00:00Z"), 400, "future");
  ExpectProblem(Get("/api/v1/cis/1?as_of=2026-02-30T00:00:00Z"), 400);
  ExpectProblem(Get("/api/v1/cis/%zz"), 400);
  ExpectProblem(Post("/api/v1/import?mode=sometimes", "{}"), 400);
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, BodiesOverTheLimitAre413AndTheServerStaysUp) {
  server::ServeConfig config = Config();
  config.body_limit = 64 * 1024;
  Restart(config);
  std::string big = R"({"type": "server", "name": ")" + std::string(100 * 1024, 'a') + "\"}";
  ExpectProblem(Post("/api/v1/cis", big), 413, "65536");
  // A client announcing a huge body is refused from the header alone.
  std::string raw =
      RawExchange(port(),
                  "POST /api/v1/cis HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 10000000000\r\n\r\n{");
  EXPECT_EQ(ParseResponse(raw).status, 413);
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, MalformedHttpGets400AndOversizedHeaders431) {
  HttpResult garbage = ParseResponse(RawExchange(port(), "HELLO\r\n\r\n"));
  EXPECT_EQ(garbage.status, 400);
  std::string huge_header =
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  HttpResult too_large = ParseResponse(RawExchange(port(), huge_header));
  EXPECT_EQ(too_large.status, 431);
  EXPECT_EQ(too_large.json().at("status"), 431);  // the problem document agrees
  EXPECT_EQ(ParseResponse(RawExchange(port(), "GET nothttp HTTP/1.1\r\nHost: x\r\n\r\n")).status,
            400);
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, NulCharactersAreRefusedNotStoredOrCrashed) {
  HttpResult attr = Post("/api/v1/cis", R"({"type": "server", "name": "x",
      "attributes": {"services": {"a\u0000b": 1}, "os": "De\u0000bian"}})");
  ExpectProblem(attr, 422);
  std::set<std::string> fields;
  for (const auto& e : attr.json().at("errors").as_array())
    fields.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(fields, (std::set<std::string>{"attributes.services", "attributes.os"}));
  ExpectProblem(Post("/api/v1/cis", R"({"type": "server", "name": "a\u0000b"})"), 422, "control");
  // Fields the validators do not inspect still never produce a 500.
  HttpResult type = Post("/api/v1/ci-types", R"({"name": "nul_type", "description": "a\u0000b"})");
  EXPECT_EQ(type.status, 400) << type.body;
  ExpectNothingWrittenAndServerUp();
}

TEST_F(BadInput, WrongMethodsAre405WithAllow) {
  HttpResult r = HttpRequest(port(), "PUT", "/api/v1/cis", "{}");
  ExpectProblem(r, 405);
  EXPECT_EQ(r.header("allow"), "GET, POST");
  ExpectProblem(Get("/api/v1/nothing"), 404);
}

}  // namespace
}  // namespace cmdb::testing
