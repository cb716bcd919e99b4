// The pages' rendering: the one includer of the template library in ui/ (kainjow mustache).
// API JSON becomes template data as it is; times are shown in the reader's language.

#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

#include "model/error.hpp"
#include "model/json.hpp"
#include "model/timestamp.hpp"
#include "ui/ui.hpp"

namespace cmdb::ui_templates {
std::vector<std::pair<std::string_view, std::string_view>> Templates();
}  // namespace cmdb::ui_templates
namespace cmdb::ui_i18n {
std::vector<std::pair<std::string_view, std::string_view>> Catalogues();
}  // namespace cmdb::ui_i18n

namespace cmdb::ui {

namespace {

namespace json = boost::json;
namespace mst = kainjow::mustache;

const std::map<std::string, std::string, std::less<>>& TemplateTexts() {
  static const auto* texts = [] {
    auto* m = new std::map<std::string, std::string, std::less<>>();
    for (const auto& [file, text] : ui_templates::Templates()) {
      std::string name(file.substr(0, file.find('.')));
      m->emplace(std::move(name), std::string(text));
    }
    return m;
  }();
  return *texts;
}

const json::object& CatalogueOf(Lang lang) {
  static const auto* catalogues = [] {
    auto* m = new std::map<std::string, json::object>();
    for (const auto& [file, text] : ui_i18n::Catalogues()) {
      m->emplace(std::string(file.substr(0, file.find('.'))),
                 model::ParseStoredJson(text).as_object());
    }
    return m;
  }();
  return catalogues->at(lang == Lang::kZh ? "zh" : "en");
}

bool LooksLikeTime(std::string_view s) {
  return s.size() >= 20 && s.size() <= 32 && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
         std::isdigit(static_cast<unsigned char>(s[0])) != 0 &&
         (s.back() == 'Z' || s[s.size() - 3] == ':');
}

// An integer count as the reader's locale writes it: thousands grouped ("610,016" in both
// languages' usual software conventions). Ids, versions and the like are left as they are.
std::string Grouped(std::int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

bool IdLike(std::string_view key) {
  for (std::string_view exact : {"id", "version", "tier", "severity", "run", "last_run", "change",
                                 "ci", "other", "from", "to", "port"}) {
    if (key == exact) return true;
  }
  return key.ends_with("_id") || key.ends_with("_ids");
}

mst::data ToData(const json::value& v, Lang lang, std::string_view key = "") {
  if (v.is_int64() && !IdLike(key) && (v.get_int64() >= 10000 || v.get_int64() <= -10000)) {
    return mst::data(Grouped(v.get_int64()));
  }
  switch (v.kind()) {
    case json::kind::null:
      return mst::data(false);
    case json::kind::bool_:
      return mst::data(v.get_bool());
    case json::kind::string: {
      const std::string_view s = v.get_string();
      return mst::data(LooksLikeTime(s) ? LocalTime(s, lang) : std::string(s));
    }
    case json::kind::array: {
      mst::data list{mst::data::type::list};
      for (const json::value& item : v.get_array()) list.push_back(ToData(item, lang, key));
      return list;
    }
    case json::kind::object: {
      mst::data object{mst::data::type::object};
      for (const auto& [name, item] : v.get_object()) {
        object.set(std::string(name), ToData(item, lang, name));
      }
      return object;
    }
    default:
      return mst::data(json::serialize(v));  // numbers as JSON writes them
  }
}

std::string Render(std::string_view name, mst::data& data) {
  const auto& texts = TemplateTexts();
  auto it = texts.find(name);
  if (it == texts.end())
    throw model::Error(model::ErrorCode::kInternal, "no page template " + std::string(name));
  for (const auto& [partial, text] : texts) {
    const std::string* body = &text;
    data.set("part_" + partial, mst::partial([body] { return *body; }));  // {{> part_<name>}}
  }
  mst::mustache page{it->second};
  if (!page.is_valid()) {
    throw model::Error(model::ErrorCode::kInternal,
                       "page template " + std::string(name) + ": " + page.error_message());
  }
  return page.render(data);
}

mst::data PageData(json::object data, const Viewer* viewer, Lang lang) {
  data["t"] = CatalogueOf(lang);
  if (viewer != nullptr) data["csrf"] = viewer->csrf;
  return ToData(data, lang);
}

}  // namespace

std::string Tr(Lang lang, std::string_view key) {
  const json::value* v = CatalogueOf(lang).if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string LocalTime(std::string_view rfc3339, Lang lang) {
  const std::optional<model::Timestamp> t = model::ParseTimestamp(rfc3339);
  if (!t) return std::string(rfc3339);
  const std::string iso = model::FormatTimestamp(*t);  // 2026-12-06T23:20:00(.x)Z, in UTC
  const int year = std::stoi(iso.substr(0, 4));
  const int month = std::stoi(iso.substr(5, 2));
  const int day = std::stoi(iso.substr(8, 2));
  const std::string hm = iso.substr(11, 5);
  char buffer[64];
  if (lang == Lang::kZh) {
    std::snprintf(buffer, sizeof buffer, "%d年%d月%d日 %s UTC", year, month, day, hm.c_str());
  } else {
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::snprintf(buffer, sizeof buffer, "%d %s %d %s UTC", day, kMonths[month - 1], year,
                  hm.c_str());
  }
  return buffer;
}

std::string RenderPage(std::string_view page, const std::string& title, json::object data,
                       const Viewer* viewer, Lang lang, std::string_view path) {
  mst::data body_data = PageData(std::move(data), viewer, lang);
  const std::string body = Render(page, body_data);
  json::object layout{{"lang", lang == Lang::kZh ? "zh" : "en"},
                      {"title", title},
                      {"assets", json::object{{"css", AssetPath("app.css")},
                                              {"htmx", AssetPath("htmx.min.js")},
                                              {"js", AssetPath("app.js")}}}};
  // The language switch: the same page in the other language (remembered in a cookie).
  std::string base(path);
  const std::size_t q = base.find('?');
  std::string query = q == std::string::npos ? "" : base.substr(q + 1);
  base = base.substr(0, q);
  std::string kept;
  for (std::size_t at = 0; at <= query.size() && !query.empty();) {
    std::size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(at, end - at);
    if (!part.empty() && part.rfind("lang=", 0) != 0) kept += part + "&";
    at = end + 1;
  }
  const char* other = lang == Lang::kZh ? "en" : "zh";
  layout["lang_switch_url"] = base + "?" + kept + "lang=" + other;
  layout["other_lang"] = other;
  if (viewer != nullptr) {
    layout["viewer"] = json::object{{"user", viewer->user}, {"csrf", viewer->csrf}};
    layout["can_admin"] = viewer->admin;
  }
  mst::data layout_data = PageData(std::move(layout), nullptr, lang);
  layout_data.set("body", body);  // rendered above, every value escaped there
  return Render("layout", layout_data);
}

std::string RenderFragment(std::string_view name, json::object data, const Viewer& viewer,
                           Lang lang) {
  mst::data d = PageData(std::move(data), &viewer, lang);
  return Render(name, d);
}

}  // namespace cmdb::ui
