// The static assets, compiled in from ui/static and served under names carrying a hash of
// their content (so they can be cached for a year: a new build changes the name).

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ui/ui.hpp"

namespace cmdb::ui_static {
std::vector<std::pair<std::string_view, std::string_view>> Files();
}  // namespace cmdb::ui_static

namespace cmdb::ui {

namespace {

std::uint64_t Fnv1a(std::string_view text) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string_view ContentType(std::string_view file) {
  if (file.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (file.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

struct Table {
  std::map<std::string, std::string, std::less<>> path_of;  // file -> /ui/static/hashed
  std::map<std::string, Asset, std::less<>> by_hashed;      // hashed -> asset
};

const Table& Assets() {
  static const Table table = [] {
    Table t;
    for (const auto& [file, body] : ui_static::Files()) {
      char hash[17];
      std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(Fnv1a(body)));
      const std::size_t dot = file.rfind('.');
      const std::string hashed = std::string(file.substr(0, dot)) + "." + std::string(hash, 12) +
                                 std::string(file.substr(dot));
      t.path_of.emplace(std::string(file), "/ui/static/" + hashed);
      t.by_hashed.emplace(hashed, Asset{ContentType(file), body});
    }
    return t;
  }();
  return table;
}

}  // namespace

const Asset* FindAsset(std::string_view hashed_name) {
  const auto& t = Assets().by_hashed;
  auto it = t.find(hashed_name);
  return it == t.end() ? nullptr : &it->second;
}

std::string AssetPath(std::string_view file) {
  const auto& t = Assets().path_of;
  auto it = t.find(file);
  return it == t.end() ? std::string() : it->second;
}

}  // namespace cmdb::ui
