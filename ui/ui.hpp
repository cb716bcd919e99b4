#pragma once
// The web UI's presentation: pages rendered from the same JSON documents the API answers, in
// templates of the template library the reports use (kainjow mustache, every {{value}}
// escaped), in Chinese or English from one catalogue per language; and the static assets
// (htmx, the stylesheet, one module) compiled in under content-hashed names. What a page shows
// is fetched by server/handlers/ui_handlers.cpp through the API's own routes. Thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "reports/report_document.hpp"

namespace cmdb::ui {

using reports::Lang;

// Who is signed in, as pages need it.
struct Viewer {
  std::string user;
  std::string roles;   // "viewer, asset_admin", for display
  std::string csrf;    // the session's anti-forgery token, sent back by every form and htmx call
  bool admin = false;  // users and the audit log are offered (admin, auditor)
};

// `page` (ui/templates/<page>.mustache) with `data`, inside the layout: `title`, the language
// switch for `path` (the page's path and query), the navigation when `viewer` is given. `data`
// gets `t` (the catalogue) and `csrf`; RFC 3339 times anywhere in it are shown in the
// language's format.
std::string RenderPage(std::string_view page, const std::string& title, boost::json::object data,
                       const Viewer* viewer, Lang lang, std::string_view path);
// A template without the layout (an htmx swap).
std::string RenderFragment(std::string_view name, boost::json::object data, const Viewer& viewer,
                           Lang lang);

// The catalogue's text for `key` ("" for an unknown key).
std::string Tr(Lang lang, std::string_view key);
// "2026-12-06T23:20:00Z" as the language writes it: "6 Dec 2026 23:20 UTC" / "2026年12月6日 23:20
// UTC". Text that is not such a time comes back unchanged.
std::string LocalTime(std::string_view rfc3339, Lang lang);

struct Asset {
  std::string_view content_type;
  std::string_view body;
};
// The asset served at /ui/static/<hashed_name>; nullptr for any other name.
const Asset* FindAsset(std::string_view hashed_name);
// "/ui/static/htmx.min.3f2a….js" for "htmx.min.js".
std::string AssetPath(std::string_view file);

}  // namespace cmdb::ui
