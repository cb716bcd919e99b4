#pragma once
// The estate an audit run evaluates: CIs with the attributes its rules read, relations as
// adjacency both ways, open drift findings and the latest discovery run of each source, all
// as they were at one instant (now, or an as_of). Built once per run by the store's loader;
// immutable afterwards, so evaluation threads share it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "model/configuration_item.hpp"
#include "model/timestamp.hpp"

namespace cmdb::audit {

struct EstateCi {
  model::CiId id = 0;
  std::string type;
  std::string name;
  std::string status;
  std::optional<std::string> owner;
  std::vector<std::string> tags;
  boost::json::object attributes;           // only the attributes the rules read
  model::Timestamp changed_at;              // the version valid at the instant was written then
  std::optional<model::Timestamp> seen_at;  // latest discovery sighting at or before it
  // An as_of estate: the CI's only known sighting is after the instant (sightings keep the
  // latest per source), so whether it had been seen then is unknown.
  bool seen_later = false;
};

struct EstateRelation {
  model::CiId from = 0;
  model::CiId to = 0;
  std::string type;
};

// Relations in columns, their types numbered: what a loader of millions of rows fills without
// a string per row.
struct EstateRelations {
  EstateRelations() = default;
  EstateRelations(const std::vector<EstateRelation>& relations);  // NOLINT: converts on purpose
  std::vector<std::string> types;  // the names of the numbers in `type`
  std::vector<model::CiId> from;
  std::vector<model::CiId> to;
  std::vector<std::uint16_t> type;
  // The relations' ids, when the loader keeps them (an estate brought up to date from the
  // change log must find the relations that changed); else empty.
  std::vector<std::int64_t> ids;
  void Add(model::CiId f, model::CiId t, std::string_view type_name);
  // Drops the relations whose id is in `sorted_ids` (ascending): one pass over the columns.
  void Remove(const std::vector<std::int64_t>& sorted_ids);
};

struct EstateDrift {
  model::CiId ci = 0;
  std::string attribute;
  bool authorized = false;
  model::Timestamp detected_at;
};

// A discovery source and its latest successful (not dry) run at the instant.
struct EstateSource {
  std::int64_t id = 0;
  std::string name;
  std::optional<std::int64_t> run_id;
  std::int64_t registered = 0;  // observations matched to or registered as a CI
  std::int64_t unmatched = 0;   // observations of assets no CI records
};

class Estate {
 public:
  struct Link {
    std::uint32_t ci = 0;  // the far end's index
    std::uint16_t type = 0;
  };

  Estate() = default;
  // Relations whose ends are not among `cis` are left out (a neighbourhood estate holds the
  // ends it needs and no more). The CIs keep their order (any order).
  Estate(model::Timestamp at, std::vector<EstateCi> cis, const EstateRelations& relations,
         std::vector<EstateDrift> drift, std::vector<EstateSource> sources);

  // Brings the estate to `at` in place: each of `changed` replaces the CI with its id or
  // joins the estate; the CIs of `removed` leave it (the last CI takes a removed one's
  // position: positions are any order); the adjacency is rebuilt from `relations`, or kept
  // when they did not change (nullptr: required to be non-null when a CI left); drift and
  // sources are replaced. Not while an evaluator reads the estate.
  void Update(model::Timestamp at, std::vector<EstateCi> changed,
              const std::vector<model::CiId>& removed, const EstateRelations* relations,
              std::vector<EstateDrift> drift, std::vector<EstateSource> sources);

  // Replaces CI `i`'s discovery sighting (the sightings were read again).
  void SetSeen(std::uint32_t i, std::optional<model::Timestamp> seen_at, bool seen_later) {
    cis_[i].seen_at = seen_at;
    cis_[i].seen_later = seen_later;
  }

  model::Timestamp at() const { return at_; }
  std::size_t size() const { return cis_.size(); }
  const EstateCi& ci(std::uint32_t i) const { return cis_[i]; }
  std::optional<std::uint32_t> IndexOf(model::CiId id) const;
  std::uint16_t type_id(std::uint32_t i) const { return type_ids_[i]; }
  std::uint8_t status_id(std::uint32_t i) const { return status_ids_[i]; }
  // The CI's owner numbered (0: none or empty), and the names of the numbers.
  std::uint32_t owner_id(std::uint32_t i) const { return owner_ids_[i]; }
  const std::vector<std::string>& owners() const { return owners_; }
  // The CIs of one type and status (positions, ascending): what a rule scoped by type and
  // status looks at instead of every CI.
  std::span<const std::uint32_t> Bucket(std::uint16_t type, std::uint8_t status) const {
    const std::size_t b = static_cast<std::size_t>(type) * statuses_.size() + status;
    return {order_.data() + bucket_offsets_[b], order_.data() + bucket_offsets_[b + 1]};
  }

  // Interned names: CI types, statuses and relation types, each numbered from 0.
  const std::vector<std::string>& ci_types() const { return ci_types_; }
  const std::vector<std::string>& statuses() const { return statuses_; }
  const std::vector<std::string>& relation_types() const { return relation_types_; }

  std::span<const Link> Out(std::uint32_t i) const {
    return {out_links_.data() + out_offsets_[i], out_links_.data() + out_offsets_[i + 1]};
  }
  std::span<const Link> In(std::uint32_t i) const {
    return {in_links_.data() + in_offsets_[i], in_links_.data() + in_offsets_[i + 1]};
  }
  std::span<const EstateDrift> DriftOf(std::uint32_t i) const {
    return {drift_.data() + drift_offsets_[i], drift_.data() + drift_offsets_[i + 1]};
  }
  const std::vector<EstateSource>& sources() const { return sources_; }
  std::size_t relation_count() const { return out_links_.size(); }

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFU;
  // The numbering of types, statuses and owners, the id index and the buckets: for every CI
  // (`all`), else for the CIs at `touched` and from `first_new` on (no CI left the estate).
  void BuildIndex(bool all, const std::vector<std::uint32_t>& touched = {},
                  std::uint32_t first_new = 0);
  void BuildBuckets();
  void BuildAdjacency(const EstateRelations& relations);
  void BuildDrift(std::vector<EstateDrift> drift);
  static std::uint16_t Intern(std::vector<std::string>& names,
                              std::unordered_map<std::string, std::uint16_t>& index,
                              const std::string& name);

  model::Timestamp at_;
  std::vector<EstateCi> cis_;
  std::vector<std::uint16_t> type_ids_;
  std::vector<std::uint8_t> status_ids_;
  std::vector<std::string> ci_types_, statuses_, relation_types_;
  std::unordered_map<std::string, std::uint16_t> type_index_, status_index_;
  std::vector<std::uint32_t> owner_ids_;
  std::vector<std::string> owners_;
  std::unordered_map<std::string, std::uint32_t> owner_index_;
  std::vector<std::uint32_t> order_;           // positions by (type, status)
  std::vector<std::uint32_t> bucket_offsets_;  // into order_, per type * statuses + status
  // CI id -> index: a direct table when ids are dense (one identity sequence, the usual
  // case), else a search of (id, index) pairs sorted by id.
  std::vector<model::CiId> ids_;
  std::vector<std::uint32_t> dense_;
  std::vector<std::pair<model::CiId, std::uint32_t>> sorted_;
  std::vector<std::uint32_t> out_offsets_, in_offsets_;
  std::vector<Link> out_links_, in_links_;
  std::vector<std::uint32_t> drift_offsets_;
  std::vector<EstateDrift> drift_;
  std::vector<EstateSource> sources_;
};

}  // namespace cmdb::audit
