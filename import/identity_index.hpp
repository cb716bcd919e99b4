#pragma once
// Where an import finds existing (and newly imported) CIs by identity, per type: one map per
// identifier set of the type's `identify_by`, and one by name for rows without a complete set.
// Not thread-safe; Load fills its maps on all cores.

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/container/small_vector.hpp>
#include <boost/json/object.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "model/ci_type.hpp"
#include "model/configuration_item.hpp"
#include "store/db_pool.hpp"

namespace cmdb::import {

class IdentityIndex {
 public:
  // The CIs under one key: almost always one, kept in place (no allocation of its own).
  using Ids = boost::container::small_vector<model::CiId, 1>;

  // Key of identifier set `set` in `attributes`, or "" when a value is missing or empty.
  static std::string Key(const std::vector<std::string>& set,
                         const boost::json::object& attributes);

  // The key under each of the type's identifier sets ("" where one is incomplete): computed
  // once per row, for the match and, when the row creates a CI, for its own entry.
  static std::vector<std::string> Keys(const model::CiType& type,
                                       const boost::json::object& attributes);

  // Loads the identities of every CI of `type`, once; `expected_new` sizes the maps for the
  // rows that may add theirs.
  void Load(store::DbSession& db, const model::CiType& type, std::size_t expected_new);
  // The same from CIs of `type` already read whole (every CI of the type).
  void Load(const model::CiType& type, const std::vector<model::ConfigurationItem>& cis,
            std::size_t expected_new);
  // The same from a part of them (the type read whole a part at a time, CIs not here yet):
  // the maps are sized for `expected` CIs in all, so the later parts add without a rehash.
  void LoadPart(const model::CiType& type, const std::vector<model::ConfigurationItem>& cis,
                std::size_t expected);

  void Add(const model::CiType& type, model::CiId id, const std::string& name,
           const std::vector<std::string>& keys);
  // Moves what Add put under `type` into `into`, which must hold none of its CIs, each pseudo
  // id -(row + 1) replaced by real[row] and dropped where that is 0 or missing (other ids are
  // kept): an import's new CIs, known by pseudo ids while it ran, become a kept entry's under
  // their ids, with no map built again. Each map is translated by a task of its own.
  void MoveAddedInto(const model::CiType& type, IdentityIndex& into,
                     const std::vector<model::CiId>& real);
  // Removes the entry Add made.
  void Remove(const model::CiType& type, model::CiId id, const std::string& name,
              const std::vector<std::string>& keys);
  // Matches of `type` also come from `base` (the CIs an ImportCache kept, which must outlive
  // this index and not change while it is used); the type counts as loaded. Add and Remove
  // change this index only, whose maps are sized for `expected_new` of them.
  void UseBase(const model::CiType& type, const IdentityIndex& base, std::size_t expected_new);

  // Candidates for a row with these keys under the first identifier set that finds any;
  // `used_set` is its index, -1 when matching fell back to the name, -2 when a complete set
  // found nothing. The pointer stays valid until the next Add or Match.
  const Ids* Match(const model::CiType& type, const std::string& name,
                   const std::vector<std::string>& keys, int& used_set) const;

 private:
  // Open addressing: a miss, the usual case for a new CI, probes one group of slots instead
  // of a chain of nodes, and an entry is not a node of its own.
  using Map = boost::unordered_flat_map<std::string, Ids>;
  struct PerType {
    std::vector<Map> sets;
    Map names;
  };
  // Fills the maps of `type` from each CI's id, name and keys (consumed).
  void Build(const model::CiType& type, const std::vector<model::CiId>& ids,
             const std::vector<std::string>& names, std::vector<std::vector<std::string>>& keys,
             std::size_t expected_new);

  // The ids under `key` in `own` and `base` (either may be null); nullptr when there are none.
  const Ids* Find(const Map* own, const Map* base, const std::string& key) const;

  std::set<std::string> loaded_;
  std::unordered_map<std::string, PerType> by_type_;
  std::unordered_map<std::string, const IdentityIndex*> bases_;
  mutable Ids both_;  // Match's answer when own and base both have ids
};

}  // namespace cmdb::import
