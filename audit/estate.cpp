#include "audit/estate.hpp"

#include <algorithm>

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

EstateRelations::EstateRelations(const std::vector<EstateRelation>& relations) {
  for (const EstateRelation& r : relations) Add(r.from, r.to, r.type);
}

Estate::Estate(model::Timestamp at, std::vector<EstateCi> cis, const EstateRelations& relations,
               std::vector<EstateDrift> drift, std::vector<EstateSource> sources)
    : at_(at),
      cis_(std::move(cis)),
      relation_types_(relations.types),
      sources_(std::move(sources)) {
  const auto n = static_cast<std::uint32_t>(cis_.size());
  std::unordered_map<std::string, std::uint16_t> type_index, status_index;
  type_ids_.resize(n);
  status_ids_.resize(n);
  ids_.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    // Consecutive CIs mostly share their type and status: compare before hashing.
    type_ids_[i] = i > 0 && cis_[i].type == cis_[i - 1].type
                       ? type_ids_[i - 1]
                       : Intern(ci_types_, type_index, cis_[i].type);
    status_ids_[i] =
        i > 0 && cis_[i].status == cis_[i - 1].status
            ? status_ids_[i - 1]
            : static_cast<std::uint8_t>(Intern(statuses_, status_index, cis_[i].status));
    ids_[i] = cis_[i].id;
  }
  // The CIs stay in the order they were read (a million of them are not moved to sort them):
  // the index goes from id to position.
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
  {
    std::vector<std::uint32_t> out_at(out_offsets_.begin(), out_offsets_.end() - 1);
    std::vector<std::uint32_t> in_at(in_offsets_.begin(), in_offsets_.end() - 1);
    for (const Resolved& r : kept) {
      out_links_[out_at[r.from]++] = {r.to, r.type};
      in_links_[in_at[r.to]++] = {r.from, r.type};
    }
  }
  // Drift grouped by CI; findings of CIs not in the estate are left out.
  std::vector<std::pair<std::uint32_t, EstateDrift>> by_ci;
  by_ci.reserve(drift.size());
  for (EstateDrift& d : drift) {
    if (std::optional<std::uint32_t> i = IndexOf(d.ci)) by_ci.emplace_back(*i, std::move(d));
  }
  std::stable_sort(by_ci.begin(), by_ci.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  drift_offsets_.assign(n + 1, 0);
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
