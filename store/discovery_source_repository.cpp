#include "store/discovery_source_repository.hpp"

#include "model/json.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

using model::DiscoverySource;
using model::Error;
using model::ErrorCode;
namespace json = boost::json;

namespace {

const char* const kSourceColumns =
    "id, name, kind, config::text, interval_seconds, cmdb_us(next_run_at), version, "
    "cmdb_us(created_at), cmdb_us(updated_at)";

DiscoverySource SourceFromRow(const soci::row& r) {
  DiscoverySource s;
  s.id = sql::Int(r, 0);
  s.name = sql::Text(r, 1);
  const std::string kind = sql::Text(r, 2);
  std::optional<model::SourceKind> parsed = model::SourceKindFromName(kind);
  if (!parsed) throw Error(ErrorCode::kInternal, "unknown source kind '" + kind + "' stored");
  s.kind = *parsed;
  model::FieldErrors ignored;
  s.config = model::ParseSourceConfig(sql::Json(r, 3), s.kind, ignored);
  if (auto i = sql::OptionalInt(r, 4)) s.interval_seconds = static_cast<int>(*i);
  s.next_run_at = sql::OptionalTime(r, 5);
  s.version = sql::Int(r, 6);
  s.created_at = sql::Time(r, 7);
  s.updated_at = sql::Time(r, 8);
  return s;
}

std::string What(std::int64_t id) { return "source " + std::to_string(id); }

}  // namespace

DiscoverySource DiscoverySourceRepository::Create(const DiscoverySource& draft) {
  std::optional<DiscoverySource> created;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO discovery_sources (name, kind, config, interval_seconds, "
                  "next_run_at) VALUES ($1, $2, $3::jsonb, $4::integer, CASE WHEN $4::integer IS "
                  "NULL THEN NULL ELSE clock_timestamp() END) RETURNING ") +
          kSourceColumns,
      [&](const soci::row& r) { created = SourceFromRow(r); }, soci::use(draft.name),
      soci::use(std::string(model::SourceKindName(draft.kind))),
      soci::use(model::ToJsonText(model::SourceConfigToJson(draft.config))),
      soci::use(draft.interval_seconds));
  return *created;
}

std::optional<DiscoverySource> DiscoverySourceRepository::Find(std::int64_t id) {
  std::optional<DiscoverySource> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kSourceColumns + " FROM discovery_sources WHERE id = $1",
      [&](const soci::row& r) { found = SourceFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<DiscoverySource> DiscoverySourceRepository::List() {
  std::vector<DiscoverySource> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kSourceColumns + " FROM discovery_sources ORDER BY id LIMIT 1000",
      [&](const soci::row& r) { out.push_back(SourceFromRow(r)); });
  return out;
}

DiscoverySource DiscoverySourceRepository::Patch(std::int64_t id, const json::value& patch,
                                                 std::optional<std::int64_t> if_match) {
  if (!patch.is_object()) throw Error(ErrorCode::kInvalidArgument, "a patch is a JSON object");
  Transaction tr(db_);
  static const std::string lock =
      std::string("SELECT ") + kSourceColumns + " FROM discovery_sources WHERE id = $1 FOR UPDATE";
  const DiscoverySource current =
      LockVersioned(db_, lock, std::to_string(id), if_match, What(id), SourceFromRow);
  json::object base = model::DiscoverySourceToJson(current);
  if (patch.get_object().contains("kind") && patch.at("kind") != base.at("kind")) {
    throw Error(ErrorCode::kValidationFailed, "the source is invalid",
                {{"kind", "cannot change; create another source"}});
  }
  const DiscoverySource next = model::DiscoverySourceFromJson(model::MergePatch(base, patch));
  std::optional<DiscoverySource> updated;
  sql::ForEachRow(
      db_,
      std::string("UPDATE discovery_sources SET name = $2, config = $3::jsonb, interval_seconds "
                  "= $4::integer, next_run_at = CASE WHEN $4::integer IS NULL THEN NULL ELSE "
                  "coalesce(least(next_run_at, clock_timestamp() + $4::integer * interval '1 "
                  "second'), clock_timestamp()) END, version = version + 1, updated_at = "
                  "clock_timestamp() WHERE id = $1 RETURNING ") +
          kSourceColumns,
      [&](const soci::row& r) { updated = SourceFromRow(r); },
      soci::use(static_cast<long long>(id)), soci::use(next.name),
      soci::use(model::ToJsonText(model::SourceConfigToJson(next.config))),
      soci::use(next.interval_seconds));
  tr.Commit();
  return *updated;
}

void DiscoverySourceRepository::Delete(std::int64_t id) {
  // Sightings outlive their source: its open streaks (the bits of its blocks) end at its
  // latest writing run, as rows (0014_sighting_blocks.sql). The row lock waits for a run that
  // is writing this source's sightings.
  Transaction tr(db_);
  const long long source = id;
  sql::Execute(db_, "SELECT 1 FROM discovery_sources WHERE id = $1 FOR UPDATE", soci::use(source));
  sql::Execute(db_,
               "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at) "
               "SELECT (b.block << 10) + i, b.source_id, d.sighted_run_id, d.sighted_at FROM "
               "discovery_sighting_blocks b JOIN discovery_sources d ON d.id = b.source_id "
               "CROSS JOIN generate_series(0, 1023) i WHERE b.source_id = $1 AND get_bit(b.bits, "
               "i) = 1 AND d.sighted_run_id IS NOT NULL ON CONFLICT (ci_id, source_id) DO UPDATE "
               "SET last_run_id = excluded.last_run_id, last_seen_at = excluded.last_seen_at",
               soci::use(source));
  sql::Execute(db_, "DELETE FROM discovery_sighting_blocks WHERE source_id = $1",
               soci::use(source));
  if (sql::Execute(db_, "DELETE FROM discovery_sources WHERE id = $1", soci::use(source)) == 0) {
    throw Error(ErrorCode::kNotFound, What(id) + " does not exist");
  }
  tr.Commit();
}

std::vector<model::StaleCi> DiscoverySourceRepository::StaleCis(const DiscoverySource& source) {
  std::vector<model::StaleCi> out;
  if (!source.config.stale_after_runs) return out;
  // A CI is stale when the source's last N successful, writing runs all came after the run
  // that last saw it. A CI in an open streak (a bit of the source's blocks, not a row) was
  // renewed by the latest writing run, so it has missed none.
  sql::ForEachRow(
      db_,
      "WITH runs AS (SELECT id FROM discovery_runs WHERE source_id = $1 AND state = 'succeeded' "
      "AND NOT dry_run), "
      "s AS (SELECT s.ci_id, s.last_run_id, s.last_seen_at, (SELECT count(*) FROM runs WHERE "
      "runs.id > s.last_run_id) AS missed FROM discovery_sightings s WHERE s.source_id = $1) "
      "SELECT s.ci_id, c.name, s.last_run_id, cmdb_us(s.last_seen_at), s.missed FROM s JOIN "
      "configuration_items c ON c.id = s.ci_id WHERE s.missed >= $2 ORDER BY s.ci_id LIMIT 10000",
      [&](const soci::row& r) {
        out.push_back(
            {sql::Int(r, 0), sql::Text(r, 1), sql::Int(r, 2), sql::Time(r, 3), sql::Int(r, 4)});
      },
      soci::use(static_cast<long long>(source.id)), soci::use(*source.config.stale_after_runs));
  return out;
}

}  // namespace cmdb::store
