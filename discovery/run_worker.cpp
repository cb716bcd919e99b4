#include "discovery/run_worker.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>

#include "discovery/collectors.hpp"
#include "discovery/reconcile.hpp"
#include "discovery/sightings.hpp"
#include "model/change_repository.hpp"
#include "model/ci_type_repository.hpp"
#include "model/compression.hpp"
#include "model/db_pool.hpp"
#include "model/db_query.hpp"
#include "model/error.hpp"
#include "model/importer.hpp"
#include "model/json.hpp"
#include "model/parallel.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;
using model::P;
using model::PgParam;
using model::PgResult;
using model::Query;

namespace {

constexpr std::uintmax_t kMaxInputFile = std::uintmax_t{256} * 1024 * 1024;

std::string ReadInputFile(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kInvalidArgument, "cannot read '" + path + "': " + ec.message());
  if (size > kMaxInputFile) {
    throw Error(ErrorCode::kInvalidArgument, "'" + path + "' is larger than 256 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsJsonType(const std::string& t) {
  return t.empty() || t == "application/json" ||
         (t.size() > 5 && t.compare(t.size() - 5, 5, "+json") == 0);
}

// Queues a run of every source whose interval has come round and that has none waiting.
void QueueScheduledRuns(soci::session& sql) {
  Query(sql,
        "WITH due AS (SELECT id, interval_seconds FROM discovery_sources WHERE interval_seconds "
        "IS NOT NULL AND next_run_at <= clock_timestamp() FOR UPDATE SKIP LOCKED), "
        "bumped AS (UPDATE discovery_sources s SET next_run_at = clock_timestamp() + "
        "due.interval_seconds * interval '1 second' FROM due WHERE s.id = due.id RETURNING s.id) "
        "INSERT INTO discovery_runs (source_id, trigger) SELECT b.id, 'schedule' FROM bumped b "
        "WHERE NOT EXISTS (SELECT 1 FROM discovery_runs r WHERE r.source_id = b.id AND r.state "
        "IN ('queued', 'running'))");
}

}  // namespace

std::vector<Observation> Collect(const Source& source, const std::string& content_type,
                                 const std::string& payload) {
  const std::string& kind = source.kind;
  if (kind == "local_host") {
    if (!payload.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "a local_host run observes this machine; it takes no body");
    }
    return {CollectLocalHost()};
  }
  if (kind == "agent") {
    if (payload.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "an agent run needs its observations as the body");
    }
    if (!IsJsonType(content_type)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "agent observations are application/json, not " + content_type);
    }
    return ParseAgentPayload(model::ParseJson(payload));
  }
  if (payload.empty() && source.config.path.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no input: post the " +
                    std::string(kind == "nmap_xml" ? "nmap -oX report" : "ansible facts file") +
                    " as the run's body, or set the source's config.path");
  }
  if (kind == "nmap_xml") {
    if (!payload.empty() && !content_type.empty() && content_type != "application/xml" &&
        content_type != "text/xml") {
      throw Error(ErrorCode::kInvalidArgument,
                  "an nmap report is application/xml, not " + content_type);
    }
    return ParseNmapXml(payload.empty() ? ReadInputFile(source.config.path) : payload);
  }
  if (kind == "ansible_facts") {
    if (!payload.empty()) {
      if (!IsJsonType(content_type)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "ansible facts are application/json, not " + content_type);
      }
      return {ParseAnsibleFacts(payload)};
    }
    if (std::filesystem::is_directory(source.config.path))
      return ReadAnsibleTree(source.config.path);
    return {ParseAnsibleFacts(ReadInputFile(source.config.path),
                              std::filesystem::path(source.config.path).filename().string())};
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown source kind " + kind);
}

namespace {

// The work of one run inside its transaction.
class RunExecution {
 public:
  RunExecution(soci::session& sql, std::int64_t run_id,
               const std::function<void(std::int64_t, std::int64_t)>& progress)
      : sql_(sql), run_id_(run_id), progress_(progress) {}

  void Execute() {
    PgResult r = Query(sql_,
                       "SELECT r.source_id, r.dry_run, coalesce(r.content_type, ''), "
                       "cmdb_us(coalesce(r.started_at, clock_timestamp())) FROM discovery_runs r "
                       "WHERE r.id = $1",
                       {P(run_id_)});
    if (r.rows() == 0) throw Error(ErrorCode::kNotFound, "run vanished");
    DiscoveryStore store(sql_);
    std::optional<Source> source = store.FindSource(r.Int(0, 0));
    if (!source) throw Error(ErrorCode::kNotFound, "the run's source was deleted");
    source_ = std::move(*source);
    dry_run_ = r.Bool(0, 1);
    observed_at_ = r.Int(0, 3);
    const std::string content_type(r.Text(0, 2));
    // The payload's bytes as they are (binary result format), not 2 hex digits per byte.
    const std::string payload =
        model::QueryBytes(sql_, "SELECT payload FROM discovery_runs WHERE id = $1", {P(run_id_)});

    Phase("read_run");
    // Parsing the payload (one core) overlaps loading the CIs of the source's type (the other
    // core and PostgreSQL).
    std::future<std::vector<Observation>> collected =
        std::async(std::launch::async, [&] { return Collect(source_, content_type, payload); });
    model::Transaction tr(sql_);
    std::map<std::string, Loaded, std::less<>> loaded;
    try {
      Load(source_.config.ci_type, loaded);
    } catch (...) {
      collected.wait();
      throw;
    }
    std::vector<Observation> observations = collected.get();
    const auto total = static_cast<std::int64_t>(observations.size());
    progress_(0, total);

    bool loopback = source_.config.loopback_identities;
    if (source_.kind == "nmap_xml" && !observations.empty()) {
      // A scan of loopback addresses is identified by them; any other scan is not.
      loopback =
          loopback || std::all_of(observations.begin(), observations.end(), [](const auto& o) {
            const json::value* ip = o.attributes.if_contains("ip");
            return ip != nullptr && ip->is_string() && IsLoopbackAddress(ip->get_string());
          });
    }
    Reconciler reconciler(source_.config, JunkRules(source_.config.junk_values, loopback));
    for (const auto& o : observations) Load(reconciler.TypeOf(o), loaded);
    Phase("collect_and_load");
    // Indexing the candidates (all cores) overlaps reading the open findings (PostgreSQL).
    std::vector<std::string> known;
    for (auto& [name, l] : loaded) {
      if (l.type) known.push_back(name);
    }
    std::future<void> indexed = std::async(std::launch::async, [&] {
      for (auto& [name, l] : loaded) {
        if (l.type) reconciler.AddType(std::move(*l.type), std::move(l.candidates));
      }
    });
    KnownFindings findings;
    try {
      findings = LoadFindings(known);
    } catch (...) {
      indexed.wait();
      throw;
    }
    indexed.get();
    for (auto& [ci, attribute, f] : findings.open)
      reconciler.AddOpenFinding(ci, attribute, std::move(f));
    for (auto& [ci, attribute, f] : findings.ignored) {
      reconciler.AddIgnoredFinding(ci, attribute, std::move(f));
    }
    Phase("index");
    // The order-independent part of every decision on all cores (PostgreSQL has nothing to do
    // meanwhile), then the rest in observation order.
    std::vector<Reconciler::Draft> drafts(observations.size());
    model::ParallelFor(
        observations.size(),
        [&](std::size_t i) {
          drafts[i] = reconciler.Prepare(observations[i], static_cast<int>(i) + 1);
        },
        [&](std::size_t done) { progress_(static_cast<std::int64_t>(done), total); });
    decisions_.reserve(observations.size());
    for (auto& draft : drafts) decisions_.push_back(reconciler.Settle(std::move(draft)));
    Phase("reconcile");
    Authorize();
    if (!dry_run_) {
      CreateCis();
      Phase("register");
      FillRecords();
      Phase("fill");
      AssignFindingIds();
    }
    // The decisions are final now (CI and finding ids known): encode them on a second core
    // while the findings and sightings are written.
    std::future<model::CopyBuffer> encoded =
        std::async(std::launch::async, [this] { return EncodeDecisions(); });
    if (!dry_run_) {
      try {
        WriteFindings();
        Phase("findings");
        StampSeen();
        Phase("last_seen");
      } catch (...) {
        encoded.wait();
        throw;
      }
    }
    model::CopyBuffer decisions = encoded.get();
    Phase("decisions_encode");
    WriteDecisions(decisions);
    Phase("decisions_copy");
    json::object counts = Counts(total);
    Query(sql_,
          "UPDATE discovery_runs SET state = 'succeeded', counts = $2::jsonb, progress_done = $3, "
          "progress_total = $3, finished_at = clock_timestamp(), payload = NULL WHERE id = $1",
          {P(run_id_), model::ToJsonText(counts), P(total)});
    tr.Commit();
    Phase("commit");
    Query(sql_, "UPDATE discovery_runs SET timings = $2::jsonb WHERE id = $1",
          {P(run_id_), model::ToJsonText(timings_)});
  }

 private:
  struct Loaded {
    std::optional<model::CiType> type;  // nullopt: no such type
    std::vector<Candidate> candidates;
  };

  // Locks CI type `name` against imports and other runs and loads its CIs, once.
  void Load(const std::string& name, std::map<std::string, Loaded, std::less<>>& loaded) {
    if (loaded.contains(name)) return;
    Loaded& l = loaded[name];
    if (!model::IsValidIdentifier(name)) return;
    // Serialises with imports and other runs writing CIs of this type.
    Query(sql_, "SELECT pg_advisory_xact_lock(hashtext('cmdb.import.' || $1))", {P(name)});
    l.type = model::CiTypeRepository(sql_).Find(name, /*lock_shared=*/true);
    if (!l.type) return;
    // The type name is a validated identifier ([a-z][a-z0-9_]*), safe inside the literal.
    // One parser for every row: its buffers are allocated once, and each object is moved out.
    json::parse_options options;
    options.max_depth = model::kMaxStoredJsonDepth;
    json::parser parser({}, options);
    model::CopyOut(
        sql_, "SELECT id, name, attributes FROM configuration_items WHERE type = '" + name + "'",
        [&](const std::vector<std::string_view>& f) {
          Candidate c;
          c.id = std::stoll(std::string(f[0]));
          c.name = std::string(f[1]);
          parser.reset();
          parser.write(f[2].data(), f[2].size());
          json::value attributes = parser.release();
          c.attributes = std::move(attributes.as_object());
          l.candidates.push_back(std::move(c));
        });
  }

  // (CI, attribute, finding) rows.
  using FindingRows = std::vector<std::tuple<CiId, std::string, KnownFinding>>;
  struct KnownFindings {
    FindingRows open;
    FindingRows ignored;  // the latest closed finding of (CI, attribute), when ignored
  };

  // The open findings of the CIs of `known` types, and the latest closed ones if ignored.
  KnownFindings LoadFindings(const std::vector<std::string>& known) {
    KnownFindings out;
    if (known.empty()) return out;
    auto rows = [](const PgResult& r, FindingRows& into) {
      into.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) {
        into.emplace_back(r.Int(i, 1), std::string(r.Text(i, 2)),
                          KnownFinding{r.Int(i, 0), r.Json(i, 3), r.Json(i, 4)});
      }
    };
    const std::string types_literal = model::TextArrayLiteral(known);
    rows(Query(sql_,
               "SELECT f.id, f.ci_id, f.attribute, f.expected::text, f.actual::text FROM "
               "drift_findings f JOIN configuration_items c ON c.id = f.ci_id WHERE "
               "f.state = 'open' AND c.type = ANY($1::text[])",
               {types_literal}),
         out.open);
    rows(Query(sql_,
               "SELECT * FROM (SELECT DISTINCT ON (f.ci_id, f.attribute) f.id, f.ci_id, "
               "f.attribute, f.expected::text, f.actual::text, f.state FROM drift_findings f "
               "JOIN configuration_items c ON c.id = f.ci_id WHERE f.state <> 'open' AND "
               "c.type = ANY($1::text[]) ORDER BY f.ci_id, f.attribute, f.id DESC) latest WHERE "
               "state = 'ignored'",
               {types_literal}),
         out.ignored);
    return out;
  }

  model::WriteContext Context() const {
    return {"discovery:" + source_.name, "discovery:" + std::to_string(run_id_)};
  }

  void CreateCis() {
    json::array cis;
    std::vector<Decision*> rows;
    for (auto& d : decisions_) {
      if (d.outcome != Outcome::kCreated) continue;
      cis.push_back(json::object{
          {"type", d.type}, {"name", d.create_name}, {"attributes", d.create_attributes}});
      rows.push_back(&d);
    }
    if (rows.empty()) return;
    model::ImportOptions options;
    options.atomic = false;
    options.create_only = true;  // reconciliation found no CI for any of them
    options.ctx = Context();
    model::ImportResult result =
        model::ImportDocument(sql_, json::object{{"cis", std::move(cis)}}, options);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i]->ci = i < result.ci_ids.size() ? result.ci_ids[i] : 0;
    }
    for (const auto& e : result.errors) {
      // e.row is "cis[<i>]".
      std::size_t i = std::stoul(e.row.substr(4));
      if (i >= rows.size()) continue;
      rows[i]->outcome = Outcome::kRejected;
      rows[i]->ci = 0;
      rows[i]->reason =
          "could not register it: " + (e.field.empty() ? "" : e.field + ": ") + e.message;
    }
  }

  void FillRecords() {
    model::CiRepository cis(sql_);
    for (auto& d : decisions_) {
      if (d.outcome != Outcome::kMatched || d.fill.empty()) continue;
      try {
        cis.Patch(d.ci, json::object{{"attributes", d.fill}}, std::nullopt, Context());
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kValidationFailed) throw;
        d.notes.push_back(
            json::object{{"note", std::string("attributes not filled in: ") + e.what()}});
        d.fill.clear();
      }
    }
  }

  // Drift on a CI that an approved or in-progress change covers at the observation time is
  // authorised and names the change (model::AuthorizingChanges reads the change tables).
  void Authorize() {
    std::vector<std::int64_t> drifted;
    for (const auto& d : decisions_) {
      for (const auto& f : d.findings) {
        if (f.action != FindingAction::kResolve && f.action != FindingAction::kSuppressed) {
          drifted.push_back(d.ci);
          break;
        }
      }
    }
    if (drifted.empty()) return;
    std::map<std::int64_t, std::int64_t> changes =
        model::AuthorizingChanges(sql_, drifted, model::Timestamp{observed_at_});
    if (changes.empty()) return;
    for (auto& d : decisions_) {
      auto c = changes.find(d.ci);
      if (c == changes.end()) continue;
      for (auto& f : d.findings) f.change = c->second;
    }
  }

  // Ids for the findings this run opens, in one round trip, before anything is written: the
  // decision log names them and is encoded while the findings are written.
  void AssignFindingIds() {
    std::vector<FindingChange*> opened;
    for (auto& d : decisions_) {
      if (d.outcome != Outcome::kMatched) continue;
      for (auto& f : d.findings) {
        if (f.action == FindingAction::kOpen) opened.push_back(&f);
      }
    }
    if (opened.empty()) return;
    PgResult ids = Query(sql_, model::NextIdsQuery("drift_findings"),
                         {P(static_cast<std::int64_t>(opened.size()))});
    for (std::size_t i = 0; i < opened.size(); ++i) {
      opened[i]->finding_id = ids.Int(static_cast<int>(i), 0);
    }
  }

  void WriteFindings() {
    model::CopyBuffer opened;
    json::array updated;
    json::array unchanged;
    std::vector<std::int64_t> resolved;
    const std::string at_text = model::FormatTimestamp(model::Timestamp{observed_at_});
    for (const auto& d : decisions_) {
      if (d.outcome != Outcome::kMatched) continue;
      for (const auto& f : d.findings) {
        switch (f.action) {
          case FindingAction::kOpen:
            opened.Int(f.finding_id);
            opened.Int(d.ci);
            opened.Field(f.attribute);
            if (f.expected.is_null()) {
              opened.Null();
            } else {
              opened.Field(model::ToJsonText(f.expected));
            }
            opened.Field(model::ToJsonText(f.actual));
            opened.Int(run_id_);
            opened.Int(run_id_);
            opened.Field(at_text);
            opened.Field(at_text);
            opened.Field(f.change > 0 ? "t" : "f");
            if (f.change > 0) {
              opened.Int(f.change);
            } else {
              opened.Null();
            }
            opened.EndRow();
            break;
          case FindingAction::kUpdate:
            updated.push_back(json::object{
                {"id", f.finding_id},
                {"expected", f.expected},
                {"actual", f.actual},
                {"change", f.change > 0 ? json::value(f.change) : json::value(nullptr)}});
            break;
          case FindingAction::kUnchanged:
            unchanged.push_back(json::object{
                {"id", f.finding_id},
                {"change", f.change > 0 ? json::value(f.change) : json::value(nullptr)}});
            break;
          case FindingAction::kResolve:
            resolved.push_back(f.finding_id);
            break;
          case FindingAction::kSuppressed:
            break;
        }
      }
    }
    const PgParam run = P(run_id_);
    const PgParam at = P(observed_at_);
    if (opened.rows() > 0) {
      model::CopyIn(sql_,
                    "COPY drift_findings (id, ci_id, attribute, expected, actual, run_id, "
                    "last_run_id, detected_at, observed_at, authorized, change_id) FROM STDIN",
                    opened);
    }
    if (!updated.empty()) {
      Query(
          sql_,
          "UPDATE drift_findings f SET expected = x.expected, actual = x.actual, last_run_id = $2, "
          "observed_at = cmdb_ts($3), authorized = x.change IS NOT NULL, change_id = x.change, "
          "updated_at = clock_timestamp(), version = f.version + 1 FROM "
          "jsonb_to_recordset($1::jsonb) AS x(id bigint, expected jsonb, actual jsonb, change "
          "bigint) WHERE f.id = x.id AND f.state = 'open'",
          {model::ToJsonText(updated), run, at});
    }
    if (!unchanged.empty()) {
      // Whether a change covers it is decided again at every observation.
      Query(sql_,
            "UPDATE drift_findings f SET last_run_id = $2, observed_at = cmdb_ts($3), authorized "
            "= x.change IS NOT NULL, change_id = x.change FROM jsonb_to_recordset($1::jsonb) AS "
            "x(id bigint, change bigint) WHERE f.id = x.id AND f.state = 'open'",
            {model::ToJsonText(unchanged), run, at});
    }
    if (!resolved.empty()) {
      Query(sql_,
            "UPDATE drift_findings SET state = 'resolved', closed_at = clock_timestamp(), "
            "closed_by = $4, last_run_id = $2, observed_at = cmdb_ts($3), updated_at = "
            "clock_timestamp(), version = version + 1 WHERE id = ANY($1::bigint[]) AND state = "
            "'open'",
            {cmdb::model::IdArrayLiteral(resolved), run, at,
             P("discovery:" + std::to_string(run_id_))});
    }
  }

  // Records which CIs this run saw. A CI's last_seen_at is not versioned, so an observation
  // that changes nothing changes no version. Sightings are written as changes against the
  // previous writing run of the source (0011_sighting_streaks.sql): a CI in an open streak
  // is a bit of one of the source's blocks (0014_sighting_blocks.sql), renewed by every
  // writing run that sees it without being written; only the blocks whose bits change are
  // rewritten, a streak that ends becomes a row at the previous run, and a row of a CI seen
  // again goes.
  void StampSeen() {
    std::vector<std::int64_t> seen;
    for (const auto& d : decisions_) {
      if ((d.outcome == Outcome::kMatched || d.outcome == Outcome::kCreated) && d.ci > 0) {
        seen.push_back(d.ci);
      }
    }
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    // The source row's lock serialises the sightings of one source (runs of one source with
    // different CI types do not share the per-type lock).
    PgResult previous = Query(sql_,
                              "SELECT sighted_run_id, cmdb_us(sighted_at) FROM discovery_sources "
                              "WHERE id = $1 FOR UPDATE",
                              {P(source_.id)});
    if (previous.rows() == 0) throw Error(ErrorCode::kNotFound, "the run's source was deleted");
    const std::string source = std::to_string(source_.id);
    SightingBlocks blocks;
    model::CopyOut(sql_,
                   "SELECT block, bits FROM discovery_sighting_blocks WHERE source_id = " + source,
                   [&](const std::vector<std::string_view>& f) {
                     blocks.emplace(std::stoll(std::string(f[0])), ParseBits(f[1]));
                   });
    std::vector<std::int64_t> closed_rows;
    model::CopyOut(
        sql_,
        "SELECT ci_id FROM discovery_sightings WHERE source_id = " + source + " ORDER BY ci_id",
        [&](const std::vector<std::string_view>& f) {
          closed_rows.push_back(std::stoll(std::string(f[0])));
        });
    const SightingChanges changes = DiffSightings(blocks, closed_rows, seen);
    if (!changes.closed.empty() && !previous.IsNull(0, 0)) {
      Query(sql_,
            "INSERT INTO discovery_sightings (ci_id, source_id, last_run_id, last_seen_at) "
            "SELECT unnest($2::bigint[]), $1, $3, cmdb_ts($4) ON CONFLICT (ci_id, source_id) DO "
            "UPDATE SET last_run_id = excluded.last_run_id, last_seen_at = excluded.last_seen_at",
            {P(source_.id), model::IdArrayLiteral(changes.closed), P(previous.Int(0, 0)),
             P(previous.Int(0, 1))});
    }
    if (!changes.reopened.empty()) {
      Query(sql_,
            "DELETE FROM discovery_sightings WHERE source_id = $1 AND ci_id = ANY($2::bigint[])",
            {P(source_.id), model::IdArrayLiteral(changes.reopened)});
    }
    if (!changes.erase.empty()) {
      Query(sql_,
            "DELETE FROM discovery_sighting_blocks WHERE source_id = $1 AND block = "
            "ANY($2::bigint[])",
            {P(source_.id), model::IdArrayLiteral(changes.erase)});
    }
    if (!changes.write.empty()) {
      model::CopyBuffer rows;
      for (const auto& [block, bits] : changes.write) {
        rows.Int(source_.id);
        rows.Int(block);
        rows.Field(BitsText(bits));
        rows.EndRow();
      }
      model::CopyIn(sql_, "COPY discovery_sighting_blocks (source_id, block, bits) FROM STDIN",
                    rows);
    }
    Query(sql_,
          "UPDATE discovery_sources SET sighted_run_id = $2, sighted_at = cmdb_ts($3) WHERE id = "
          "$1",
          {P(source_.id), P(run_id_), P(observed_at_)});
  }

  // The decision log in blocks of kDecisionBlock observations (see 0004_discovery.sql).
  static constexpr std::size_t kDecisionBlock = 500;

  model::CopyBuffer EncodeDecisions() const {
    model::CopyBuffer buffer;
    std::string block;
    json::object outcomes;
    for (std::size_t first = 0; first < decisions_.size(); first += kDecisionBlock) {
      const std::size_t last = std::min(decisions_.size(), first + kDecisionBlock);
      block = "[";
      outcomes.clear();
      for (std::size_t i = first; i < last; ++i) {
        const Decision& d = decisions_[i];
        if (i > first) block += ',';
        d.AppendJson(block, dry_run_);
        json::value& count = outcomes[OutcomeName(d.outcome)];
        count = count.is_int64() ? count.get_int64() + 1 : 1;
      }
      block += ']';
      buffer.Int(run_id_);
      buffer.Int(decisions_[first].seq);
      buffer.Int(decisions_[last - 1].seq);
      buffer.Field(model::ToJsonText(outcomes));
      buffer.Bytea(model::Lz4Compress(block));
      buffer.Int(static_cast<std::int64_t>(block.size()));
      buffer.EndRow();
    }
    return buffer;
  }

  void WriteDecisions(const model::CopyBuffer& buffer) {
    if (buffer.rows() > 0) {
      model::CopyIn(sql_,
                    "COPY discovery_decisions (run_id, first_seq, last_seq, outcomes, "
                    "decisions_lz4, decisions_bytes) "
                    "FROM STDIN",
                    buffer);
    }
  }

  json::object Counts(std::int64_t total) const {
    std::int64_t matched = 0, created = 0, drifted = 0, unmatched = 0, ambiguous = 0, rejected = 0;
    std::int64_t opened = 0, updated = 0, resolved = 0, filled = 0, authorized = 0;
    for (const auto& d : decisions_) {
      switch (d.outcome) {
        case Outcome::kMatched:
          ++matched;
          break;
        case Outcome::kCreated:
          ++created;
          break;
        case Outcome::kUnmatched:
          ++unmatched;
          break;
        case Outcome::kAmbiguous:
          ++ambiguous;
          break;
        case Outcome::kRejected:
          ++rejected;
          break;
      }
      bool drift = false;
      for (const auto& f : d.findings) {
        if (f.action == FindingAction::kOpen) ++opened;
        if (f.action == FindingAction::kUpdate) ++updated;
        if (f.action == FindingAction::kResolve) ++resolved;
        const bool open = f.action == FindingAction::kOpen || f.action == FindingAction::kUpdate ||
                          f.action == FindingAction::kUnchanged;
        drift = drift || open;
        if (open && f.change > 0) ++authorized;
      }
      if (drift) ++drifted;
      if (!d.fill.empty()) ++filled;
    }
    return {{"observed", total},
            {"matched", matched},
            {"created", created},
            {"drifted", drifted},
            {"unmatched", unmatched},
            {"ambiguous", ambiguous},
            {"rejected", rejected},
            {"findings_opened", opened},
            {"findings_updated", updated},
            {"findings_resolved", resolved},
            {"findings_authorized", authorized},
            {"filled", filled}};
  }

  // Records the seconds since the previous phase ended under `name`.
  void Phase(const char* name) {
    const auto now = std::chrono::steady_clock::now();
    timings_[name] =
        std::round(std::chrono::duration<double>(now - phase_start_).count() * 1e4) / 1e4;
    phase_start_ = now;
  }

  soci::session& sql_;
  std::int64_t run_id_;
  const std::function<void(std::int64_t, std::int64_t)>& progress_;
  std::chrono::steady_clock::time_point phase_start_ = std::chrono::steady_clock::now();
  json::object timings_;
  Source source_;
  bool dry_run_ = false;
  std::int64_t observed_at_ = 0;
  std::vector<Decision> decisions_;
};

}  // namespace

bool ExecuteRun(soci::session& sql, std::int64_t run_id,
                const std::function<void(std::int64_t, std::int64_t)>& progress) {
  std::string error;
  try {
    RunExecution(sql, run_id, progress).Execute();
    return true;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;
    error = e.what();
    for (const auto& f : e.field_errors()) error += "; " + f.field + ": " + f.message;
  } catch (const std::exception& e) {
    error = e.what();
  }
  Query(sql,
        "UPDATE discovery_runs SET state = 'failed', error = $2, finished_at = clock_timestamp(), "
        "payload = NULL WHERE id = $1",
        {P(run_id), P(error.substr(0, 4000))});
  return false;
}

// --- worker ---

DiscoveryWorker::DiscoveryWorker(const std::string& dsn, const WorkerOptions& options)
    : worker_(
          dsn, {"discovery_runs", "cmdb_run_lock_key", "discovery"},
          {options.instance, options.poll},
          [graph_changed = options.graph_changed](soci::session& sql, soci::session& progress,
                                                  std::int64_t run_id) {
            auto report = [&](std::int64_t done, std::int64_t total) {
              Query(progress,
                    "UPDATE discovery_runs SET progress_done = $2, progress_total = $3 WHERE "
                    "id = $1",
                    {P(run_id), P(done), P(total)});
            };
            if (!ExecuteRun(sql, run_id, report) || !graph_changed) return;
            try {
              PgResult r = Query(sql,
                                 "SELECT coalesce((counts->>'created')::bigint, 0) FROM "
                                 "discovery_runs WHERE id = $1 AND NOT dry_run",
                                 {P(run_id)});
              if (r.rows() > 0 && r.Int(0, 0) > 0) graph_changed();
            } catch (const Error&) {
              graph_changed();  // best effort: when unsure, the graph is out of date
            }
          },
          options.schedule ? model::JobWorker::BeforeClaims(QueueScheduledRuns)
                           : model::JobWorker::BeforeClaims()) {}

}  // namespace cmdb::discovery
