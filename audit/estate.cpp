#include "audit/estate.hpp"

#include <algorithm>
#include <functional>

#include "model/error.hpp"

namespace cmdb::audit {

std::uint16_t Estate::Intern(std::vector<std::string>& names,
                             std::unordered_map<std::string, std::uint16_t>& index,
                             const std::string& name) {
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  if (names.size() >= 0xFFFF) {
    throw model::Error(model::ErrorCode::kInternal, "an audit estate holds at most 65535 types");
  }
  const auto id = static_cast<std::uint16_t>(names.size());
  names.push_back(name);
  index.emplace(name, id);
  return id;
}

void EstateRelations::Add(model::CiId f, model::CiId t, std::string_view type_name) {
  // A handful of relation types: a look at the names seen so far beats hashing.
  std::size_t i = 0;
  while (i < types.size() && types[i] != type_name) ++i;
  if (i == types.size()) {
    if (types.size() >= 0xFFFF) {
      throw model::Error(model::ErrorCode::kInternal, "an audit estate holds at most 65535 types");
    }
    types.emplace_back(type_name);
  }
  from.push_back(f);
  to.push_back(t);
  type.push_back(static_cast<std::uint16_t>(i));
}

void EstateRelations::Remove(const std::vector<std::int64_t>& sorted_ids) {
  if (sorted_ids.empty() || ids.empty()) return;
  const std::int64_t lo = sorted_ids.front();
  const std::int64_t hi = sorted_ids.back();
  std::size_t kept = 0;
  for (std::size_t r = 0; r < ids.size(); ++r) {
    const std::int64_t id = ids[r];
    if (id >= lo && id <= hi && std::binary_search(sorted_ids.begin(), sorted_ids.end(), id)) {
      continue;
    }
    if (kept != r) {
      ids[kept] = id;
      from[kept] = from[r];
      to[kept] = to[r];
      type[kept] = type[r];
    }
    ++kept;
  }
  ids.resize(kept);
  from.resize(kept);
  to.resize(kept);
  type.resize(kept);
}

EstateRelations::EstateRelations(const std::vector<EstateRelation>& relations) {
  for (const EstateRelation& r : relations) Add(r.from, r.to, r.type);
}

Estate::Estate(model::Timestamp at, std::vector<EstateCi> cis, const EstateRelations& relations,
               std::vector<EstateDrift> drift, std::vector<EstateSource> sources)
    : at_(at), cis_(std::move(cis)), sources_(std::move(sources)) {
  BuildIndex(true);
  BuildAdjacency(relations);
  BuildDrift(std::move(drift));
}

void Estate::Update(model::Timestamp at, std::vector<EstateCi> changed,
                    const std::vector<model::CiId>& removed, const EstateRelations* relations,
                    std::vector<EstateDrift> drift, std::vector<EstateSource> sources) {
  at_ = at;
  sources_ = std::move(sources);
  const auto first_new = static_cast<std::uint32_t>(cis_.size());
  std::vector<std::uint32_t> touched;
  for (EstateCi& ci : changed) {
    if (std::optional<std::uint32_t> i = IndexOf(ci.id)) {
      cis_[*i] = std::move(ci);
      touched.push_back(*i);
    } else {
      cis_.push_back(std::move(ci));
    }
  }
  std::vector<std::uint32_t> gone;
  for (const model::CiId id : removed) {
    if (std::optional<std::uint32_t> i = IndexOf(id)) gone.push_back(*i);
  }
  if (!gone.empty() && relations == nullptr) {
    throw model::Error(model::ErrorCode::kInternal,
                       "an estate that loses CIs needs its relations to rebuild its adjacency");
  }
  // Highest first, each swapped with the last CI: a CI moved into a hole is never one still to
  // be removed (those sit at lower positions).
  std::sort(gone.begin(), gone.end(), std::greater<>());
  gone.erase(std::unique(gone.begin(), gone.end()), gone.end());
  for (const std::uint32_t i : gone) {
    if (i + 1 != cis_.size()) cis_[i] = std::move(cis_.back());
    cis_.pop_back();
  }
  if (gone.empty()) {
    BuildIndex(false, touched, first_new);
  } else {
    BuildIndex(true);
  }
  if (relations != nullptr) {
    BuildAdjacency(*relations);
  } else {
    // The same relations between the same positions: the CIs that joined have none yet.
    const auto n = static_cast<std::uint32_t>(cis_.size());
    out_offsets_.resize(n + 1, out_offsets_.empty() ? 0 : out_offsets_.back());
    in_offsets_.resize(n + 1, in_offsets_.empty() ? 0 : in_offsets_.back());
  }
  BuildDrift(std::move(drift));
}

void Estate::BuildIndex(bool all, const std::vector<std::uint32_t>& touched,
                        std::uint32_t first_new) {
  const auto n = static_cast<std::uint32_t>(cis_.size());
  if (all) {
    ci_types_.clear();
    statuses_.clear();
    owners_.assign(1, "");
    type_index_.clear();
    status_index_.clear();
    owner_index_ = {{"", 0}};
    first_new = 0;
  }
  type_ids_.resize(n);
  status_ids_.resize(n);
  owner_ids_.resize(n);
  ids_.resize(n);
  // Names stay numbered once seen (a type no CI has any more keeps its number and counts
  // nothing).
  auto number = [&](std::uint32_t i, bool after_previous) {
    const EstateCi& ci = cis_[i];
    // Consecutive CIs mostly share their type and status: compare before hashing.
    const bool same = after_previous && i > 0;
    type_ids_[i] = same && ci.type == cis_[i - 1].type ? type_ids_[i - 1]
                                                       : Intern(ci_types_, type_index_, ci.type);
    status_ids_[i] = same && ci.status == cis_[i - 1].status
                         ? status_ids_[i - 1]
                         : static_cast<std::uint8_t>(Intern(statuses_, status_index_, ci.status));
    if (!ci.owner || ci.owner->empty()) {
      owner_ids_[i] = 0;
    } else if (same && cis_[i - 1].owner == ci.owner) {
      owner_ids_[i] = owner_ids_[i - 1];
    } else {
      auto [it, added] =
          owner_index_.emplace(*ci.owner, static_cast<std::uint32_t>(owners_.size()));
      if (added) owners_.push_back(*ci.owner);
      owner_ids_[i] = it->second;
    }
    ids_[i] = ci.id;
  };
  for (const std::uint32_t i : touched) number(i, false);
  for (std::uint32_t i = first_new; i < n; ++i) number(i, i > first_new);
  // The CIs stay in the order they were read (a million of them are not moved to sort them):
  // the index goes from id to position. CIs that joined extend a direct table in place.
  bool extended = false;
  if (!all && !dense_.empty()) {
    model::CiId max_id = static_cast<model::CiId>(dense_.size()) - 1;
    bool fits = true;
    for (std::uint32_t i = first_new; i < n && fits; ++i) {
      fits = ids_[i] >= 0;
      max_id = std::max(max_id, ids_[i]);
    }
    if (fits && static_cast<std::uint64_t>(max_id) <= 4ULL * n + (1U << 20)) {
      dense_.resize(static_cast<std::size_t>(max_id) + 1, kNone);
      for (std::uint32_t i = first_new; i < n; ++i) dense_[static_cast<std::size_t>(ids_[i])] = i;
      extended = true;
    }
  }
  if (!extended && (all || first_new < n)) {
    dense_.clear();
    sorted_.clear();
    const auto [min_id, max_id] =
        n > 0 ? std::minmax_element(ids_.begin(), ids_.end()) : std::pair(ids_.end(), ids_.end());
    if (n > 0 && *min_id >= 0 && static_cast<std::uint64_t>(*max_id) <= 4ULL * n + (1U << 20)) {
      dense_.assign(static_cast<std::size_t>(*max_id) + 1, kNone);
      for (std::uint32_t i = 0; i < n; ++i) dense_[static_cast<std::size_t>(ids_[i])] = i;
    } else {
      sorted_.reserve(n);
      for (std::uint32_t i = 0; i < n; ++i) sorted_.emplace_back(ids_[i], i);
      std::sort(sorted_.begin(), sorted_.end());
    }
  }
  BuildBuckets();
}

void Estate::BuildBuckets() {
  // A counting sort of the positions by (type, status): stable, so ascending in a bucket.
  const std::size_t statuses = statuses_.size();
  bucket_offsets_.assign(ci_types_.size() * statuses + 1, 0);
  const auto n = static_cast<std::uint32_t>(cis_.size());
  for (std::uint32_t i = 0; i < n; ++i) {
    ++bucket_offsets_[static_cast<std::size_t>(type_ids_[i]) * statuses + status_ids_[i] + 1];
  }
  for (std::size_t b = 1; b < bucket_offsets_.size(); ++b) {
    bucket_offsets_[b] += bucket_offsets_[b - 1];
  }
  order_.resize(n);
  std::vector<std::uint32_t> at(bucket_offsets_.begin(), bucket_offsets_.end() - 1);
  for (std::uint32_t i = 0; i < n; ++i) {
    order_[at[static_cast<std::size_t>(type_ids_[i]) * statuses + status_ids_[i]]++] = i;
  }
}

void Estate::BuildAdjacency(const EstateRelations& relations) {
  const auto n = static_cast<std::uint32_t>(cis_.size());
  relation_types_ = relations.types;
  // Adjacency in CSR form both ways: count, prefix-sum, fill.
  struct Resolved {
    std::uint32_t from, to;
    std::uint16_t type;
  };
  std::vector<Resolved> kept;
  kept.reserve(relations.from.size());
  for (std::size_t r = 0; r < relations.from.size(); ++r) {
    const std::optional<std::uint32_t> from = IndexOf(relations.from[r]);
    const std::optional<std::uint32_t> to = IndexOf(relations.to[r]);
    if (!from || !to) continue;
    kept.push_back({*from, *to, relations.type[r]});
  }
  out_offsets_.assign(n + 1, 0);
  in_offsets_.assign(n + 1, 0);
  for (const Resolved& r : kept) {
    ++out_offsets_[r.from + 1];
    ++in_offsets_[r.to + 1];
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    out_offsets_[i + 1] += out_offsets_[i];
    in_offsets_[i + 1] += in_offsets_[i];
  }
  out_links_.resize(kept.size());
  in_links_.resize(kept.size());
  std::vector<std::uint32_t> out_at(out_offsets_.begin(), out_offsets_.end() - 1);
  std::vector<std::uint32_t> in_at(in_offsets_.begin(), in_offsets_.end() - 1);
  for (const Resolved& r : kept) {
    out_links_[out_at[r.from]++] = {r.to, r.type};
    in_links_[in_at[r.to]++] = {r.from, r.type};
  }
}

void Estate::BuildDrift(std::vector<EstateDrift> drift) {
  const auto n = static_cast<std::uint32_t>(cis_.size());
  // Drift grouped by CI; findings of CIs not in the estate are left out.
  std::vector<std::pair<std::uint32_t, EstateDrift>> by_ci;
  by_ci.reserve(drift.size());
  for (EstateDrift& d : drift) {
    if (std::optional<std::uint32_t> i = IndexOf(d.ci)) by_ci.emplace_back(*i, std::move(d));
  }
  std::stable_sort(by_ci.begin(), by_ci.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  drift_offsets_.assign(n + 1, 0);
  drift_.clear();
  drift_.reserve(by_ci.size());
  for (auto& [i, d] : by_ci) {
    ++drift_offsets_[i + 1];
    drift_.push_back(std::move(d));
  }
  for (std::uint32_t i = 0; i < n; ++i) drift_offsets_[i + 1] += drift_offsets_[i];
}

std::optional<std::uint32_t> Estate::IndexOf(model::CiId id) const {
  if (!dense_.empty()) {
    if (id < 0 || static_cast<std::uint64_t>(id) >= dense_.size()) return std::nullopt;
    const std::uint32_t i = dense_[static_cast<std::size_t>(id)];
    if (i == kNone) return std::nullopt;
    return i;
  }
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(),
                             std::pair<model::CiId, std::uint32_t>{id, 0});
  if (it == sorted_.end() || it->first != id) return std::nullopt;
  return it->second;
}

}  // namespace cmdb::audit
