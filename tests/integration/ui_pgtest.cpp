// The web UI over real HTTP: sign-in into an HttpOnly session cookie, the redirect of an
// anonymous visit, pages for problems, the anti-forgery token on every write, the
// Content-Security-Policy, escaping of hostile names, content-hashed assets, the language.
// (tests/browser/walk.mjs walks the same pages in Chromium.)

#include <boost/json.hpp>

#include "tests/integration/pg_environment.hpp"

namespace cmdb::testing {
namespace {

class UiPages : public ServerTest {
 protected:
  HttpResult Page(const std::string& target, const std::string& cookie, const Headers& extra = {}) {
    Headers headers{{"Cookie", cookie}};
    for (const auto& h : extra) headers.push_back(h);
    return HttpRequest(port(), "GET", target, "", headers);
  }
  HttpResult Form(const std::string& target, const std::string& body, const std::string& cookie,
                  const Headers& extra = {}) {
    Headers headers{{"Content-Type", "application/x-www-form-urlencoded"}, {"Cookie", cookie}};
    for (const auto& h : extra) headers.push_back(h);
    return HttpRequest(port(), "POST", target, body, headers);
  }
  // Signs in with `token`; the session cookie ("cmdb_session=...").
  std::string SignIn(const std::string& token) {
    HttpResult r = Form("/ui/login", "token=" + token + "&next=%2Fui%2Fcis", "");
    EXPECT_EQ(r.status, 303) << r.body;
    EXPECT_EQ(r.header("location"), "/ui/cis");
    const std::string cookie = r.header("set-cookie");
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("Path=/ui"), std::string::npos) << cookie;
    return cookie.substr(0, cookie.find(';'));
  }
  // The anti-forgery token a page hands its forms.
  static std::string Csrf(const std::string& html) {
    const std::string marker = "name=\"csrf\" value=\"";
    const std::size_t at = html.find(marker);
    if (at == std::string::npos) return "";
    return html.substr(at + marker.size(), 64);
  }
};

TEST_F(UiPages, AnonymousVisitsAreSentToSignInAndBadTokensRefused) {
  HttpResult home = Page("/ui/cis?q=a%20b", "");
  EXPECT_EQ(home.status, 303);
  EXPECT_EQ(home.header("location"), "/ui/login?next=%2Fui%2Fcis%3Fq%3Da%2520b");
  HttpResult login = Page("/ui/login", "");
  EXPECT_EQ(login.status, 200);
  EXPECT_EQ(login.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(login.header("content-security-policy").find("default-src 'self'"), std::string::npos);
  EXPECT_NE(login.header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(login.body.find("<script>"), std::string::npos);  // no inline script
  HttpResult bad = Form("/ui/login", "token=cmdb_1_nope&next=%2Fui%2F", "");
  EXPECT_EQ(bad.status, 401);
  EXPECT_TRUE(bad.header("set-cookie").empty());
  // A sign-in never sends anyone to another site.
  HttpResult away = Form(
      "/ui/login", std::string("token=") + kTestAdminToken + "&next=%2F%2Fevil.example%2F", "");
  EXPECT_EQ(away.header("location"), "/ui/");
  // Another site's page cannot sign the browser in (as someone else); this site's can.
  HttpResult forged = Form("/ui/login", std::string("token=") + kTestAdminToken, "",
                           {{"Origin", "https://evil.example"}});
  EXPECT_EQ(forged.status, 403);
  EXPECT_TRUE(forged.header("set-cookie").empty());
  HttpResult own = Form("/ui/login", std::string("token=") + kTestAdminToken, "",
                        {{"Origin", "http://127.0.0.1"}});  // the test client's Host
  EXPECT_EQ(own.status, 303);
  HttpResult outside =
      Form("/ui/login",
           std::string("token=") + kTestAdminToken + "&next=https%3A%2F%2Fevil.example", "");
  EXPECT_EQ(outside.header("location"), "/ui/");
}

TEST_F(UiPages, PagesShowWhatTheApiAnswersEscaped) {
  const std::string cookie = SignIn(kTestAdminToken);
  const std::int64_t id =
      CreateCi(R"({"type": "server", "name": "<script>alert(1)</script> \"q\" 财务"})");
  HttpResult list = Page("/ui/cis?q=alert", cookie);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.body.find("<script>alert"), std::string::npos);
  EXPECT_NE(list.body.find("&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; 财务"),
            std::string::npos);
  HttpResult detail = Page("/ui/cis/" + std::to_string(id), cookie);
  ASSERT_EQ(detail.status, 200) << detail.body;
  EXPECT_EQ(detail.body.find("<script>alert"), std::string::npos);
  HttpResult missing = Page("/ui/cis/999999", cookie);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(missing.body.find("CI 999999 does not exist"), std::string::npos);
  // A refused form shows which field the API refused.
  const std::string csrf = Csrf(Page("/ui/quality", cookie).body);
  HttpResult refused =
      Form("/ui/complaints",
           "csrf=" + csrf + "&title=t&complainant=c&owner=o&note=n&due_at=2020-01-01", cookie);
  EXPECT_EQ(refused.status, 422);
  EXPECT_NE(refused.body.find("due_at: is in the past"), std::string::npos) << refused.body;
}

TEST_F(UiPages, EveryWriteNeedsTheSessionsAntiForgeryToken) {
  const std::string token = TokenFor("assets", R"(["asset_admin"])");
  const std::string cookie = SignIn(token);
  const std::int64_t ci = CreateCi(R"({"type": "server", "name": "h1"})");
  Sql("INSERT INTO discovery_sources (id, name, kind) VALUES (1, 's', 'agent')");
  Sql("INSERT INTO discovery_runs (id, source_id, state) VALUES (1, 1, 'succeeded')");
  Sql("INSERT INTO drift_findings (id, ci_id, attribute, expected, actual, run_id, last_run_id, "
      "detected_at, observed_at) VALUES (1, $1, 'os', '\"a\"', '\"b\"', 1, 1, now(), now())",
      {P(ci)});
  HttpResult queue = Page("/ui/drift", cookie);
  ASSERT_EQ(queue.status, 200);
  // The token the page carries (its forms send it as csrf, htmx in X-CSRF-Token).
  const std::string csrf = Csrf(queue.body);
  ASSERT_EQ(csrf.size(), 64U);
  EXPECT_NE(queue.body.find("X-CSRF-Token"), std::string::npos);
  EXPECT_NE(queue.body.find(csrf, queue.body.find("hx-headers")), std::string::npos);
  // Without it, or with another: refused, nothing written.
  EXPECT_EQ(Form("/ui/drift/1/accept", "", cookie).status, 403);
  EXPECT_EQ(Form("/ui/drift/1/accept", "", cookie, {{"X-CSRF-Token", std::string(64, 'a')}}).status,
            403);
  EXPECT_EQ(Get("/api/v1/drift/1").json().at("state"), "open");
  HttpResult accepted = Form("/ui/drift/1/accept", "", cookie, {{"X-CSRF-Token", csrf}});
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_NE(accepted.body.find("accepted"), std::string::npos);
  EXPECT_EQ(Get("/api/v1/drift/1").json().at("state"), "accepted");
  // The write went through the API's route, in the audit log under the user.
  {
    boost::json::value log = Get("/api/v1/audit-log?action=POST&limit=20").json();
    bool found = false;
    for (const auto& e : log.at("items").as_array()) {
      found = found || (e.at("route") == "/api/v1/drift/{id}/accept" && e.at("actor") == "assets");
    }
    EXPECT_TRUE(found);
  }
  // A viewer's session gets no button and the server refuses the write anyway.
  const std::string viewer = SignIn(TokenFor("reader", R"(["viewer"])"));
  HttpResult seen = Page("/ui/drift", viewer);
  EXPECT_EQ(seen.body.find("hx-post"), std::string::npos);
  // Signing out clears the cookie, and needs the token too.
  const std::string page = Page("/ui/", cookie).body;
  EXPECT_EQ(Form("/ui/logout", "", cookie).status, 403);
  HttpResult out = Form("/ui/logout", "csrf=" + Csrf(page), cookie);
  EXPECT_EQ(out.status, 303);
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
}

TEST_F(UiPages, AssetsAreContentHashedAndCachedLongAndLanguageIsRemembered) {
  const std::string cookie = SignIn(kTestAdminToken);
  HttpResult home = Page("/ui/", cookie);
  const std::size_t at = home.body.find("/ui/static/htmx.min.");
  ASSERT_NE(at, std::string::npos);
  const std::string path = home.body.substr(at, home.body.find('"', at) - at);
  HttpResult js = Page(path, "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_NE(js.body.find("htmx"), std::string::npos);
  EXPECT_EQ(Page("/ui/static/htmx.min.js", "").status, 404);  // only under its hashed name
  HttpResult zh = Page("/ui/cis?lang=zh", cookie);
  EXPECT_NE(zh.body.find("<html lang=\"zh\">"), std::string::npos);
  EXPECT_NE(zh.header("set-cookie").find("cmdb_lang=zh"), std::string::npos);
  HttpResult remembered = Page("/ui/drift", cookie + "; cmdb_lang=zh");
  EXPECT_NE(remembered.body.find("配置偏差审核"), std::string::npos);
  HttpResult by_header = Page("/ui/drift", cookie, {{"Accept-Language", "zh-CN,zh;q=0.9"}});
  EXPECT_NE(by_header.body.find("配置偏差审核"), std::string::npos);
  HttpResult report = Page("/ui/reports/operations?month=2026-11", cookie);
  EXPECT_EQ(report.status, 200);
  EXPECT_NE(report.body.find("Operations review 2026-11"), std::string::npos);
  EXPECT_NE(report.header("content-security-policy").find("default-src 'none'"), std::string::npos);
}

}  // namespace
}  // namespace cmdb::testing
