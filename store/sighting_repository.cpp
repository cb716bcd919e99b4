#include "store/sighting_repository.hpp"

#include <string>

#include "model/error.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;

SourceSightings SightingRepository::LockAndRead(std::int64_t source_id) {
  SourceSightings s;
  std::optional<long long> run;
  std::optional<long long> at;
  if (!sql::Run(db_,
                "SELECT sighted_run_id, cmdb_us(sighted_at) FROM discovery_sources WHERE id = $1 "
                "FOR UPDATE",
                soci::into(run), soci::into(at), soci::use(static_cast<long long>(source_id)))) {
    throw Error(ErrorCode::kNotFound, "the run's source was deleted");
  }
  s.sighted_run = run;
  s.sighted_at = model::Timestamp{at.value_or(0)};
  // Streamed: a source that sees a million CIs has a thousand blocks and may have many rows.
  const std::string source = std::to_string(source_id);
  pg::CopyOut(db_, "SELECT block, bits FROM discovery_sighting_blocks WHERE source_id = " + source,
              [&](const pg::Fields& f) {  // NOT NULL columns
                s.blocks.emplace(std::stoll(std::string(*f[0])), model::ParseBits(*f[1]));
              });
  pg::CopyOut(
      db_, "SELECT ci_id FROM discovery_sightings WHERE source_id = " + source + " ORDER BY ci_id",
      [&](const pg::Fields& f) { s.closed_rows.push_back(std::stoll(std::string(*f[0]))); });
  return s;
}

void SightingRepository::Write(std::int64_t source_id, const SourceSightings& before,
                               const model::SightingChanges& changes, std::int64_t run_id,
                               model::Timestamp observed_at) {
  const long long source = source_id;
  if (!changes.closed.empty() && before.sighted_run) {
    sql::Execute(db_,
                 "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at) "
                 "SELECT unnest($2::bigint[]), $1, $3, cmdb_ts($4) ON CONFLICT (ci_id, "
                 "source_id) DO UPDATE SET last_run_id = excluded.last_run_id, last_seen_at = "
                 "excluded.last_seen_at",
                 soci::use(source), soci::use(sql::IdArray(changes.closed)),
                 soci::use(static_cast<long long>(*before.sighted_run)),
                 soci::use(static_cast<long long>(before.sighted_at.micros)));
  }
  if (!changes.reopened.empty()) {
    sql::Execute(db_,
                 "DELETE FROM discovery_sightings WHERE source_id = $1 AND ci_id = "
                 "ANY($2::bigint[])",
                 soci::use(source), soci::use(sql::IdArray(changes.reopened)));
  }
  if (!changes.erase.empty()) {
    sql::Execute(db_,
                 "DELETE FROM discovery_sighting_blocks WHERE source_id = $1 AND block = "
                 "ANY($2::bigint[])",
                 soci::use(source), soci::use(sql::IdArray(changes.erase)));
  }
  if (!changes.write.empty()) {
    pg::CopyBuffer rows;
    for (const auto& [block, bits] : changes.write) {
      rows.Int(source_id);
      rows.Int(block);
      rows.Field(model::BitsText(bits));
      rows.EndRow();
    }
    pg::CopyIn(db_, "COPY discovery_sighting_blocks (source_id, block, bits) FROM STDIN", rows);
  }
  sql::Execute(db_,
               "UPDATE discovery_sources SET sighted_run_id = $2, sighted_at = cmdb_ts($3) WHERE "
               "id = $1",
               soci::use(source), soci::use(static_cast<long long>(run_id)),
               soci::use(static_cast<long long>(observed_at.micros)));
}

}  // namespace cmdb::store
