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

Estate::Estate(model::Timestamp at, std::vector<EstateCi> cis,
               const std::vector<EstateRelation>& relations, std::vector<EstateDrift> drift,
               std::vector<EstateSource> sources)
    : at_(at), cis_(std::move(cis)), sources_(std::move(sources)) {
  std::sort(cis_.begin(), cis_.end(),
            [](const EstateCi& a, const EstateCi& b) { return a.id < b.id; });
  const auto n = static_cast<std::uint32_t>(cis_.size());
  std::unordered_map<std::string, std::uint16_t> type_index, status_index, relation_index;
  type_ids_.resize(n);
  status_ids_.resize(n);
  index_.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    type_ids_[i] = Intern(ci_types_, type_index, cis_[i].type);
    status_ids_[i] = static_cast<std::uint8_t>(Intern(statuses_, status_index, cis_[i].status));
    index_.emplace(cis_[i].id, i);
  }
  // Adjacency in CSR form both ways: count, prefix-sum, fill.
  struct Resolved {
    std::uint32_t from, to;
    std::uint16_t type;
  };
  std::vector<Resolved> kept;
  kept.reserve(relations.size());
  for (const EstateRelation& r : relations) {
    auto from = index_.find(r.from);
    auto to = index_.find(r.to);
    if (from == index_.end() || to == index_.end()) continue;
    kept.push_back({from->second, to->second, Intern(relation_types_, relation_index, r.type)});
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
    auto it = index_.find(d.ci);
    if (it != index_.end()) by_ci.emplace_back(it->second, std::move(d));
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
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace cmdb::audit
