#pragma once
// Discovery sources in PostgreSQL. A repository borrows one leased session; not thread-safe.

#include <cstdint>
#include <optional>
#include <vector>

#include <boost/json/value.hpp>

#include "model/discovery_run.hpp"
#include "model/discovery_source.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

class DiscoverySourceRepository {
 public:
  explicit DiscoverySourceRepository(DbSession& db) : db_(db) {}

  // Stores a validated source. kAlreadyExists for a taken name.
  model::DiscoverySource Create(const model::DiscoverySource& draft);
  std::optional<model::DiscoverySource> Find(std::int64_t id);
  std::vector<model::DiscoverySource> List();  // at most 1000, in id order
  // Applies a JSON merge patch to name, config and interval_seconds (the kind cannot change).
  // kNotFound, kVersionMismatch, kValidationFailed.
  model::DiscoverySource Patch(std::int64_t id, const boost::json::value& patch,
                               std::optional<std::int64_t> if_match);
  // Deletes the source and its runs; findings, sightings and history stay. kNotFound.
  void Delete(std::int64_t id);

  // CIs the source saw before but missed in its last `stale_after_runs` successful runs.
  std::vector<model::StaleCi> StaleCis(const model::DiscoverySource& source);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
