#include "server/router.hpp"

#include <optional>
#include <stdexcept>

#include <gtest/gtest.h>

#include "auth/authenticator.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "server/handlers/handlers.hpp"
#include "server/metrics.hpp"

namespace cmdb::server {
namespace {

Request Make(std::string method, std::string target, std::string body = "",
             const std::string& content_type = "application/json") {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  EXPECT_TRUE(ParseTarget(r.target, r.path, r.query));
  r.body = std::move(body);
  if (!content_type.empty()) r.headers.emplace_back("content-type", content_type);
  r.request_id = "test-1";
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : router(
            {{"GET", "/things/{id}",
              [](const Request&, const PathParams& p, AppContext&) {
                return handlers::JsonResponse(200, {{"id", handlers::ParseId(p.at("id"), "id")}});
              },
              Public()},
             {"POST", "/things",
              [](const Request& r, const PathParams&, AppContext&) {
                return handlers::JsonResponse(201, handlers::ParseJsonBody(r));
              },
              Public()},
             {"GET", "/boom",
              [](const Request&, const PathParams&, AppContext&) -> Response {
                throw std::runtime_error("secret internals");
              },
              Public()}}) {
    ctx.metrics = &metrics;
    ctx.log_requests = false;
  }
  Metrics metrics;
  AppContext ctx;
  Router router;
};

TEST_F(RouterTest, MatchesPatternsAndPassesPathParameters) {
  Response r = router.Dispatch(Make("GET", "/things/42"), ctx);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(model::ParseJson(r.body).at("id"), 42);
}

TEST_F(RouterTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  EXPECT_EQ(router.Dispatch(Make("GET", "/nothing"), ctx).status, 404);
  Response r = router.Dispatch(Make("DELETE", "/things/1"), ctx);
  EXPECT_EQ(r.status, 405);
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].second, "GET");
  // The problem document says the status the response has.
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(model::ParseJson(r.body).at("status"), 405);
}

TEST_F(RouterTest, UnexpectedExceptionsBecome500WithoutLeakingDetails) {
  Response r = router.Dispatch(Make("GET", "/boom"), ctx);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_NE(r.body.find("test-1"), std::string::npos);
  EXPECT_NE(metrics.Render().find("route=\"/boom\",status=\"500\"} 1"), std::string::npos);
}

// Made-up methods (any token is a valid HTTP method) must not add a metrics series each: the
// label set stays bounded however many a client invents.
TEST_F(RouterTest, MadeUpMethodsDoNotGrowTheMetrics) {
  router.Dispatch(Make("GET", "/things/1"), ctx);
  const std::size_t before = metrics.Render().size();
  for (int i = 0; i < 200; ++i) {
    const std::string method = "M" + std::to_string(i);
    EXPECT_EQ(router.Dispatch(Make(method, "/things/1"), ctx).status, 405);
    EXPECT_EQ(router.Dispatch(Make(method, "/nothing/" + std::to_string(i)), ctx).status, 404);
  }
  const std::string text = metrics.Render();
  EXPECT_EQ(text.find("M199"), std::string::npos);
  EXPECT_NE(text.find("method=\"OTHER\""), std::string::npos);
  EXPECT_LT(text.size(), before + 8000);  // two series (405 and 404 under OTHER), not 400
}

TEST_F(RouterTest, IdsMustBePositiveAndFit64Bits) {
  EXPECT_EQ(router.Dispatch(Make("GET", "/things/99999999999999999999999"), ctx).status, 400);
  EXPECT_EQ(router.Dispatch(Make("GET", "/things/-1"), ctx).status, 400);
  EXPECT_EQ(router.Dispatch(Make("GET", "/things/1x"), ctx).status, 400);
  EXPECT_EQ(router.Dispatch(Make("GET", "/things/0"), ctx).status, 400);
}

TEST_F(RouterTest, BodiesNeedAJsonContentType) {
  EXPECT_EQ(router.Dispatch(Make("POST", "/things", "{}", "text/plain"), ctx).status, 415);
  EXPECT_EQ(router.Dispatch(Make("POST", "/things", "{}", ""), ctx).status, 415);
  EXPECT_EQ(
      router.Dispatch(Make("POST", "/things", "{}", "application/json; charset=utf-8"), ctx).status,
      201);
  EXPECT_EQ(router.Dispatch(Make("POST", "/things", "{", "application/json"), ctx).status, 400);
}

// A route with a Starter: started requests get their answer through the same error mapping
// and metrics as dispatched ones; a declining or throwing starter leaves them to Dispatch.
TEST(RouterStart, StartedAnswersAreMappedRecordedAndDeclinesFallBack) {
  Metrics metrics;
  AppContext ctx;
  ctx.metrics = &metrics;
  ctx.log_requests = false;
  auto handler = [](const Request&, const PathParams& p, AppContext&) {
    return handlers::JsonResponse(
        200, {{"via", "handler"}, {"id", handlers::ParseId(p.at("id"), "id")}});
  };
  auto starter = [](const Request& r, const PathParams& p, AppContext&, Answer answer) {
    if (r.Query("decline")) return false;
    const std::int64_t id = handlers::ParseId(p.at("id"), "id");  // throws for a bad id
    answer([id]() -> Response {
      if (id == 7) throw model::Error(model::ErrorCode::kNotFound, "thing 7 does not exist");
      if (id == 8) throw std::runtime_error("secret internals");
      if (id == 9) throw 42;  // not even a std::exception: still an answer
      return handlers::JsonResponse(200, {{"via", "starter"}, {"id", id}});
    });
    return true;
  };
  Router router({{"GET", "/things/{id}", handler, Public(), starter},
                 {"GET", "/plain/{id}", handler, Public()}});
  auto start = [&](const std::string& method, const std::string& target) {
    std::optional<Response> answered;
    Request request = Make(method, target);
    const bool started =
        router.Start(request, ctx, [&answered](Response r) { answered = std::move(r); });
    EXPECT_EQ(started, answered.has_value()) << target;
    return answered;
  };

  std::optional<Response> ok = start("GET", "/things/5");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(model::ParseJson(ok->body).at("via"), "starter");
  ASSERT_TRUE(start("HEAD", "/things/5"));

  std::optional<Response> missing = start("GET", "/things/7");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->content_type, "application/problem+json");
  EXPECT_NE(missing->body.find("thing 7 does not exist"), std::string::npos);

  std::optional<Response> failed = start("GET", "/things/8");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 500);
  EXPECT_EQ(failed->body.find("secret"), std::string::npos);

  std::optional<Response> odd = start("GET", "/things/9");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->status, 500);

  EXPECT_FALSE(start("GET", "/things/5?decline=1"));  // the starter declined
  EXPECT_FALSE(start("GET", "/things/abc"));          // the starter threw: Dispatch reports
  EXPECT_EQ(router.Dispatch(Make("GET", "/things/abc"), ctx).status, 400);
  EXPECT_FALSE(start("GET", "/plain/5"));    // no starter
  EXPECT_FALSE(start("POST", "/things/5"));  // not a read
  EXPECT_FALSE(start("GET", "/nowhere"));

  const std::string rendered = metrics.Render();
  EXPECT_NE(rendered.find("method=\"GET\",route=\"/things/{id}\",status=\"200\"} 1"),
            std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("method=\"HEAD\",route=\"/things/{id}\",status=\"200\"} 1"),
            std::string::npos);
  EXPECT_NE(rendered.find("route=\"/things/{id}\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(rendered.find("route=\"/things/{id}\",status=\"500\"} 2"), std::string::npos);
}

TEST(Metrics, CountersAndGaugesSayTheirType) {
  Metrics metrics;
  metrics.AddCounter("cmdb_things_total", "Things done.", [] { return 3.0; });
  metrics.AddGauge("cmdb_things_open", "Things open.", [] { return 2.0; });
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("# TYPE cmdb_things_total counter\ncmdb_things_total 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE cmdb_things_open gauge\ncmdb_things_open 2\n"), std::string::npos);
}

TEST(Handlers, IfMatchAcceptsStrongWeakAndBareVersions) {
  Request r;
  r.headers = {{"if-match", "\"3\""}};
  EXPECT_EQ(handlers::ParseIfMatch(r), 3);
  r.headers = {{"if-match", "W/\"4\""}};
  EXPECT_EQ(handlers::ParseIfMatch(r), 4);
  r.headers = {{"if-match", "*"}};
  EXPECT_EQ(handlers::ParseIfMatch(r), std::nullopt);
  r.headers = {{"if-match", "\"abc\""}};
  EXPECT_THROW(handlers::ParseIfMatch(r), model::Error);
}

TEST(Handlers, CursorsRoundTripAndRejectForgeries) {
  Request r;
  r.query = {{"cursor", handlers::EncodeCursor(123456789)}};
  EXPECT_EQ(handlers::DecodeCursor(r), 123456789);
  r.query = {{"cursor", "zzz"}};
  EXPECT_THROW(handlers::DecodeCursor(r), model::Error);
}

TEST(Handlers, AsOfMustBeAPastRfc3339Timestamp) {
  Request r;
  r.query = {{"as_of", "2020-01-01T00:00:00Z"}};
  EXPECT_TRUE(handlers::ParseAsOf(r));
  r.query = {{"as_of", "2999-01-01T00:00:00Z"}};
  EXPECT_THROW(handlers::ParseAsOf(r), model::Error);
  r.query = {{"as_of", "last tuesday"}};
  EXPECT_THROW(handlers::ParseAsOf(r), model::Error);
}

TEST(HttpTypes, ParsesTargetsAndRejectsBadEscapes) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  ASSERT_TRUE(ParseTarget("/api/v1/cis?q=db%2001&attr.os=Debian+12&tag=a&tag=b", path, query));
  EXPECT_EQ(path, "/api/v1/cis");
  ASSERT_EQ(query.size(), 4U);
  EXPECT_EQ(query[0].second, "db 01");
  EXPECT_EQ(query[1].second, "Debian 12");
  EXPECT_FALSE(ParseTarget("/a%zz", path, query));
  EXPECT_FALSE(ParseTarget("/a?x=%4", path, query));
  EXPECT_FALSE(ParseTarget("http://evil/", path, query));
}

// Tokens a test hands out: "viewer-token" and "admin-token", verified at once; any other is
// refused. "slow-admin" verifies only through Authenticate (never cached).
class FakeVerifier : public auth::Verifier {
 public:
  std::shared_ptr<const model::Principal> Cached(std::string_view header) const override {
    if (header == "Bearer slow-admin") return nullptr;
    try {
      return Lookup(header);
    } catch (const model::Error&) {
      return nullptr;
    }
  }
  std::shared_ptr<const model::Principal> Authenticate(std::string_view header,
                                                       std::string_view) override {
    return Lookup(header);
  }
  void Forget() override {}

 private:
  static std::shared_ptr<const model::Principal> Lookup(std::string_view header) {
    auto p = std::make_shared<model::Principal>();
    if (header == "Bearer viewer-token") {
      p->user = "vera";
      p->token_id = 1;
      p->roles = model::RoleSet{model::Role::kViewer};
    } else if (header == "Bearer admin-token" || header == "Bearer slow-admin") {
      p->user = "root";
      p->token_id = 2;
      p->roles = model::RoleSet{model::Role::kAdmin};
    } else {
      throw model::Error(model::ErrorCode::kUnauthenticated, "the token is not valid");
    }
    return p;
  }
};

// The route's Access decides: 401 without a valid token (with WWW-Authenticate), 403 naming
// the role for a token without it, the handler sees who calls; writes and refusals are
// audited, reads that pass are not.
TEST(RouterAccess, RolesAreCheckedWhereTheRouteIsDeclaredAndAudited) {
  Metrics metrics;
  FakeVerifier verifier;
  std::vector<model::AuditEntry> audited;
  AppContext ctx;
  ctx.metrics = &metrics;
  ctx.log_requests = false;
  ctx.auth = &verifier;
  ctx.audit = [&](const model::AuditEntry& e) { audited.push_back(e); };
  auto who = [](const Request& r, const PathParams&, AppContext&) {
    return handlers::JsonResponse(200, {{"user", r.principal ? r.principal->user : "nobody"}});
  };
  auto create = [](const Request& r, const PathParams&, AppContext&) {
    Response response = handlers::JsonResponse(201, {{"by", r.principal->user}});
    response.headers.emplace_back("Location", "/things/77");
    return response;
  };
  auto starter = [](const Request& r, const PathParams&, AppContext&, Answer answer) {
    const std::string user = r.principal->user;
    answer([user] { return handlers::JsonResponse(200, {{"started_for", user}}); });
    return true;
  };
  Router router({{"GET", "/things/{id}", who, Needs(model::Role::kViewer), starter},
                 {"POST", "/things", create, Needs(model::Role::kAssetAdmin)},
                 {"GET", "/open", who, Public()},
                 {"GET", "/mine", who, SignedIn()}});
  auto with = [](Request r, const std::string& auth) {
    if (!auth.empty()) r.headers.emplace_back("authorization", auth);
    r.client_address = "192.0.2.7";
    return r;
  };

  Response missing = router.Dispatch(with(Make("GET", "/things/1"), ""), ctx);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.content_type, "application/problem+json");
  bool challenged = false;
  for (const auto& [name, value] : missing.headers) {
    challenged |= name == "WWW-Authenticate" && value.rfind("Bearer", 0) == 0;
  }
  EXPECT_TRUE(challenged);
  EXPECT_EQ(router.Dispatch(with(Make("GET", "/things/1"), "Bearer wrong"), ctx).status, 401);
  EXPECT_EQ(router.Dispatch(with(Make("GET", "/things/1"), "Basic dmVyYTp4"), ctx).status, 401);

  Response read = router.Dispatch(with(Make("GET", "/things/1"), "Bearer viewer-token"), ctx);
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(model::ParseJson(read.body).at("user"), "vera");

  Response denied =
      router.Dispatch(with(Make("POST", "/things", "{}"), "Bearer viewer-token"), ctx);
  EXPECT_EQ(denied.status, 403);
  EXPECT_NE(denied.body.find("asset_admin"), std::string::npos) << denied.body;

  Response made = router.Dispatch(with(Make("POST", "/things", "{}"), "Bearer admin-token"), ctx);
  EXPECT_EQ(made.status, 201);
  EXPECT_EQ(model::ParseJson(made.body).at("by"), "root");  // admin holds every role

  EXPECT_EQ(model::ParseJson(router.Dispatch(with(Make("GET", "/open"), ""), ctx).body).at("user"),
            "nobody");
  EXPECT_EQ(router.Dispatch(with(Make("GET", "/mine"), ""), ctx).status, 401);
  EXPECT_EQ(router.Dispatch(with(Make("GET", "/mine"), "Bearer viewer-token"), ctx).status, 200);

  // Three refused reads, the refused and the accepted write; passing reads are not audited.
  ASSERT_EQ(audited.size(), 6U);
  EXPECT_EQ(audited[0].status, 401);
  EXPECT_FALSE(audited[0].actor.has_value());
  EXPECT_EQ(audited[0].route, "/things/{id}");
  EXPECT_EQ(audited[0].target_ids, std::vector<std::string>{"1"});
  EXPECT_EQ(audited[0].client_address, "192.0.2.7");
  EXPECT_EQ(audited[3].status, 403);
  EXPECT_EQ(audited[3].actor, "vera");
  EXPECT_EQ(audited[4].status, 201);
  EXPECT_EQ(audited[4].actor, "root");
  EXPECT_EQ(audited[4].token_id, 2);
  EXPECT_EQ(audited[4].target_ids, std::vector<std::string>{"77"});
  EXPECT_EQ(audited[5].route, "/mine");

  // The I/O thread's start takes only a token verified already, and only for a permitted role.
  auto start = [&](const std::string& auth) {
    std::optional<Response> answered;
    Request request = with(Make("GET", "/things/3"), auth);
    router.Start(request, ctx, [&](Response r) { answered = std::move(r); });
    return answered;
  };
  std::optional<Response> started = start("Bearer viewer-token");
  ASSERT_TRUE(started);
  EXPECT_EQ(model::ParseJson(started->body).at("started_for"), "vera");
  EXPECT_FALSE(start("Bearer slow-admin"));  // not cached: Dispatch verifies it
  EXPECT_FALSE(start(""));                   // Dispatch answers (and audits) the 401
}

TEST(Metrics, ValuesAreWrittenExactly) {
  Metrics metrics;
  metrics.AddGauge("cmdb_test_bytes", "Bytes.", [] { return 1048576.0; });
  metrics.AddGauge("cmdb_test_ratio", "A ratio.", [] { return 0.25; });
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("\ncmdb_test_bytes 1048576\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ncmdb_test_ratio 0.25\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace cmdb::server
