// The web UI: pages under /ui/ rendered by ui/ from the JSON the API's own routes answer (each
// page dispatches its reads and writes through the router as the signed-in user, so the UI has
// no data path, access rule or audit trail of its own), signed in with an HttpOnly session
// cookie holding the user's token, every form and htmx call carrying the session's
// anti-forgery token.

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <boost/json.hpp>

#include "auth/authenticator.hpp"
#include "auth/token.hpp"
#include "model/json.hpp"
#include "model/timestamp.hpp"
#include "server/handlers/handlers.hpp"
#include "server/problem.hpp"
#include "ui/ui.hpp"

namespace cmdb::server::handlers {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

constexpr const char* kLangCookie = "cmdb_lang";

ui::Lang PageLang(const Request& request) {
  if (auto lang = request.Query("lang"); lang && (*lang == "zh" || *lang == "en")) {
    return *lang == "zh" ? ui::Lang::kZh : ui::Lang::kEn;
  }
  const std::string remembered = CookieValue(request.Header("cookie"), kLangCookie);
  if (remembered == "zh" || remembered == "en") {
    return remembered == "zh" ? ui::Lang::kZh : ui::Lang::kEn;
  }
  return reports::LangFromAcceptLanguage(request.Header("accept-language"));
}

// The token the request is signed in with: the session cookie, or a Bearer header.
std::string SessionToken(const Request& request) {
  std::string token = CookieValue(request.Header("cookie"), kSessionCookie);
  if (token.empty()) {
    const std::string_view auth = request.Header("authorization");
    if (auth.rfind("Bearer ", 0) == 0) token = std::string(auth.substr(7));
  }
  return token;
}

ui::Viewer ViewerOf(const Request& request, const AppContext& ctx) {
  ui::Viewer v;
  const model::Principal& p = Caller(request);
  v.user = p.user;
  v.roles = p.roles.Describe();
  v.csrf = auth::CsrfToken(ctx.pepper, SessionToken(request));
  v.admin = p.Allows(model::Role::kAdmin) || p.Allows(model::Role::kAuditor);
  return v;
}

std::string Target(const Request& request) {
  return request.target.empty() ? request.path : request.target;
}

Response Html(const Request& request, int status, std::string body) {
  Response response;
  response.status = status;
  response.content_type = "text/html; charset=utf-8";
  response.body = std::move(body);
  // A language chosen in the page is remembered for a year.
  if (auto lang = request.Query("lang"); lang && (*lang == "zh" || *lang == "en")) {
    response.headers.emplace_back(
        "Set-Cookie",
        std::string(kLangCookie) + "=" + *lang + "; Path=/ui; Max-Age=31536000; SameSite=Strict");
  }
  return response;
}

Response Page(const Request& request, const AppContext& ctx, std::string_view page,
              const std::string& title, json::object data) {
  const ui::Lang lang = PageLang(request);
  const ui::Viewer viewer = ViewerOf(request, ctx);
  return Html(request, 200,
              ui::RenderPage(page, title, std::move(data), &viewer, lang, Target(request)));
}

Response Redirect(std::string location) {
  Response response;
  response.status = 303;
  response.content_type.clear();
  response.headers.emplace_back("Location", std::move(location));
  return response;
}

ErrorCode CodeOf(int status) {
  switch (status) {
    case 400:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 412:
      return ErrorCode::kVersionMismatch;
    case 429:
      return ErrorCode::kTooManyRequests;
    case 422:
      return ErrorCode::kValidationFailed;
    case 503:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

// `sub` (its method, path and query set) through the API's own route, as the signed-in user of
// `request`: the answer as the API gives it.
Response AsUser(const Request& request, AppContext& ctx, Request sub) {
  if (sub.target.empty()) sub.target = sub.path;
  sub.headers.emplace_back("authorization", "Bearer " + SessionToken(request));
  sub.request_id = request.request_id;
  sub.client_address = request.client_address;
  return ctx.router->Dispatch(sub, ctx);
}

// `method target` through the API's own route, as the signed-in user; the JSON it answers.
// Throws the API's problem as an Error (its status and detail kept).
json::value Api(const Request& request, AppContext& ctx, const std::string& method,
                const std::string& target, const std::string& body = "") {
  Request sub;
  sub.method = method;
  sub.target = target;
  if (!ParseTarget(target, sub.path, sub.query)) {
    throw Error(ErrorCode::kInternal, "the UI built a malformed target: " + target);
  }
  if (!body.empty()) sub.headers.emplace_back("content-type", "application/json");
  sub.body = body;
  const Response r = AsUser(request, ctx, std::move(sub));
  json::value parsed;
  if (!r.body.empty() && r.content_type.find("json") != std::string::npos) {
    parsed = model::ParseStoredJson(r.body);
  }
  if (r.status >= 400) {
    std::string detail = "HTTP " + std::to_string(r.status);
    if (parsed.is_object() && parsed.as_object().contains("detail")) {
      detail = std::string(parsed.at("detail").as_string());
    }
    // A validation failure names its fields: shown on the page too.
    if (const json::value* errors =
            parsed.is_object() ? parsed.as_object().if_contains("errors") : nullptr;
        errors != nullptr && errors->is_array()) {
      std::string fields;
      for (const json::value& e : errors->as_array()) {
        if (!e.is_object() || !e.as_object().contains("field")) continue;
        fields += (fields.empty() ? "" : "; ") + json::value_to<std::string>(e.at("field")) + ": " +
                  json::value_to<std::string>(e.at("message"));
      }
      if (!fields.empty()) detail += " (" + fields + ")";
    }
    throw Error(CodeOf(r.status), detail);
  }
  return parsed;
}

// A query string of the request's parameters `names` (those given and not empty).
std::string PassQuery(const Request& request, std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (auto v = request.Query(name); v && !v->empty()) {
      out += (out.empty() ? "?" : "&") + std::string(name) + "=" + UrlEncode(*v);
    }
  }
  return out;
}

// The fields of an application/x-www-form-urlencoded body.
std::vector<std::pair<std::string, std::string>> Form(const Request& request) {
  std::string body = request.body;
  std::replace(body.begin(), body.end(), '+', ' ');
  std::string path;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string encoded = "/?";
  for (char c : body) encoded += c == ' ' ? std::string("%20") : std::string(1, c);
  if (!ParseTarget(encoded, path, fields)) {
    throw Error(ErrorCode::kInvalidArgument, "the form is malformed");
  }
  return fields;
}

std::string FormField(const std::vector<std::pair<std::string, std::string>>& form,
                      std::string_view name) {
  for (const auto& [k, v] : form) {
    if (k == name) return v;
  }
  return "";
}

// Every write of the UI carries the session's anti-forgery token: in the X-CSRF-Token header
// (htmx) or the form's csrf field.
void CheckCsrf(const Request& request, const AppContext& ctx) {
  std::string given(request.Header("x-csrf-token"));
  if (given.empty() && request.MediaType() == "application/x-www-form-urlencoded") {
    given = FormField(Form(request), "csrf");
  }
  if (!auth::CsrfTokenMatches(ctx.pepper, SessionToken(request), given)) {
    throw Error(ErrorCode::kPermissionDenied, ui::Tr(PageLang(request), "csrf_failed"));
  }
}

json::array Options(std::initializer_list<std::string_view> names,
                    const std::optional<std::string>& chosen) {
  json::array out;
  for (std::string_view n : names)
    out.push_back(json::object{{"name", n}, {"selected", chosen && *chosen == n}});
  return out;
}

// Graphviz's SVG document without its XML prolog, to sit inside the page.
std::string InlineSvg(const std::string& svg) {
  const std::size_t at = svg.find("<svg");
  return at == std::string::npos ? std::string() : svg.substr(at);
}

// --- pages ---

Response UiRoot(const Request&, const PathParams&, AppContext&) { return Redirect("/ui/"); }

Response LoginPage(const Request& request, const PathParams&, AppContext&) {
  const ui::Lang lang = PageLang(request);
  json::object data{{"next", request.Query("next").value_or("/ui/")}, {"error", nullptr}};
  return Html(request, 200,
              ui::RenderPage("login", ui::Tr(lang, "sign_in"), std::move(data), nullptr, lang,
                             Target(request)));
}

Response SignIn(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  // No session yet, so no anti-forgery token: a sign-in posted by another site's page (which
  // would sign the browser in as someone else) is told apart by its Origin instead.
  const std::string_view origin = request.Header("origin");
  const std::string_view host = request.Header("host");
  if (!origin.empty() && origin != "null" && origin != "http://" + std::string(host) &&
      origin != "https://" + std::string(host)) {
    throw Error(ErrorCode::kPermissionDenied, "a sign-in is only taken from this site's own page");
  }
  const auto form = Form(request);
  const std::string token = FormField(form, "token");
  std::string next = FormField(form, "next");
  // Only a page of the UI: never a redirect to another site.
  if (next.rfind("/ui/", 0) != 0 || next.find("//") != std::string::npos) next = "/ui/";
  try {
    if (ctx.auth == nullptr || token.empty()) throw Error(ErrorCode::kUnauthenticated, "no token");
    request.principal = ctx.auth->Authenticate("Bearer " + token, request.client_address);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnauthenticated) throw;
    json::object data{{"next", next}, {"error", ui::Tr(lang, "bad_token")}};
    return Html(request, 401,
                ui::RenderPage("login", ui::Tr(lang, "sign_in"), std::move(data), nullptr, lang,
                               Target(request)));
  }
  Response response = Redirect(next);
  // HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it; it lasts as
  // long as the browser session, and the token's own expiry or revocation ends it sooner.
  response.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + token +
                                                  "; Path=/ui; HttpOnly; SameSite=Strict" +
                                                  (ctx.tls ? "; Secure" : ""));
  return response;
}

Response SignOut(const Request& request, const PathParams&, AppContext& ctx) {
  CheckCsrf(request, ctx);
  Response response = Redirect("/ui/login");
  response.headers.emplace_back(
      "Set-Cookie",
      std::string(kSessionCookie) + "=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
  return response;
}

Response StaticAsset(const Request&, const PathParams& params, AppContext&) {
  const ui::Asset* asset = ui::FindAsset(params.at("file"));
  if (asset == nullptr) throw Error(ErrorCode::kNotFound, "no such file");
  Response response;
  response.content_type = std::string(asset->content_type);
  response.body = std::string(asset->body);
  // The name carries a hash of the content: it never changes under the same name.
  response.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
  return response;
}

Response Home(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const model::Principal& p = Caller(request);
  json::object data{{"viewer_name", p.user}, {"roles", p.roles.Describe()}};
  data["drift"] = Api(request, ctx, "GET", "/api/v1/drift?state=open&limit=5");
  data["changes"] = Api(request, ctx, "GET", "/api/v1/changes?state=submitted&limit=5");
  json::value incidents = Api(request, ctx, "GET", "/api/v1/incidents?state=new&limit=5");
  data["incidents"] = incidents;
  return Page(request, ctx, "home", ui::Tr(lang, "home"), std::move(data));
}

Response CiList(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  std::string query = PassQuery(request, {"q", "type", "status", "owner", "tag", "cursor"});
  // One attribute condition typed as "name=value" (the API's attr.<name>=value).
  const std::string attr = request.Query("attr").value_or("");
  if (const std::size_t eq = attr.find('='); eq != std::string::npos && eq > 0) {
    query += (query.empty() ? "?" : "&") + std::string("attr.") + UrlEncode(attr.substr(0, eq)) +
             "=" + UrlEncode(attr.substr(eq + 1));
  }
  data["cis"] =
      Api(request, ctx, "GET", "/api/v1/cis" + query + (query.empty() ? "?" : "&") + "limit=50");
  json::object q;
  for (const char* name : {"q", "owner", "tag", "attr"}) q[name] = request.Query(name).value_or("");
  data["query"] = q;
  json::array types;
  const json::value catalogue = Api(request, ctx, "GET", "/api/v1/ci-types");
  const std::optional<std::string> type = request.Query("type");
  for (const json::value& t : catalogue.at("items").as_array()) {
    types.push_back(
        json::object{{"name", t.at("name")}, {"selected", type && t.at("name") == type->c_str()}});
  }
  data["types"] = std::move(types);
  data["statuses"] =
      Options({"planned", "active", "maintenance", "retired"}, request.Query("status"));
  const json::value& cursor = data["cis"].at("next_cursor");
  if (cursor.is_string()) {
    const std::string kept = PassQuery(request, {"q", "type", "status", "owner", "tag", "attr"});
    data["next_url"] =
        "/ui/cis" + kept + (kept.empty() ? "?" : "&") + "cursor=" + UrlEncode(cursor.as_string());
  }
  return Page(request, ctx, "cis", ui::Tr(lang, "nav_cis"), std::move(data));
}

Response CiDetail(const Request& request, const PathParams& params, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const std::string id = std::to_string(ParseId(params.at("id"), "CI id"));
  json::object data;
  const json::value ci = Api(request, ctx, "GET", "/api/v1/cis/" + id);
  data["ci"] = ci;
  json::array attributes;
  for (const auto& [name, value] : ci.at("attributes").as_object()) {
    attributes.push_back(
        json::object{{"name", name},
                     {"value", value.is_string() ? value : json::value(json::serialize(value))}});
  }
  data["attributes"] = std::move(attributes);
  json::array relations;
  const json::value rels = Api(request, ctx, "GET", "/api/v1/relations?ci=" + id + "&limit=200");
  const std::int64_t self = ci.at("id").as_int64();
  for (const json::value& r : rels.at("items").as_array()) {
    const bool out = r.at("from").as_int64() == self;
    relations.push_back(json::object{{"direction", ui::Tr(lang, out ? "rel_out" : "rel_in")},
                                     {"type", r.at("type")},
                                     {"other", out ? r.at("to") : r.at("from")}});
  }
  data["relations"] = std::move(relations);
  json::array history;
  const json::value versions = Api(request, ctx, "GET", "/api/v1/cis/" + id + "/history?limit=20");
  for (const json::value& v : versions.at("items").as_array()) {
    json::array diff;
    if (const json::value* d = v.as_object().if_contains("diff");
        d != nullptr && d->is_object() && v.at("version").as_int64() > 1) {
      for (const auto& [field, change] : d->as_object()) {
        auto text = [](const json::value* x) {
          return x == nullptr     ? std::string()
                 : x->is_string() ? std::string(x->as_string())
                                  : json::serialize(*x);
        };
        const json::object* c = change.if_object();
        diff.push_back(json::object{
            {"field", field},
            {"from", c != nullptr ? text(c->if_contains("from")) : std::string()},
            {"to", c != nullptr ? text(c->if_contains("to")) : json::serialize(change)}});
      }
    }
    json::object row = v.as_object();
    row["diff"] = diff.empty() ? json::value(false) : json::value(std::move(diff));
    history.push_back(std::move(row));
  }
  data["history"] = std::move(history);
  json::object audit;
  json::array rules;
  const json::value ci_audit = Api(request, ctx, "GET", "/api/v1/cis/" + id + "/audit");
  for (const json::value& r : ci_audit.at("results").as_array()) {
    const std::string outcome(r.at("outcome").as_string());
    rules.push_back(json::object{{"key", r.at("rule")},
                                 {"outcome", ui::Tr(lang, outcome)},
                                 {"failed", outcome == "fail" || outcome == "error"},
                                 {"message", r.at("message")}});
  }
  audit["rules"] = std::move(rules);
  data["audit"] = std::move(audit);
  json::value drift = Api(request, ctx, "GET", "/api/v1/drift?state=open&ci=" + id);
  for (json::value& f : drift.at("items").as_array()) {
    f.as_object()["expected"] = json::serialize(f.at("expected"));
    f.as_object()["actual"] = json::serialize(f.at("actual"));
  }
  data["drift"] = std::move(drift);
  data["incidents"] = Api(request, ctx, "GET", "/api/v1/incidents?ci=" + id + "&limit=20");
  data["changes"] = Api(request, ctx, "GET", "/api/v1/changes?ci=" + id + "&limit=20");
  return Page(request, ctx, "ci", std::string(ci.at("name").as_string()), std::move(data));
}

Response CiImpact(const Request& request, const PathParams& params, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const std::string id = std::to_string(ParseId(params.at("id"), "CI id"));
  // A datetime-local control sends "2026-12-06T10:00[:00]", read as UTC (the page says so).
  Request query = request;
  for (auto& [k, v] : query.query) {
    if (k == "as_of" && !v.empty() && v.find('Z') == std::string::npos &&
        v.find('+') == std::string::npos) {
      v += v.size() == 16 ? ":00Z" : "Z";
    }
  }
  query.query.erase(
      std::remove_if(query.query.begin(), query.query.end(),
                     [](const auto& kv) { return kv.second.empty() || kv.first == "lang"; }),
      query.query.end());
  std::string api_query;
  for (const auto& [k, v] : query.query) {
    if (k == "direction" || k == "depth" || k == "as_of") api_query += "&" + k + "=" + UrlEncode(v);
  }
  json::object data;
  data["ci"] = Api(request, ctx, "GET", "/api/v1/cis/" + id);
  const json::value impact =
      Api(request, ctx, "GET", "/api/v1/cis/" + id + "/impact?max_nodes=10000" + api_query);
  data["impact"] =
      json::object{{"count", static_cast<std::int64_t>(impact.at("nodes").as_array().size())},
                   {"truncated", impact.at("truncated")}};
  data["services"] = impact.at("services");
  data["down"] = request.Query("direction").value_or("down") != "up";
  data["depth"] = request.Query("depth").value_or("");
  data["as_of"] = request.Query("as_of").value_or("");
  const std::string direction =
      request.Query("direction").value_or("down") == "up" ? "?direction=up" : "";
  const Response svg = CiImpactGraph(query, params, ctx, "/ui/cis/{id}/impact" + direction);
  data["svg"] = InlineSvg(svg.body);
  return Page(request, ctx, "impact", ui::Tr(lang, "impact_graph"), std::move(data));
}

json::object DriftRowData(const json::value& finding, bool can_decide) {
  json::object row = finding.as_object();
  row["ci_id"] = finding.at("ci");
  row["expected"] = json::serialize(finding.at("expected"));
  row["actual"] = json::serialize(finding.at("actual"));
  row["can_decide"] = can_decide && finding.at("state") == "open";
  return row;
}

Response DriftQueue(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const bool can_decide = Caller(request).Allows(model::Role::kAssetAdmin);
  json::array rows;
  const json::value open = Api(request, ctx, "GET", "/api/v1/drift?state=open&limit=200");
  for (const json::value& f : open.at("items").as_array())
    rows.push_back(DriftRowData(f, can_decide));
  return Page(request, ctx, "drift", ui::Tr(lang, "drift_queue"),
              json::object{{"findings", std::move(rows)}});
}

Response DecideDrift(const Request& request, const PathParams& params, AppContext& ctx,
                     const char* action) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "finding id"));
  const json::value finding = Api(request, ctx, "POST", "/api/v1/drift/" + id + "/" + action, "{}");
  const ui::Lang lang = PageLang(request);
  return Html(
      request, 200,
      ui::RenderFragment("drift_row", DriftRowData(finding, true), ViewerOf(request, ctx), lang));
}

Response AcceptDriftUi(const Request& r, const PathParams& p, AppContext& c) {
  return DecideDrift(r, p, c, "accept");
}
Response IgnoreDriftUi(const Request& r, const PathParams& p, AppContext& c) {
  return DecideDrift(r, p, c, "ignore");
}

Response ChangeList(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  data["changes"] = Api(
      request, ctx, "GET",
      "/api/v1/changes" + PassQuery(request, {"state"}) +
          (request.Query("state") && !request.Query("state")->empty() ? "&" : "?") + "limit=100");
  data["states"] = Options({"draft", "submitted", "approved", "rejected", "in_progress",
                            "completed", "failed", "cancelled"},
                           request.Query("state"));
  return Page(request, ctx, "changes", ui::Tr(lang, "nav_changes"), std::move(data));
}

Response ChangeDetail(const Request& request, const PathParams& params, AppContext& ctx) {
  const std::string id = std::to_string(ParseId(params.at("id"), "change id"));
  const ui::Lang lang = PageLang(request);
  json::object data;
  const json::value change = Api(request, ctx, "GET", "/api/v1/changes/" + id);
  data["change"] = change;
  const json::value impact = Api(request, ctx, "GET", "/api/v1/changes/" + id + "/impact");
  data["impact"] = impact;
  // Only a reviewer, never the requester, and only while it awaits review.
  const model::Principal& p = Caller(request);
  data["can_review"] = p.Allows(model::Role::kChangeReviewer) &&
                       change.at("state") == "submitted" &&
                       change.at("requested_by") != p.user.c_str();
  if (auto done = request.Query("done"); done && (*done == "approved" || *done == "rejected")) {
    data["message"] = ui::Tr(lang, *done);
  }
  // The picture is SVG, not JSON: fetched as it is.
  Request svg;
  svg.method = "GET";
  svg.path = "/api/v1/changes/" + id + "/impact/graph";
  svg.query = {{"format", "svg"}};
  const Response picture = AsUser(request, ctx, std::move(svg));
  data["svg"] = picture.status == 200 ? InlineSvg(picture.body) : std::string();
  return Page(request, ctx, "change", "#" + id + " " + std::string(change.at("title").as_string()),
              std::move(data));
}

Response ReviewChange(const Request& request, const PathParams& params, AppContext& ctx,
                      const char* action) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "change id"));
  const std::string reason = FormField(Form(request), "reason");
  Api(request, ctx, "POST", "/api/v1/changes/" + id + "/" + action,
      json::serialize(json::object{{"reason", reason}}));
  return Redirect("/ui/changes/" + id +
                  "?done=" + (std::string(action) == "approve" ? "approved" : "rejected"));
}

Response ApproveChangeUi(const Request& r, const PathParams& p, AppContext& c) {
  return ReviewChange(r, p, c, "approve");
}
Response RejectChangeUi(const Request& r, const PathParams& p, AppContext& c) {
  return ReviewChange(r, p, c, "reject");
}

Response Reports(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const std::string now = model::FormatTimestamp(model::Timestamp::Now());
  return Page(request, ctx, "reports", ui::Tr(lang, "nav_reports"),
              json::object{{"month", now.substr(0, 7)}});
}

// A report as its API endpoint renders it (HTML by default here), in the page's language.
Response Report(const Request& request, const PathParams& params, AppContext& ctx) {
  const std::string& name = params.at("name");
  static const std::map<std::string, std::string, std::less<>> kReports{
      {"operations", "/api/v1/reports/operations"},
      {"inventory", "/api/v1/reports/inventory"},
      {"drift", "/api/v1/reports/drift"},
      {"audit", "/api/v1/reports/audit"},
      {"changes", "/api/v1/reports/changes"}};
  auto it = kReports.find(name);
  if (it == kReports.end()) throw Error(ErrorCode::kNotFound, "no report named " + name);
  Request sub;
  sub.method = "GET";
  sub.path = it->second;
  bool format = false;
  for (const auto& [k, v] : request.query) {
    if (k == "lang") continue;
    format = format || k == "format";
    sub.query.emplace_back(k, v);
  }
  if (!format) sub.query.emplace_back("format", "html");
  sub.query.emplace_back("lang", PageLang(request) == ui::Lang::kZh ? "zh" : "en");
  Response r = AsUser(request, ctx, std::move(sub));
  if (r.content_type.rfind("text/html", 0) == 0) {
    // The report page carries its own inline style and no script.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  }
  return r;
}

// --- incidents ---

Response IncidentList(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  const std::optional<std::string> state = request.Query("state");
  data["incidents"] = Api(request, ctx, "GET",
                          "/api/v1/incidents" + PassQuery(request, {"state"}) +
                              (state && !state->empty() ? "&" : "?") + "limit=100");
  data["states"] = Options({"new", "in_progress", "resolved", "closed"}, state);
  return Page(request, ctx, "incidents", ui::Tr(lang, "nav_incidents"), std::move(data));
}

Response IncidentDetail(const Request& request, const PathParams& params, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  const std::string id = std::to_string(ParseId(params.at("id"), "incident id"));
  json::object data;
  const json::value incident = Api(request, ctx, "GET", "/api/v1/incidents/" + id);
  data["incident"] = incident;
  data["trace"] = Api(request, ctx, "GET", "/api/v1/incidents/" + id + "/trace");
  data["events"] = Api(request, ctx, "GET", "/api/v1/incidents/" + id + "/events");
  // What the API would allow: a handler acts, escalating only from their own tier.
  const model::Principal& p = Caller(request);
  const std::string allowed(incident.at("allowed_actions").as_string());
  const bool handler = p.Allows(model::Role::kIncidentHandler);
  const bool own_tier =
      p.roles.Contains(model::Role::kAdmin) || p.tier.value_or(0) == incident.at("tier").as_int64();
  const bool can_escalate = handler && own_tier && allowed.find("escalate") != std::string::npos;
  const bool can_resolve = handler && allowed.find("resolve") != std::string::npos;
  data["can_escalate"] = can_escalate;
  data["can_resolve"] = can_resolve;
  data["can_act"] = can_escalate || can_resolve;
  if (auto done = request.Query("done");
      done && (*done == "escalated" || *done == "resolved_msg")) {
    data["message"] = ui::Tr(lang, *done);
  }
  return Page(request, ctx, "incident",
              "#" + id + " " + std::string(incident.at("title").as_string()), std::move(data));
}

Response ActOnIncident(const Request& request, const PathParams& params, AppContext& ctx,
                       const char* action) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "incident id"));
  const std::string reason = FormField(Form(request), "reason");
  json::object body;
  if (std::string(action) == "escalate") body["reason"] = reason;
  if (std::string(action) == "resolve" && !reason.empty()) body["resolution"] = reason;
  Api(request, ctx, "POST", "/api/v1/incidents/" + id + "/" + action, json::serialize(body));
  return Redirect("/ui/incidents/" + id +
                  "?done=" + (std::string(action) == "escalate" ? "escalated" : "resolved_msg"));
}

Response EscalateIncidentUi(const Request& r, const PathParams& p, AppContext& c) {
  return ActOnIncident(r, p, c, "escalate");
}
Response ResolveIncidentUi(const Request& r, const PathParams& p, AppContext& c) {
  return ActOnIncident(r, p, c, "resolve");
}

// --- audit ---

Response AuditDashboard(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  const json::value runs = Api(request, ctx, "GET", "/api/v1/audit/runs?limit=20");
  json::array rules;
  for (const json::value& run : runs.at("items").as_array()) {
    if (run.at("state") != "succeeded") continue;
    const json::value full =
        Api(request, ctx, "GET", "/api/v1/audit/runs/" + std::to_string(run.at("id").as_int64()));
    data["run"] = full;
    if (const json::object* counts = full.at("rules").if_object()) {
      for (const auto& [key, c] : *counts) {
        json::object row = c.as_object();
        row["key"] = key;
        row["failing"] = c.at("fail").as_int64() > 0;
        rules.push_back(std::move(row));
      }
    }
    break;
  }
  if (!data.contains("run")) data["run"] = nullptr;
  // The score trend: the overall series, its last 60 runs, drawn as the audit report draws it.
  const json::value scores = Api(request, ctx, "GET", "/api/v1/audit/scores?group_by=overall");
  reports::Chart trend;
  trend.kind = reports::Chart::Kind::kLine;
  trend.title = ui::Tr(lang, "score_trend");
  trend.max = 100;
  for (const json::value& series : scores.at("series").as_array()) {
    const json::array& points = series.at("points").as_array();
    for (std::size_t i = points.size() > 60 ? points.size() - 60 : 0; i < points.size(); ++i) {
      const std::int64_t pass = points[i].at("pass").as_int64();
      const std::int64_t fail = points[i].at("fail").as_int64();
      const double pct = pass + fail == 0
                             ? 0
                             : 100.0 * static_cast<double>(pass) / static_cast<double>(pass + fail);
      char text[32];
      std::snprintf(text, sizeof text, "%.1f %%", pct);
      trend.points.push_back(
          {std::string(points[i].at("at").as_string()).substr(0, 10), pct, text});
    }
  }
  data["trend_svg"] =
      trend.points.empty() ? json::value(nullptr) : json::value(reports::RenderChartSvg(trend));
  data["rules"] = std::move(rules);
  json::value findings = Api(request, ctx, "GET", "/api/v1/audit/findings?state=open&limit=100");
  const bool can_waive = Caller(request).Allows(model::Role::kAssetAdmin);
  for (json::value& f : findings.at("items").as_array()) f.as_object()["can_waive"] = can_waive;
  data["findings"] = std::move(findings);
  return Page(request, ctx, "audit", ui::Tr(lang, "audit_dashboard"), std::move(data));
}

Response WaiveFindingUi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "finding id"));
  const auto form = Form(request);
  std::string until = FormField(form, "until");
  if (until.size() == 10) until += "T23:59:59Z";  // a date control: the end of that day, UTC
  Api(request, ctx, "POST", "/api/v1/audit/findings/" + id + "/waive",
      json::serialize(json::object{{"reason", FormField(form, "reason")}, {"until", until}}));
  return Redirect("/ui/audit");
}

// --- knowledge ---

Response KnowledgeQueue(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::value articles = Api(request, ctx, "GET", "/api/v1/knowledge?state=draft&limit=100");
  const model::Principal& p = Caller(request);
  for (json::value& a : articles.at("items").as_array()) {
    // A lead approves their own line's articles, never their own (admin: any line's).
    const json::value& tier = a.at("created_by_tier");
    const bool line = p.roles.Contains(model::Role::kAdmin) ||
                      (tier.is_int64() && p.tier && *p.tier == tier.as_int64());
    a.as_object()["can_approve"] =
        p.Allows(model::Role::kGroupLead) && line && a.at("created_by") != p.user.c_str();
  }
  return Page(request, ctx, "knowledge", ui::Tr(lang, "knowledge_review"),
              json::object{{"articles", std::move(articles)}});
}

Response ApproveArticleUi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "article id"));
  Api(request, ctx, "POST", "/api/v1/knowledge/" + id + "/approve", "{}");
  return Redirect("/ui/knowledge");
}

// --- quality review ---

Response QualityReview(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  json::value complaints = Api(request, ctx, "GET", "/api/v1/complaints?limit=100");
  const bool can_step = Caller(request).Allows(model::Role::kQualityAuditor);
  for (json::value& c : complaints.at("items").as_array()) {
    json::object& o = c.as_object();
    const std::string state(o.at("state").as_string());
    const char* next = state == "open"         ? "rectify"
                       : state == "rectifying" ? "verify"
                       : state == "verified"   ? "close"
                                               : nullptr;
    o["next_step"] = can_step && next != nullptr ? json::value(next) : json::value(nullptr);
    o["needs_due"] = next != nullptr && std::string(next) != "close";
    if (next != nullptr) o["next_step_label"] = ui::Tr(lang, std::string("step_") + next);
  }
  data["complaints"] = std::move(complaints);
  const json::value key_users = Api(request, ctx, "GET", "/api/v1/key-users?active=true&limit=100");
  json::array pairs;  // (key user, service) for the call form
  for (const json::value& u : key_users.at("items").as_array()) {
    for (const json::value& service : u.at("service_ids").as_array()) {
      pairs.push_back(json::object{{"value", std::to_string(u.at("id").as_int64()) + ":" +
                                                 std::to_string(service.as_int64())},
                                   {"label", std::string(u.at("name").as_string()) + " — #" +
                                                 std::to_string(service.as_int64())}});
    }
  }
  const model::Principal& p = Caller(request);
  data["can_call"] =
      !pairs.empty() && (p.Allows(model::Role::kQualityAuditor) || p.tier.value_or(0) == 1);
  data["can_complain"] = can_step;
  data["key_user_services"] = std::move(pairs);
  data["key_users"] = key_users;
  if (auto done = request.Query("done");
      done && (*done == "callback_recorded" || *done == "complaint_opened")) {
    data["message"] = ui::Tr(lang, *done);
  }
  data["callbacks"] = Api(request, ctx, "GET", "/api/v1/callbacks?limit=50");
  return Page(request, ctx, "quality", ui::Tr(lang, "quality_review"), std::move(data));
}

Response ComplaintStepUi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "complaint id"));
  const std::string& step = params.at("step");
  if (step != "rectify" && step != "verify" && step != "close")
    throw Error(ErrorCode::kNotFound, "no such step");
  const auto form = Form(request);
  json::object body{{"note", FormField(form, "note")}, {"owner", FormField(form, "owner")}};
  std::string due = FormField(form, "due_at");
  if (!due.empty()) body["due_at"] = due.size() == 10 ? due + "T23:59:59Z" : due;
  Api(request, ctx, "POST", "/api/v1/complaints/" + id + "/" + step, json::serialize(body));
  return Redirect("/ui/quality");
}

Response RecordCallbackUi(const Request& request, const PathParams&, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const auto form = Form(request);
  const std::string pair = FormField(form, "key_user");
  const std::size_t colon = pair.find(':');
  if (colon == std::string::npos)
    throw Error(ErrorCode::kInvalidArgument, "choose a key user and service");
  std::string at = FormField(form, "called_at");
  if (at.size() == 16) at += ":00";
  if (!at.empty() && at.find('Z') == std::string::npos)
    at += "Z";  // the control's time, read as UTC
  json::object body{{"key_user_id", std::stoll(pair.substr(0, colon))},
                    {"service_id", std::stoll(pair.substr(colon + 1))},
                    {"called_at", at},
                    {"reached", FormField(form, "reached") == "true"},
                    {"comment", FormField(form, "comment")}};
  const std::string score = FormField(form, "score");
  if (!score.empty() && FormField(form, "reached") == "true") body["score"] = std::stoll(score);
  Api(request, ctx, "POST", "/api/v1/callbacks", json::serialize(body));
  return Redirect("/ui/quality?done=callback_recorded");
}

Response OpenComplaintUi(const Request& request, const PathParams&, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const auto form = Form(request);
  std::string due = FormField(form, "due_at");
  if (due.size() == 10) due += "T23:59:59Z";
  json::object body{{"title", FormField(form, "title")},
                    {"complainant", FormField(form, "complainant")},
                    {"owner", FormField(form, "owner")},
                    {"due_at", due},
                    {"note", FormField(form, "note")}};
  if (const std::string handler = FormField(form, "handler"); !handler.empty())
    body["handler"] = handler;
  Api(request, ctx, "POST", "/api/v1/complaints", json::serialize(body));
  return Redirect("/ui/quality?done=complaint_opened");
}

// --- tokens: one's own, or (admin) anyone's ---

std::string TokenUser(const Request& request, const std::string& given) {
  return given.empty() ? Caller(request).user : given;
}

Response TokensPage(const Request& request, AppContext& ctx, const std::string& created) {
  const ui::Lang lang = PageLang(request);
  const std::string user = TokenUser(request, request.Query("user").value_or(""));
  json::object data{{"user", user},
                    {"created", created.empty() ? json::value(nullptr) : json::value(created)}};
  data["tokens"] = Api(request, ctx, "GET", "/api/v1/users/" + UrlEncode(user) + "/tokens");
  return Page(request, ctx, "tokens", ui::Tr(lang, "my_tokens"), std::move(data));
}

Response Tokens(const Request& r, const PathParams&, AppContext& c) { return TokensPage(r, c, ""); }

Response CreateTokenUi(const Request& request, const PathParams&, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const auto form = Form(request);
  const std::string user = TokenUser(request, FormField(form, "user"));
  json::object body{{"name", FormField(form, "name")}};
  if (const std::string days = FormField(form, "expires_in_days"); !days.empty()) {
    body["expires_in_days"] = std::stoll(days);
  }
  const json::value token = Api(
      request, ctx, "POST", "/api/v1/users/" + UrlEncode(user) + "/tokens", json::serialize(body));
  // The secret is shown in this answer only (a redirect would carry it in a URL).
  Request shown = request;
  shown.method = "GET";
  shown.query = {{"user", user}};
  return TokensPage(shown, ctx, std::string(token.at("token").as_string()));
}

Response RevokeTokenUi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckCsrf(request, ctx);
  const std::string id = std::to_string(ParseId(params.at("id"), "token id"));
  const std::string user = TokenUser(request, FormField(Form(request), "user"));
  Api(request, ctx, "DELETE", "/api/v1/tokens/" + id);
  return Redirect("/ui/tokens?user=" + UrlEncode(user));
}

// --- administration ---

Response Administration(const Request& request, const PathParams&, AppContext& ctx) {
  const ui::Lang lang = PageLang(request);
  json::object data;
  data["users"] = Api(request, ctx, "GET", "/api/v1/users?limit=200");
  data["log"] = Api(request, ctx, "GET", "/api/v1/audit-log?limit=50");
  return Page(request, ctx, "admin", ui::Tr(lang, "administration"), std::move(data));
}

}  // namespace

std::vector<Route> UiRoutes() {
  using model::Role;
  const Access anyone = Public();
  const Access signed_in = SignedIn();
  const Access reader = Needs(Role::kViewer);
  return {
      {"GET", "/ui", UiRoot, anyone},
      {"GET", "/ui/login", LoginPage, anyone},
      {"POST", "/ui/login", SignIn, anyone},
      {"POST", "/ui/logout", SignOut, signed_in},
      {"GET", "/ui/static/{file}", StaticAsset, anyone},
      {"GET", "/ui/", Home, reader},
      {"GET", "/ui/cis", CiList, reader},
      {"GET", "/ui/cis/{id}", CiDetail, reader},
      {"GET", "/ui/cis/{id}/impact", CiImpact, reader},
      {"GET", "/ui/drift", DriftQueue, reader},
      {"POST", "/ui/drift/{id}/accept", AcceptDriftUi, Needs(Role::kAssetAdmin)},
      {"POST", "/ui/drift/{id}/ignore", IgnoreDriftUi, Needs(Role::kAssetAdmin)},
      {"GET", "/ui/changes", ChangeList, reader},
      {"GET", "/ui/changes/{id}", ChangeDetail, reader},
      {"POST", "/ui/changes/{id}/approve", ApproveChangeUi, Needs(Role::kChangeReviewer)},
      {"POST", "/ui/changes/{id}/reject", RejectChangeUi, Needs(Role::kChangeReviewer)},
      {"GET", "/ui/incidents", IncidentList, reader},
      {"GET", "/ui/incidents/{id}", IncidentDetail, reader},
      {"POST", "/ui/incidents/{id}/escalate", EscalateIncidentUi, Needs(Role::kIncidentHandler)},
      {"POST", "/ui/incidents/{id}/resolve", ResolveIncidentUi, Needs(Role::kIncidentHandler)},
      {"GET", "/ui/audit", AuditDashboard, reader},
      {"POST", "/ui/audit/findings/{id}/waive", WaiveFindingUi, Needs(Role::kAssetAdmin)},
      {"GET", "/ui/knowledge", KnowledgeQueue, reader},
      {"POST", "/ui/knowledge/{id}/approve", ApproveArticleUi, Needs(Role::kGroupLead)},
      {"GET", "/ui/quality", QualityReview, reader},
      {"POST", "/ui/complaints/{id}/{step}", ComplaintStepUi, Needs(Role::kQualityAuditor)},
      {"GET", "/ui/admin", Administration, NeedsAnyOf({Role::kAdmin, Role::kAuditor})},
      {"GET", "/ui/reports", Reports, reader},
      {"POST", "/ui/callbacks", RecordCallbackUi,
       NeedsAnyOf({Role::kQualityAuditor, Role::kIncidentHandler})},
      {"POST", "/ui/complaints", OpenComplaintUi, Needs(Role::kQualityAuditor)},
      // One's own tokens, or an admin's anyone's (checked by the API).
      {"GET", "/ui/tokens", Tokens, signed_in},
      {"POST", "/ui/tokens", CreateTokenUi, signed_in},
      {"POST", "/ui/tokens/{id}/revoke", RevokeTokenUi, signed_in},
      {"GET", "/ui/reports/{name}", Report, reader},
  };
}

Response UiResponse(const Request& request, Response response) {
  const bool problem = response.content_type == "application/problem+json";
  if (problem && response.status == 401) {
    if (request.method == "GET" || request.method == "HEAD") {
      return Redirect("/ui/login?next=" + UrlEncode(Target(request)));
    }
    response.headers.emplace_back("HX-Redirect", "/ui/login");
  }
  if (problem) {
    // A page, not a JSON document: the problem's title and detail in the reader's language.
    const ui::Lang lang = PageLang(request);
    json::value doc;
    try {
      doc = model::ParseStoredJson(response.body);
    } catch (const std::exception&) {
      doc = json::object{};
    }
    const char* key = response.status == 404   ? "not_found"
                      : response.status == 403 ? "forbidden"
                      : response.status < 500  ? "bad_request"
                                               : "failed";
    json::object data{
        {"status", response.status},
        {"title", ui::Tr(lang, key)},
        {"detail", doc.is_object() && doc.as_object().contains("detail") ? doc.at("detail")
                                                                         : json::value("")}};
    Response page;
    page.status = response.status;
    page.content_type = "text/html; charset=utf-8";
    page.headers = response.headers;
    page.body =
        ui::RenderPage("error", ui::Tr(lang, key), std::move(data), nullptr, lang, Target(request));
    response = std::move(page);
  }
  auto has = [&](std::string_view name) {
    return std::any_of(response.headers.begin(), response.headers.end(),
                       [&](const auto& h) { return h.first == name; });
  };
  if (!has("Content-Security-Policy")) {
    response.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  }
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "same-origin");
  if (!has("Cache-Control")) response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace cmdb::server::handlers
