#include "discovery/discovery_store.hpp"

#include <boost/json/parse.hpp>

#include "model/compression.hpp"
#include "model/db_query.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using model::FieldErrors;
using model::P;
using model::PgParam;
using model::PgResult;
using model::Query;
using model::Timestamp;

namespace {

PgParam OptInt(const std::optional<std::int64_t>& v) { return v ? P(*v) : PgParam(std::nullopt); }

const char* const kSourceColumns =
    "id, name, kind, config::text, interval_seconds, cmdb_us(next_run_at), version, "
    "cmdb_us(created_at), cmdb_us(updated_at)";

Source SourceFromRow(const PgResult& r, int row) {
  Source s;
  s.id = r.Int(row, 0);
  s.name = std::string(r.Text(row, 1));
  s.kind = std::string(r.Text(row, 2));
  FieldErrors ignored;
  s.config = ParseSourceConfig(model::ParseStoredJson(r.Text(row, 3)), s.kind, ignored);
  if (auto i = r.OptionalInt(row, 4)) s.interval_seconds = static_cast<int>(*i);
  s.next_run_at = r.OptionalTimestamp(row, 5);
  s.version = r.Int(row, 6);
  s.created_at = Timestamp{r.Int(row, 7)};
  s.updated_at = Timestamp{r.Int(row, 8)};
  return s;
}

const char* const kRunColumns =
    "id, source_id, state, dry_run, trigger, error, progress_done, progress_total, counts::text, "
    "attempts, claimed_by, cmdb_us(queued_at), cmdb_us(started_at), cmdb_us(finished_at), "
    "timings::text";

Run RunFromRow(const PgResult& r, int row) {
  Run run;
  run.id = r.Int(row, 0);
  run.source_id = r.Int(row, 1);
  run.state = std::string(r.Text(row, 2));
  run.dry_run = r.Bool(row, 3);
  run.trigger = std::string(r.Text(row, 4));
  run.error = r.OptionalText(row, 5);
  run.done = r.Int(row, 6);
  run.total = r.OptionalInt(row, 7);
  run.counts = r.Json(row, 8);
  run.attempts = static_cast<int>(r.Int(row, 9));
  run.claimed_by = r.OptionalText(row, 10);
  run.queued_at = Timestamp{r.Int(row, 11)};
  run.started_at = r.OptionalTimestamp(row, 12);
  run.finished_at = r.OptionalTimestamp(row, 13);
  run.timings = r.Json(row, 14);
  return run;
}

const char* const kFindingColumns =
    "id, ci_id, attribute, expected::text, actual::text, state, authorized, change_id, run_id, "
    "last_run_id, cmdb_us(detected_at), cmdb_us(observed_at), cmdb_us(updated_at), "
    "cmdb_us(closed_at), closed_by, version";

Finding FindingFromRow(const PgResult& r, int row) {
  Finding f;
  f.id = r.Int(row, 0);
  f.ci = r.Int(row, 1);
  f.attribute = std::string(r.Text(row, 2));
  f.expected = r.Json(row, 3);
  f.actual = r.Json(row, 4);
  f.state = std::string(r.Text(row, 5));
  f.authorized = r.Bool(row, 6);
  f.change = r.OptionalInt(row, 7);
  f.run = r.Int(row, 8);
  f.last_run = r.Int(row, 9);
  f.detected_at = Timestamp{r.Int(row, 10)};
  f.observed_at = Timestamp{r.Int(row, 11)};
  f.updated_at = Timestamp{r.Int(row, 12)};
  f.closed_at = r.OptionalTimestamp(row, 13);
  f.closed_by = r.OptionalText(row, 14);
  f.version = r.Int(row, 15);
  return f;
}

// Validates the writable fields of a source; `current` is null for a new one.
void ValidateSource(const json::object& body, FieldErrors& errors, std::string& name,
                    std::string& kind, SourceConfig& config, json::value& config_json,
                    std::optional<int>& interval) {
  model::CheckFields(body,
                     {"name", "kind", "config", "interval_seconds", "id", "version", "created_at",
                      "updated_at", "next_run_at"},
                     errors);
  const json::value* n = body.if_contains("name");
  if (n == nullptr || !n->is_string() || n->get_string().empty() || n->get_string().size() > 200) {
    errors.Add("name", "required: a string of 1 to 200 characters");
  } else {
    name = std::string(n->get_string());
  }
  const json::value* k = body.if_contains("kind");
  static const std::vector<std::string> kinds = {"nmap_xml", "ansible_facts", "local_host",
                                                 "agent"};
  if (k == nullptr || !k->is_string() ||
      std::find(kinds.begin(), kinds.end(), std::string(k->get_string())) == kinds.end()) {
    errors.Add("kind", "required: one of nmap_xml, ansible_facts, local_host, agent");
  } else {
    kind = std::string(k->get_string());
  }
  const json::value* c = body.if_contains("config");
  config_json = c != nullptr ? *c : json::value(nullptr);
  config = ParseSourceConfig(config_json, kind, errors);
  interval.reset();
  if (const json::value* i = body.if_contains("interval_seconds"); i != nullptr && !i->is_null()) {
    if (!i->is_int64() || i->get_int64() < 10 || i->get_int64() > std::int64_t{31} * 24 * 3600) {
      errors.Add("interval_seconds", "must be an integer from 10 to 2678400 (31 days), or null");
    } else {
      interval = static_cast<int>(i->get_int64());
    }
  }
  if (interval && kind == "agent") {
    errors.Add("interval_seconds", "agent sources are pushed to; they cannot be scheduled");
  }
  if (interval && (kind == "nmap_xml" || kind == "ansible_facts") && config.path.empty()) {
    errors.Add("config.path", "a scheduled " + kind + " source reads its input from config.path");
  }
}

}  // namespace

json::object SourceToJson(const Source& s) {
  return {{"id", s.id},
          {"name", s.name},
          {"kind", s.kind},
          {"config", SourceConfigToJson(s.config)},
          {"interval_seconds",
           s.interval_seconds ? json::value(*s.interval_seconds) : json::value(nullptr)},
          {"next_run_at", model::TimestampJson(s.next_run_at)},
          {"version", s.version},
          {"created_at", model::FormatTimestamp(s.created_at)},
          {"updated_at", model::FormatTimestamp(s.updated_at)}};
}

json::object RunToJson(const Run& run) {
  json::object o{{"id", run.id},
                 {"source", run.source_id},
                 {"state", run.state},
                 {"dry_run", run.dry_run},
                 {"trigger", run.trigger},
                 {"error", run.error ? json::value(*run.error) : json::value(nullptr)},
                 {"progress", json::object{{"done", run.done},
                                           {"total", run.total ? json::value(*run.total)
                                                               : json::value(nullptr)}}},
                 {"attempts", run.attempts},
                 {"queued_at", model::FormatTimestamp(run.queued_at)},
                 {"started_at", model::TimestampJson(run.started_at)},
                 {"finished_at", model::TimestampJson(run.finished_at)}};
  json::object counts{{"observed", 0}, {"matched", 0},   {"created", 0},
                      {"drifted", 0},  {"unmatched", 0}, {"ambiguous", 0}};
  if (run.counts.is_object()) {
    for (const auto& [k, v] : run.counts.get_object()) counts[k] = v;
  }
  o["counts"] = std::move(counts);
  o["timings"] = run.timings;
  return o;
}

json::object FindingToJson(const Finding& f) {
  return {{"id", f.id},
          {"ci", f.ci},
          {"attribute", f.attribute},
          {"expected", f.expected},
          {"actual", f.actual},
          {"detected_at", model::FormatTimestamp(f.detected_at)},
          {"observed_at", model::FormatTimestamp(f.observed_at)},
          {"run", f.run},
          {"last_run", f.last_run},
          {"state", f.state},
          {"authorized", f.authorized},
          {"change", f.change ? json::value(*f.change) : json::value(nullptr)},
          {"closed_at", model::TimestampJson(f.closed_at)},
          {"closed_by", f.closed_by ? json::value(*f.closed_by) : json::value(nullptr)},
          {"version", f.version}};
}

// --- sources ---

Source DiscoveryStore::CreateSource(const json::value& body) {
  const json::object* o = body.if_object();
  if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, "a source is a JSON object");
  FieldErrors errors;
  std::string name;
  std::string kind;
  SourceConfig config;
  json::value config_json;
  std::optional<int> interval;
  ValidateSource(*o, errors, name, kind, config, config_json, interval);
  errors.ThrowIfAny("the source is invalid");
  PgResult r = Query(sql_,
                     std::string("INSERT INTO discovery_sources (name, kind, config, "
                                 "interval_seconds, next_run_at) VALUES ($1, $2, $3::jsonb, "
                                 "$4::integer, CASE WHEN $4::integer IS NULL THEN NULL ELSE "
                                 "clock_timestamp() END) RETURNING ") +
                         kSourceColumns,
                     {P(name), P(kind), model::ToJsonText(SourceConfigToJson(config)),
                      interval ? P(*interval) : PgParam(std::nullopt)});
  return SourceFromRow(r, 0);
}

std::optional<Source> DiscoveryStore::FindSource(std::int64_t id) {
  PgResult r =
      Query(sql_, std::string("SELECT ") + kSourceColumns + " FROM discovery_sources WHERE id = $1",
            {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return SourceFromRow(r, 0);
}

std::vector<Source> DiscoveryStore::ListSources() {
  PgResult r = Query(sql_, std::string("SELECT ") + kSourceColumns +
                               " FROM discovery_sources ORDER BY id LIMIT 1000");
  std::vector<Source> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(SourceFromRow(r, i));
  return out;
}

Source DiscoveryStore::PatchSource(std::int64_t id, const json::value& patch,
                                   std::optional<std::int64_t> if_match) {
  if (!patch.is_object()) throw Error(ErrorCode::kInvalidArgument, "a patch is a JSON object");
  model::Transaction tr(sql_);
  PgResult cur = Query(
      sql_,
      std::string("SELECT ") + kSourceColumns + " FROM discovery_sources WHERE id = $1 FOR UPDATE",
      {P(id)});
  if (cur.rows() == 0)
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " not found");
  Source current = SourceFromRow(cur, 0);
  if (if_match && *if_match != current.version) {
    throw Error(ErrorCode::kVersionMismatch, "source " + std::to_string(id) + " is at version " +
                                                 std::to_string(current.version) + ", not " +
                                                 std::to_string(*if_match));
  }
  json::object base = SourceToJson(current);
  if (patch.get_object().contains("kind") && patch.at("kind") != base.at("kind")) {
    throw Error(ErrorCode::kValidationFailed, "the source is invalid",
                {{"kind", "cannot change; create another source"}});
  }
  json::value merged = model::MergePatch(base, patch);
  FieldErrors errors;
  std::string name;
  std::string kind;
  SourceConfig config;
  json::value config_json;
  std::optional<int> interval;
  ValidateSource(merged.get_object(), errors, name, kind, config, config_json, interval);
  errors.ThrowIfAny("the patched source is invalid");
  PgResult r = Query(
      sql_,
      std::string("UPDATE discovery_sources SET name = $2, config = $3::jsonb, interval_seconds = "
                  "$4::integer, next_run_at = CASE WHEN $4::integer IS NULL THEN NULL ELSE "
                  "coalesce(least(next_run_at, clock_timestamp() + $4::integer * interval '1 "
                  "second'), clock_timestamp()) END, version = version + 1, updated_at = "
                  "clock_timestamp() WHERE id = $1 RETURNING ") +
          kSourceColumns,
      {P(id), P(name), model::ToJsonText(SourceConfigToJson(config)),
       interval ? P(*interval) : PgParam(std::nullopt)});
  tr.Commit();
  return SourceFromRow(r, 0);
}

void DiscoveryStore::DeleteSource(std::int64_t id) {
  // Sightings outlive their source: its open streaks (the bits of its blocks) end at its
  // latest writing run, as rows (0014_sighting_blocks.sql). The row lock waits for a run that
  // is writing this source's sightings.
  model::Transaction tr(sql_);
  Query(sql_, "SELECT 1 FROM discovery_sources WHERE id = $1 FOR UPDATE", {P(id)});
  Query(sql_,
        "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at) "
        "SELECT (b.block << 10) + i, b.source_id, d.sighted_run_id, d.sighted_at FROM "
        "discovery_sighting_blocks b JOIN discovery_sources d ON d.id = b.source_id CROSS JOIN "
        "generate_series(0, 1023) i WHERE b.source_id = $1 AND get_bit(b.bits, i) = 1 AND "
        "d.sighted_run_id IS NOT NULL ON CONFLICT (ci_id, source_id) DO UPDATE SET last_run_id = "
        "excluded.last_run_id, last_seen_at = excluded.last_seen_at",
        {P(id)});
  Query(sql_, "DELETE FROM discovery_sighting_blocks WHERE source_id = $1", {P(id)});
  PgResult r = Query(sql_, "DELETE FROM discovery_sources WHERE id = $1", {P(id)});
  if (r.affected() == 0)
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(id) + " not found");
  tr.Commit();
}

// --- runs ---

Run DiscoveryStore::EnqueueRun(std::int64_t source_id, bool dry_run,
                               const std::string& content_type, const std::string& payload) {
  PgResult r = model::QueryWithBytes(
      sql_,
      std::string("INSERT INTO discovery_runs (source_id, dry_run, content_type, "
                  "payload) SELECT id, $2, $3, $4::bytea FROM discovery_sources "
                  "WHERE id = $1 RETURNING ") +
          kRunColumns,
      {P(source_id), P(dry_run ? "true" : "false"),
       content_type.empty() ? PgParam(std::nullopt) : P(content_type),
       payload.empty() ? PgParam(std::nullopt) : P(payload)},
      3);
  if (r.rows() == 0) {
    throw Error(ErrorCode::kNotFound, "source " + std::to_string(source_id) + " not found");
  }
  return RunFromRow(r, 0);
}

std::optional<Run> DiscoveryStore::FindRun(std::int64_t id) {
  PgResult r = Query(
      sql_, std::string("SELECT ") + kRunColumns + " FROM discovery_runs WHERE id = $1", {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return RunFromRow(r, 0);
}

std::vector<Run> DiscoveryStore::ListRuns(std::optional<std::int64_t> source_id, std::int64_t after,
                                          int limit) {
  PgResult r = Query(sql_,
                     std::string("SELECT ") + kRunColumns +
                         " FROM discovery_runs WHERE ($1::bigint IS NULL OR source_id = $1) AND "
                         "id > $2 ORDER BY id LIMIT $3",
                     {OptInt(source_id), P(after), P(limit)});
  std::vector<Run> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(RunFromRow(r, i));
  return out;
}

DecisionPage DiscoveryStore::Decisions(std::int64_t run_id,
                                       const std::optional<std::string>& outcome,
                                       std::int64_t after, int limit) {
  DecisionPage page;
  std::int64_t from = after;
  while (static_cast<int>(page.items.size()) <= limit) {
    PgResult r =
        Query(sql_,
              "SELECT last_seq, decisions, decisions_lz4, decisions_bytes FROM "
              "discovery_decisions WHERE run_id = $1 "
              "AND last_seq > $2 AND ($3::text IS NULL OR outcomes ? $3) ORDER BY first_seq "
              "LIMIT 4",
              {P(run_id), P(from), outcome ? P(*outcome) : PgParam(std::nullopt)});
    if (r.rows() == 0) break;
    for (int i = 0; i < r.rows() && static_cast<int>(page.items.size()) <= limit; ++i) {
      // Blocks written before 0012 are text; later ones LZ4 blocks compressed by cmdb.
      json::value block = model::ParseStoredJson(
          r.IsNull(i, 1) ? model::Lz4Decompress(model::DecodeBytea(r.Text(i, 2)),
                                                static_cast<std::size_t>(r.Int(i, 3)))
                         : std::string(r.Text(i, 1)));
      for (json::value& d : block.as_array()) {
        const json::object& o = d.as_object();
        if (o.at("seq").as_int64() <= after) continue;
        if (outcome && o.at("outcome").as_string() != *outcome) continue;
        page.items.push_back(std::move(d));
        if (static_cast<int>(page.items.size()) > limit) break;
      }
      from = r.Int(i, 0);
    }
  }
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(static_cast<std::size_t>(limit));
    page.next_after = limit > 0 ? page.items.back().at("seq").as_int64() : after;
  }
  return page;
}

std::vector<StaleCi> DiscoveryStore::StaleCis(const Source& source) {
  std::vector<StaleCi> out;
  if (!source.config.stale_after_runs) return out;
  // A CI is stale when the source's last N successful, writing runs all came after the run
  // that last saw it. A CI in an open streak (a bit of the source's blocks, not a row) was
  // renewed by the latest writing run, so it has missed none.
  PgResult r = Query(
      sql_,
      "WITH runs AS (SELECT id FROM discovery_runs WHERE source_id = $1 AND state = 'succeeded' "
      "AND NOT dry_run), "
      "s AS (SELECT s.ci_id, s.last_run_id, s.last_seen_at, (SELECT count(*) FROM runs WHERE "
      "runs.id > s.last_run_id) AS missed FROM discovery_sightings s WHERE s.source_id = $1) "
      "SELECT s.ci_id, c.name, s.last_run_id, cmdb_us(s.last_seen_at), s.missed FROM s JOIN "
      "configuration_items c ON c.id = s.ci_id WHERE s.missed >= $2 ORDER BY s.ci_id LIMIT 10000",
      {P(source.id), P(*source.config.stale_after_runs)});
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(
        {r.Int(i, 0), std::string(r.Text(i, 1)), r.Int(i, 2), Timestamp{r.Int(i, 3)}, r.Int(i, 4)});
  }
  return out;
}

// --- drift ---

std::vector<Finding> DiscoveryStore::ListFindings(const FindingFilter& filter) {
  PgResult r = Query(
      sql_,
      std::string("SELECT ") + kFindingColumns +
          " FROM drift_findings WHERE id > $1 AND ($2::text IS NULL OR state = $2) AND "
          "($3::bigint IS NULL OR ci_id = $3) AND ($4::boolean IS NULL OR authorized = $4) AND "
          "($5::text IS NULL OR attribute = $5) AND ($6::bigint IS NULL OR run_id = $6 OR "
          "last_run_id = $6) ORDER BY id LIMIT $7",
      {P(filter.after), filter.state ? P(*filter.state) : PgParam(std::nullopt), OptInt(filter.ci),
       filter.authorized ? P(*filter.authorized ? "true" : "false") : PgParam(std::nullopt),
       filter.attribute ? P(*filter.attribute) : PgParam(std::nullopt), OptInt(filter.run),
       P(filter.limit + 1)});
  std::vector<Finding> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(FindingFromRow(r, i));
  return out;
}

std::optional<Finding> DiscoveryStore::FindFinding(std::int64_t id) {
  PgResult r =
      Query(sql_, std::string("SELECT ") + kFindingColumns + " FROM drift_findings WHERE id = $1",
            {P(id)});
  if (r.rows() == 0) return std::nullopt;
  return FindingFromRow(r, 0);
}

namespace {

Finding LockOpenFinding(soci::session& sql, std::int64_t id, std::optional<std::int64_t> if_match,
                        std::string_view action) {
  PgResult r = Query(
      sql,
      std::string("SELECT ") + kFindingColumns + " FROM drift_findings WHERE id = $1 FOR UPDATE",
      {P(id)});
  if (r.rows() == 0)
    throw Error(ErrorCode::kNotFound, "finding " + std::to_string(id) + " not found");
  Finding f = FindingFromRow(r, 0);
  if (if_match && *if_match != f.version) {
    throw Error(ErrorCode::kVersionMismatch, "finding " + std::to_string(id) + " is at version " +
                                                 std::to_string(f.version) + ", not " +
                                                 std::to_string(*if_match));
  }
  if (f.state != "open") {
    throw Error(ErrorCode::kConflict, "finding " + std::to_string(id) + " is " + f.state +
                                          "; only open findings can be " + std::string(action));
  }
  return f;
}

Finding Close(soci::session& sql, std::int64_t id, const char* state, const std::string& by) {
  PgResult r = Query(sql,
                     std::string("UPDATE drift_findings SET state = $2, closed_at = "
                                 "clock_timestamp(), closed_by = $3, updated_at = "
                                 "clock_timestamp(), version = version + 1 WHERE id = $1 "
                                 "RETURNING ") +
                         kFindingColumns,
                     {P(id), P(state), P(by)});
  return FindingFromRow(r, 0);
}

}  // namespace

Finding DiscoveryStore::AcceptFinding(std::int64_t id, std::optional<std::int64_t> if_match,
                                      const model::WriteContext& ctx) {
  model::Transaction tr(sql_);
  Finding f = LockOpenFinding(sql_, id, if_match, "accepted");
  model::CiRepository cis(sql_);
  if (!cis.FindById(f.ci)) {
    throw Error(ErrorCode::kConflict,
                "CI " + std::to_string(f.ci) + " no longer exists; ignore the finding instead");
  }
  json::object attributes;
  attributes[f.attribute] = f.actual;
  model::WriteContext write{ctx.changed_by, "drift:" + std::to_string(id)};
  cis.Patch(f.ci, json::object{{"attributes", std::move(attributes)}}, std::nullopt, write);
  Finding closed = Close(sql_, id, "accepted", ctx.changed_by);
  tr.Commit();
  return closed;
}

Finding DiscoveryStore::IgnoreFinding(std::int64_t id, std::optional<std::int64_t> if_match,
                                      const model::WriteContext& ctx) {
  model::Transaction tr(sql_);
  LockOpenFinding(sql_, id, if_match, "ignored");
  Finding closed = Close(sql_, id, "ignored", ctx.changed_by);
  tr.Commit();
  return closed;
}

}  // namespace cmdb::discovery
