#include "import/identity_index.hpp"

#include <algorithm>

#include "model/json.hpp"
#include "model/parallel.hpp"
#include "store/import_store.hpp"

namespace cmdb::import {

using model::CiId;
using model::CiType;
namespace json = boost::json;

std::string IdentityIndex::Key(const std::vector<std::string>& set,
                               const json::object& attributes) {
  std::string key;
  for (const auto& name : set) {
    const json::value* v = attributes.if_contains(name);
    if (v == nullptr || v->is_null()) return {};
    if (v->is_string()) {
      if (v->get_string().empty()) return {};
      key += 's';
      key.append(v->get_string().data(), v->get_string().size());
    } else {
      key += 'j';
      key += model::ToJsonText(*v);
    }
    key += '\x1f';
  }
  return key;
}

std::vector<std::string> IdentityIndex::Keys(const CiType& type, const json::object& attributes) {
  std::vector<std::string> keys;
  keys.reserve(type.identify_by.size());
  for (const auto& set : type.identify_by) keys.push_back(Key(set, attributes));
  return keys;
}

void IdentityIndex::Load(store::DbSession& db, const CiType& type, std::size_t expected_new) {
  if (loaded_.contains(type.name)) return;
  loaded_.insert(type.name);
  std::set<std::string> names;
  for (const auto& set : type.identify_by) names.insert(set.begin(), set.end());
  const std::vector<std::string> list(names.begin(), names.end());
  const store::IdentityColumns existing = store::ImportStore(db).Identities(type.name, list);
  // Each value parsed and the keys computed on all cores.
  const std::size_t n = existing.ids.size();
  std::vector<std::vector<std::string>> keys(n);
  model::ParallelFor(n,
                     [&](std::size_t i) {
                       json::object attrs;
                       for (std::size_t a = 0; a < list.size(); ++a) {
                         if (existing.values[a][i])
                           attrs[list[a]] = model::ParseJson(*existing.values[a][i]);
                       }
                       keys[i] = Keys(type, attrs);
                     },
                     {});
  Build(type, existing.ids, existing.names, keys, expected_new);
}

void IdentityIndex::Load(const CiType& type, const std::vector<model::ConfigurationItem>& cis,
                         std::size_t expected_new) {
  if (loaded_.contains(type.name)) return;
  LoadPart(type, cis, cis.size() + expected_new);
}

void IdentityIndex::LoadPart(const CiType& type, const std::vector<model::ConfigurationItem>& cis,
                             std::size_t expected) {
  loaded_.insert(type.name);
  const std::size_t n = cis.size();
  std::vector<CiId> ids(n);
  std::vector<std::string> names(n);
  std::vector<std::vector<std::string>> keys(n);
  model::ParallelFor(n,
                     [&](std::size_t i) {
                       ids[i] = cis[i].id;
                       names[i] = cis[i].name;
                       keys[i] = Keys(type, cis[i].attributes);
                     },
                     {});
  Build(type, ids, names, keys, expected > n ? expected - n : 0);
}

void IdentityIndex::Build(const CiType& type, const std::vector<CiId>& ids,
                          const std::vector<std::string>& names,
                          std::vector<std::vector<std::string>>& keys, std::size_t expected_new) {
  const std::size_t n = ids.size();
  // Sized once for the CIs there and the rows that may add theirs: no rehash on the way.
  // Each map (names, then one per identifier set) is filled by one task, on both cores.
  PerType& per_type = by_type_[type.name];
  const std::size_t expected = n + expected_new;
  per_type.sets.resize(type.identify_by.size());
  model::ParallelTasks(per_type.sets.size() + 1, [&](std::size_t t) {
    if (t == 0) {
      per_type.names.reserve(expected);
      for (std::size_t i = 0; i < n; ++i) per_type.names[names[i]].push_back(ids[i]);
      return;
    }
    const std::size_t s = t - 1;
    auto& set = per_type.sets[s];
    set.reserve(expected);
    for (std::size_t i = 0; i < n; ++i) {
      // Each key is read by this task only.
      if (!keys[i][s].empty()) set[std::move(keys[i][s])].push_back(ids[i]);
    }
  });
}

void IdentityIndex::Add(const CiType& type, CiId id, const std::string& name,
                        const std::vector<std::string>& keys) {
  auto& per_type = by_type_[type.name];
  per_type.sets.resize(type.identify_by.size());
  for (std::size_t s = 0; s < keys.size(); ++s) {
    if (!keys[s].empty()) per_type.sets[s][keys[s]].push_back(id);
  }
  per_type.names[name].push_back(id);
}

void IdentityIndex::MoveAddedInto(const CiType& type, IdentityIndex& into,
                                  const std::vector<CiId>& real) {
  auto found = by_type_.find(type.name);
  if (found == by_type_.end()) return;
  PerType added = std::move(found->second);
  by_type_.erase(found);
  model::ParallelTasks(added.sets.size() + 1, [&](std::size_t t) {
    Map& map = t == 0 ? added.names : added.sets[t - 1];
    bool dropped = false;
    for (auto& [key, ids] : map) {
      bool gone = false;
      for (CiId& id : ids) {
        if (id >= 0) continue;
        const auto row = static_cast<std::size_t>(-id - 1);
        id = row < real.size() ? real[row] : 0;
        gone = gone || id == 0;
      }
      if (gone) ids.erase(std::remove(ids.begin(), ids.end(), CiId{0}), ids.end());
      dropped = dropped || gone;
    }
    if (dropped) {
      boost::unordered::erase_if(map, [](const auto& entry) { return entry.second.empty(); });
    }
  });
  into.loaded_.insert(type.name);
  into.by_type_[type.name] = std::move(added);
}

void IdentityIndex::Remove(const CiType& type, CiId id, const std::string& name,
                           const std::vector<std::string>& keys) {
  auto found = by_type_.find(type.name);
  if (found == by_type_.end()) return;
  PerType& per_type = found->second;
  auto remove = [&](Map& map, const std::string& key) {
    auto it = map.find(key);
    if (it == map.end()) return;
    it->second.erase(std::remove(it->second.begin(), it->second.end(), id), it->second.end());
    if (it->second.empty()) map.erase(it);
  };
  for (std::size_t s = 0; s < keys.size() && s < per_type.sets.size(); ++s) {
    if (!keys[s].empty()) remove(per_type.sets[s], keys[s]);
  }
  remove(per_type.names, name);
}

void IdentityIndex::UseBase(const CiType& type, const IdentityIndex& base,
                            std::size_t expected_new) {
  loaded_.insert(type.name);
  bases_[type.name] = &base;
  // Sized once, as Build sizes them: no rehash while the import's rows are added.
  PerType& own = by_type_[type.name];
  own.sets.resize(type.identify_by.size());
  for (Map& set : own.sets) set.reserve(expected_new);
  own.names.reserve(expected_new);
}

const IdentityIndex::Ids* IdentityIndex::Find(const Map* own, const Map* base,
                                              const std::string& key) const {
  const Ids* mine = nullptr;
  const Ids* kept = nullptr;
  if (own != nullptr) {
    auto it = own->find(key);
    if (it != own->end() && !it->second.empty()) mine = &it->second;
  }
  if (base != nullptr) {
    auto it = base->find(key);
    if (it != base->end() && !it->second.empty()) kept = &it->second;
  }
  if (mine == nullptr || kept == nullptr) return mine != nullptr ? mine : kept;
  both_ = *kept;
  both_.insert(both_.end(), mine->begin(), mine->end());
  return &both_;
}

const IdentityIndex::Ids* IdentityIndex::Match(const CiType& type, const std::string& name,
                                               const std::vector<std::string>& keys,
                                               int& used_set) const {
  used_set = -1;
  auto own_it = by_type_.find(type.name);
  const PerType* own = own_it == by_type_.end() ? nullptr : &own_it->second;
  const PerType* base = nullptr;
  if (auto b = bases_.find(type.name); b != bases_.end()) {
    auto base_it = b->second->by_type_.find(type.name);
    if (base_it != b->second->by_type_.end()) base = &base_it->second;
  }
  auto set_of = [](const PerType* per_type, std::size_t s) -> const Map* {
    return per_type != nullptr && s < per_type->sets.size() ? &per_type->sets[s] : nullptr;
  };
  bool had_complete_set = false;
  for (std::size_t s = 0; s < keys.size(); ++s) {
    if (keys[s].empty()) continue;
    had_complete_set = true;
    if (const Ids* found = Find(set_of(own, s), set_of(base, s), keys[s])) {
      used_set = static_cast<int>(s);
      return found;
    }
  }
  if (had_complete_set) {
    used_set = -2;
    return nullptr;
  }
  return Find(own != nullptr ? &own->names : nullptr, base != nullptr ? &base->names : nullptr,
              name);
}

}  // namespace cmdb::import
