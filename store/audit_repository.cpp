#include "store/audit_repository.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <unordered_map>

#include <boost/json.hpp>

#include "model/ci_type.hpp"
#include "model/json.hpp"
#include "store/ci_rows.hpp"
#include "store/graph_store.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"
#include "store/versioned_row.hpp"

namespace cmdb::store {

namespace json = boost::json;
using model::AuditFinding;
using model::AuditRule;
using model::AuditRuleSet;
using model::AuditRun;
using model::Error;
using model::ErrorCode;
using model::Timestamp;

namespace {

const char* const kRuleColumns =
    "key, title, description, kpi, severity, scope::text, \"check\"::text, message, version, "
    "cmdb_us(created_at), cmdb_us(updated_at), updated_by";

AuditRule RuleFromRow(const soci::row& r) {
  AuditRule rule;
  rule.key = sql::Text(r, 0);
  rule.title = sql::Text(r, 1);
  rule.description = sql::Text(r, 2);
  rule.kpi = model::ValueIn(model::kAuditKpiNames, sql::Text(r, 3))
                 .value_or(model::AuditKpi::kCompleteness);
  rule.severity = model::ValueIn(model::kAuditSeverityNames, sql::Text(r, 4))
                      .value_or(model::AuditSeverity::kMedium);
  json::value scope = model::ParseStoredJson(sql::Text(r, 5));
  if (scope.is_object()) rule.scope = std::move(scope.get_object());
  rule.check = model::ParseStoredJson(sql::Text(r, 6));
  rule.message = sql::Text(r, 7);
  rule.version = sql::Int(r, 8);
  rule.created_at = sql::Time(r, 9);
  rule.updated_at = sql::Time(r, 10);
  rule.updated_by = sql::Text(r, 11);
  return rule;
}

const char* const kSetColumns =
    "name, description, array_to_json(rules)::text, version, cmdb_us(updated_at), updated_by";

AuditRuleSet SetFromRow(const soci::row& r) {
  AuditRuleSet set;
  set.name = sql::Text(r, 0);
  set.description = sql::Text(r, 1);
  const json::value rules = model::ParseStoredJson(sql::Text(r, 2));
  if (rules.is_array()) {
    for (const json::value& k : rules.get_array()) set.rules.emplace_back(k.as_string());
  }
  set.version = sql::Int(r, 3);
  set.updated_at = sql::Time(r, 4);
  set.updated_by = sql::Text(r, 5);
  return set;
}

const char* const kRunColumns =
    "id, set_name, cmdb_us(as_of), cmdb_us(evaluated_at), trigger, state, submitted_by, "
    "CASE WHEN state = 'running' THEN p.phase END, CASE WHEN state = 'running' THEN "
    "coalesce(p.done, 0) ELSE progress_done END, coalesce(progress_total, p.total), "
    "counts::text, subjects, timings::text, error, cmdb_us(queued_at), cmdb_us(started_at), "
    "cmdb_us(finished_at)";
const char* const kRunFrom =
    " FROM audit_runs LEFT JOIN audit_run_progress p ON p.run_id = audit_runs.id";

model::AuditCounts CountsFromJson(const json::value& v) {
  model::AuditCounts c;
  if (const json::object* o = v.if_object()) {
    auto get = [&](const char* key) {
      const json::value* x = o->if_contains(key);
      return x != nullptr && x->is_int64() ? x->get_int64() : 0;
    };
    c.pass = get("pass");
    c.fail = get("fail");
    c.not_applicable = get("not_applicable");
    c.error = get("error");
  }
  return c;
}

AuditRun RunFromRow(const soci::row& r) {
  AuditRun run;
  run.id = sql::Int(r, 0);
  run.set = sql::Text(r, 1);
  run.as_of = sql::OptionalTime(r, 2);
  run.evaluated_at = sql::OptionalTime(r, 3);
  run.trigger = model::ValueIn(model::kAuditTriggerNames, sql::Text(r, 4))
                    .value_or(model::AuditTrigger::kApi);
  run.state = model::JobStateFromName(sql::Text(r, 5)).value_or(model::JobState::kQueued);
  run.submitted_by = sql::Text(r, 6);
  run.phase = sql::OptionalText(r, 7);
  run.progress_done = sql::Int(r, 8);
  run.progress_total = sql::OptionalInt(r, 9);
  if (auto counts = sql::OptionalText(r, 10)) {
    json::value v = model::ParseStoredJson(*counts);
    if (v.is_object()) {
      for (const auto& [key, value] : v.get_object()) {
        model::AuditCounts c = CountsFromJson(value);
        run.rules[std::string(key)] = c;
        run.total += c;
      }
    }
  }
  run.subjects = sql::Int(r, 11);
  if (auto timings = sql::OptionalText(r, 12)) {
    json::value v = model::ParseStoredJson(*timings);
    if (v.is_object()) run.timings = std::move(v.get_object());
  }
  run.error = sql::OptionalText(r, 13);
  run.queued_at = sql::Time(r, 14);
  run.started_at = sql::OptionalTime(r, 15);
  run.finished_at = sql::OptionalTime(r, 16);
  return run;
}

// A finding as read: a live one's last failing run is its rule's latest run, and a waiver
// past its end reads as open.
const char* const kFindingColumns =
    "f.id, f.rule_key, f.subject, f.subject_id, f.ci_type, f.owner, f.name, f.message, "
    "CASE WHEN f.state = 'waived' AND f.waived_until <= now() THEN 'open' ELSE f.state END, "
    "f.first_run_id, coalesce(f.last_run_id, rr.run_id, f.first_run_id), "
    "cmdb_us(f.first_failed_at), cmdb_us(coalesce(f.last_failed_at, rr.run_at, "
    "f.first_failed_at)), f.resolved_run_id, cmdb_us(f.resolved_at), f.waived_by, "
    "f.waiver_reason, cmdb_us(f.waived_until), cmdb_us(f.waived_at), f.version";
const char* const kFindingFrom =
    " FROM audit_findings f LEFT JOIN audit_rule_runs rr ON rr.rule_key = f.rule_key "
    "AND f.state <> 'resolved'";

AuditFinding FindingFromRow(const soci::row& r) {
  AuditFinding f;
  f.id = sql::Int(r, 0);
  f.rule = sql::Text(r, 1);
  f.subject =
      model::ValueIn(model::kAuditSubjectNames, sql::Text(r, 2)).value_or(model::AuditSubject::kCi);
  f.subject_id = sql::Int(r, 3);
  f.ci_type = sql::OptionalText(r, 4);
  f.owner = sql::OptionalText(r, 5);
  f.name = sql::Text(r, 6);
  f.message = sql::Text(r, 7);
  f.state = model::ValueIn(model::kAuditFindingStateNames, sql::Text(r, 8))
                .value_or(model::AuditFindingState::kOpen);
  f.first_run_id = sql::Int(r, 9);
  f.last_run_id = sql::Int(r, 10);
  f.first_failed_at = sql::Time(r, 11);
  f.last_failed_at = sql::Time(r, 12);
  f.resolved_run_id = sql::OptionalInt(r, 13);
  f.resolved_at = sql::OptionalTime(r, 14);
  f.waived_by = sql::OptionalText(r, 15);
  f.waiver_reason = sql::OptionalText(r, 16);
  f.waived_until = sql::OptionalTime(r, 17);
  f.waived_at = sql::OptionalTime(r, 18);
  f.version = sql::Int(r, 19);
  return f;
}

std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::int64_t ToInt(std::string_view text) {
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

// --- rules and sets ---

std::vector<AuditRule> AuditRepository::ListRules() {
  std::vector<AuditRule> out;
  sql::ForEachRow(db_, std::string("SELECT ") + kRuleColumns + " FROM audit_rules ORDER BY key",
                  [&](const soci::row& r) { out.push_back(RuleFromRow(r)); });
  return out;
}

std::optional<AuditRule> AuditRepository::FindRule(const std::string& key, bool lock) {
  std::optional<AuditRule> found;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kRuleColumns + " FROM audit_rules WHERE key = $1" +
          (lock ? " FOR UPDATE" : ""),
      [&](const soci::row& r) { found = RuleFromRow(r); }, soci::use(key));
  return found;
}

AuditRule AuditRepository::PutRule(const AuditRule& rule, std::optional<std::int64_t> if_match,
                                   const model::WriteContext& ctx, bool& created) {
  Transaction tr(db_);
  const std::optional<AuditRule> current = FindRule(rule.key, /*lock=*/true);
  if (current) CheckIfMatch(if_match, current->version, "audit rule " + rule.key);
  if (!current && if_match) {
    throw Error(ErrorCode::kNotFound, "audit rule " + rule.key + " does not exist");
  }
  created = !current;
  const std::string kpi(model::AuditKpiName(rule.kpi));
  const std::string severity(model::AuditSeverityName(rule.severity));
  const std::string scope = model::ToJsonText(rule.scope);
  const std::string check = model::ToJsonText(rule.check);
  std::optional<AuditRule> stored;
  auto keep = [&](const soci::row& r) { stored = RuleFromRow(r); };
  if (created) {
    sql::ForEachRow(db_,
                    std::string("INSERT INTO audit_rules (key, title, description, kpi, severity, "
                                "scope, \"check\", message, updated_by) VALUES ($1, $2, $3, $4, "
                                "$5, $6::jsonb, $7::jsonb, $8, $9) RETURNING ") +
                        kRuleColumns,
                    keep, soci::use(rule.key), soci::use(rule.title), soci::use(rule.description),
                    soci::use(kpi), soci::use(severity), soci::use(scope), soci::use(check),
                    soci::use(rule.message), soci::use(ctx.changed_by));
  } else {
    sql::ForEachRow(
        db_,
        std::string("UPDATE audit_rules SET title = $2, description = $3, kpi = $4, severity = "
                    "$5, scope = $6::jsonb, \"check\" = $7::jsonb, message = $8, updated_by = $9, "
                    "version = version + 1, updated_at = clock_timestamp() WHERE key = $1 "
                    "RETURNING ") +
            kRuleColumns,
        keep, soci::use(rule.key), soci::use(rule.title), soci::use(rule.description),
        soci::use(kpi), soci::use(severity), soci::use(scope), soci::use(check),
        soci::use(rule.message), soci::use(ctx.changed_by));
  }
  const std::string body = model::ToJsonText(model::AuditRuleBodyJson(*stored));
  const long long version = stored->version;
  sql::Execute(db_,
               "UPDATE audit_rule_versions SET valid_to = clock_timestamp() WHERE key = $1 AND "
               "valid_to IS NULL",
               soci::use(rule.key));
  sql::Execute(db_,
               "INSERT INTO audit_rule_versions (key, version, body, changed_by) VALUES ($1, $2, "
               "$3::jsonb, $4)",
               soci::use(rule.key), soci::use(version), soci::use(body), soci::use(ctx.changed_by));
  tr.Commit();
  return *stored;
}

void AuditRepository::DeleteRule(const std::string& key, std::optional<std::int64_t> if_match,
                                 const model::WriteContext& ctx) {
  Transaction tr(db_);
  const std::optional<AuditRule> current = FindRule(key, /*lock=*/true);
  if (!current) throw Error(ErrorCode::kNotFound, "audit rule " + key + " does not exist");
  CheckIfMatch(if_match, current->version, "audit rule " + key);
  std::vector<std::string> sets;
  sql::ForEachRow(
      db_, "SELECT name FROM audit_rule_sets WHERE $1 = ANY(rules) ORDER BY name",
      [&](const soci::row& r) { sets.push_back(sql::Text(r, 0)); }, soci::use(key));
  if (!sets.empty()) {
    std::string names;
    for (const auto& s : sets) names += (names.empty() ? "" : ", ") + s;
    throw Error(ErrorCode::kConflict, "audit rule " + key + " is in the rule set(s) " + names +
                                          "; take it out of them first");
  }
  const long long version = current->version + 1;
  const std::string body = model::ToJsonText(model::AuditRuleBodyJson(*current));
  sql::Execute(db_, "DELETE FROM audit_rules WHERE key = $1", soci::use(key));
  sql::Execute(db_,
               "UPDATE audit_rule_versions SET valid_to = clock_timestamp() WHERE key = $1 AND "
               "valid_to IS NULL",
               soci::use(key));
  sql::Execute(db_,
               "INSERT INTO audit_rule_versions (key, version, deleted, body, valid_to, "
               "changed_by) VALUES ($1, $2, true, $3::jsonb, clock_timestamp(), $4)",
               soci::use(key), soci::use(version), soci::use(body), soci::use(ctx.changed_by));
  // Its live findings are closed with it: nothing will evaluate them again.
  sql::Execute(db_,
               "UPDATE audit_findings SET state = 'resolved', resolved_at = clock_timestamp(), "
               "last_run_id = coalesce(last_run_id, (SELECT run_id FROM audit_rule_runs WHERE "
               "rule_key = $1), first_run_id), last_failed_at = coalesce(last_failed_at, "
               "first_failed_at), version = version + 1 WHERE rule_key = $1 AND state <> "
               "'resolved'",
               soci::use(key));
  sql::Execute(db_, "DELETE FROM audit_rule_runs WHERE rule_key = $1", soci::use(key));
  tr.Commit();
}

std::vector<AuditRuleVersion> AuditRepository::RuleHistory(const std::string& key) {
  std::vector<AuditRuleVersion> out;
  sql::ForEachRow(
      db_,
      "SELECT version, deleted, body::text, cmdb_us(valid_from), changed_by FROM "
      "audit_rule_versions WHERE key = $1 ORDER BY version DESC",
      [&](const soci::row& r) {
        AuditRuleVersion v;
        v.version = sql::Int(r, 0);
        v.deleted = sql::Bool(r, 1);
        json::value body = model::ParseStoredJson(sql::Text(r, 2));
        if (body.is_object()) v.body = std::move(body.get_object());
        v.valid_from = sql::Time(r, 3);
        v.changed_by = sql::Text(r, 4);
        out.push_back(std::move(v));
      },
      soci::use(key));
  return out;
}

std::vector<AuditRuleSet> AuditRepository::ListSets() {
  std::vector<AuditRuleSet> out;
  sql::ForEachRow(db_, std::string("SELECT ") + kSetColumns + " FROM audit_rule_sets ORDER BY name",
                  [&](const soci::row& r) { out.push_back(SetFromRow(r)); });
  return out;
}

std::optional<AuditRuleSet> AuditRepository::FindSet(const std::string& name) {
  std::optional<AuditRuleSet> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kSetColumns + " FROM audit_rule_sets WHERE name = $1",
      [&](const soci::row& r) { found = SetFromRow(r); }, soci::use(name));
  return found;
}

AuditRuleSet AuditRepository::PutSet(const AuditRuleSet& set, std::optional<std::int64_t> if_match,
                                     const model::WriteContext& ctx, bool& created) {
  Transaction tr(db_);
  std::set<std::string> known;
  sql::ForEachRow(
      db_, "SELECT key FROM audit_rules WHERE key = ANY($1::text[]) FOR KEY SHARE",
      [&](const soci::row& r) { known.insert(sql::Text(r, 0)); },
      soci::use(sql::TextArray(set.rules)));
  model::FieldErrors errors;
  for (std::size_t i = 0; i < set.rules.size(); ++i) {
    if (known.count(set.rules[i]) == 0) {
      errors.Add("rules[" + std::to_string(i) + "]",
                 "audit rule '" + set.rules[i] + "' does not exist");
    }
  }
  errors.ThrowIfAny("the rule set names rules that do not exist");
  std::optional<AuditRuleSet> current;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kSetColumns + " FROM audit_rule_sets WHERE name = $1 FOR UPDATE",
      [&](const soci::row& r) { current = SetFromRow(r); }, soci::use(set.name));
  if (current) CheckIfMatch(if_match, current->version, "rule set " + set.name);
  if (!current && if_match) {
    throw Error(ErrorCode::kNotFound, "rule set " + set.name + " does not exist");
  }
  created = !current;
  std::optional<AuditRuleSet> stored;
  sql::ForEachRow(
      db_,
      std::string("INSERT INTO audit_rule_sets (name, description, rules, updated_by) VALUES ($1, "
                  "$2, $3::text[], $4) ON CONFLICT (name) DO UPDATE SET description = "
                  "excluded.description, rules = excluded.rules, updated_by = excluded.updated_by, "
                  "version = audit_rule_sets.version + 1, updated_at = clock_timestamp() "
                  "RETURNING ") +
          kSetColumns,
      [&](const soci::row& r) { stored = SetFromRow(r); }, soci::use(set.name),
      soci::use(set.description), soci::use(sql::TextArray(set.rules)), soci::use(ctx.changed_by));
  tr.Commit();
  return *stored;
}

audit::Catalogue AuditRepository::LoadCatalogue() {
  audit::Catalogue c;
  sql::ForEachRow(db_, "SELECT name, attributes::text FROM ci_types", [&](const soci::row& r) {
    auto& attrs = c.ci_types[sql::Text(r, 0)];
    json::value v = model::ParseStoredJson(sql::Text(r, 1));
    if (v.is_object()) {
      for (const auto& [name, schema] : v.get_object()) {
        attrs.emplace(name);
        (void)schema;
      }
    }
  });
  sql::ForEachRow(db_, "SELECT name FROM relation_types",
                  [&](const soci::row& r) { c.relation_types.insert(sql::Text(r, 0)); });
  return c;
}

// --- runs ---

AuditRun AuditRepository::QueueRun(const std::string& set, std::optional<Timestamp> as_of,
                                   model::AuditTrigger trigger, const std::string& by) {
  if (!FindSet(set)) throw Error(ErrorCode::kNotFound, "rule set " + set + " does not exist");
  const std::optional<long long> at =
      as_of ? std::optional<long long>(as_of->micros) : std::nullopt;
  const std::string trigger_name(model::NameIn(model::kAuditTriggerNames, trigger));
  long long id = 0;
  sql::Run(db_,
           "INSERT INTO audit_runs (set_name, as_of, trigger, submitted_by) VALUES ($1, "
           "cmdb_ts($2), $3, $4) RETURNING id",
           soci::use(set), soci::use(at), soci::use(trigger_name), soci::use(by), soci::into(id));
  return *FindRun(id);
}

std::optional<AuditRun> AuditRepository::FindRun(std::int64_t id) {
  std::optional<AuditRun> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kRunColumns + kRunFrom + " WHERE id = $1",
      [&](const soci::row& r) { found = RunFromRow(r); }, soci::use(static_cast<long long>(id)));
  return found;
}

std::vector<AuditRun> AuditRepository::ListRuns(std::optional<model::JobState> state,
                                                std::int64_t after, int limit) {
  const std::optional<std::string> state_name =
      state ? std::optional(std::string(model::JobStateName(*state))) : std::nullopt;
  std::vector<AuditRun> out;
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kRunColumns + kRunFrom +
          " WHERE ($1 = 0 OR id < $1) AND ($2::text IS NULL OR state "
          "= $2) ORDER BY id DESC LIMIT $3",
      [&](const soci::row& r) { out.push_back(RunFromRow(r)); },
      soci::use(static_cast<long long>(after)), soci::use(state_name), soci::use(limit + 1));
  return out;
}

void AuditRepository::SetPhase(std::int64_t id, const std::string& phase, std::int64_t done,
                               std::int64_t total) {
  sql::Execute(db_,
               "INSERT INTO audit_run_progress (run_id, phase, done, total) VALUES ($1, $2, $3, "
               "$4) ON CONFLICT (run_id) DO UPDATE SET phase = excluded.phase, done = "
               "excluded.done, total = excluded.total",
               soci::use(static_cast<long long>(id)), soci::use(phase),
               soci::use(static_cast<long long>(done)), soci::use(static_cast<long long>(total)));
}

void AuditRepository::FinishRun(const FinishedRun& run) {
  json::object counts;
  for (const auto& [key, c] : run.rules) counts[key] = model::AuditCountsToJson(c);
  const long long id = run.id;
  const long long at = run.evaluated_at.micros;
  const long long subjects = run.subjects;
  sql::Execute(db_,
               "UPDATE audit_runs SET state = 'succeeded', phase = NULL, finished_at = "
               "clock_timestamp(), evaluated_at = cmdb_ts($2), counts = $3::jsonb, subjects = $4, "
               "timings = $5::jsonb, progress_done = 4, progress_total = 4 WHERE id = $1",
               soci::use(id), soci::use(at), soci::use(model::ToJsonText(counts)),
               soci::use(subjects), soci::use(model::ToJsonText(run.timings)));
  pg::CopyBuffer rows;
  for (const ScoreRow& s : run.scores) {
    rows.Int(run.id);
    rows.Field(run.set);
    rows.Int(run.evaluated_at.micros);
    rows.Field(s.kind);
    rows.Field(s.key);
    rows.Int(s.counts.pass);
    rows.Int(s.counts.fail);
    rows.Int(s.counts.not_applicable);
    rows.Int(s.counts.error);
    rows.EndRow();
  }
  sql::Execute(db_,
               "CREATE TEMP TABLE IF NOT EXISTS audit_scores_in (run_id bigint, set_name text, "
               "at_us bigint, group_kind text, group_key text, pass bigint, fail bigint, "
               "not_applicable bigint, error bigint) ON COMMIT DELETE ROWS");
  pg::CopyIn(db_,
             "COPY audit_scores_in (run_id, set_name, at_us, group_kind, group_key, pass, fail, "
             "not_applicable, error) FROM STDIN",
             rows);
  sql::Execute(db_,
               "INSERT INTO audit_scores (run_id, set_name, at, group_kind, group_key, pass, "
               "fail, not_applicable, error) SELECT run_id, set_name, cmdb_ts(at_us), "
               "group_kind, group_key, pass, fail, not_applicable, error FROM audit_scores_in");
  if (run.present) {
    const std::vector<std::string>& keys = run.evaluated;
    sql::Execute(db_,
                 "INSERT INTO audit_rule_runs (rule_key, run_id, run_at) SELECT k, $2, "
                 "cmdb_ts($3) FROM unnest($1::text[]) k ON CONFLICT (rule_key) DO UPDATE SET "
                 "run_id = excluded.run_id, run_at = excluded.run_at",
                 soci::use(sql::TextArray(keys)), soci::use(id), soci::use(at));
  }
}

void AuditRepository::FailRun(std::int64_t id, const std::string& error) {
  sql::Execute(db_,
               "UPDATE audit_runs SET state = 'failed', phase = NULL, error = $2, finished_at = "
               "clock_timestamp() WHERE id = $1",
               soci::use(static_cast<long long>(id)), soci::use(error));
}

// --- the estate ---

namespace {

// The CI columns of the estate: id, type, name, status, owner, tags (JSON), the attributes
// asked for (JSON), changed at (µs).
// The attributes of `wanted` a query may name (identifiers only: a message placeholder may
// say anything), in order: one column each.
std::vector<std::string> AttributeColumns(const std::set<std::string>& wanted) {
  std::vector<std::string> out;
  for (const std::string& a : wanted) {
    if (model::IsValidIdentifier(a)) out.push_back(a);
  }
  return out;
}

// The CI columns of the estate: id, type, name, status, owner, tags (JSON, NULL when none),
// changed at (µs), then each attribute asked for (JSON, NULL when absent). One column per
// attribute costs PostgreSQL a field read per row where an object built per row cost it a
// sort and a serialisation (measured: a third of the load of 1M CIs).
std::string EstateCiQuery(std::optional<Timestamp> as_of,
                          const std::vector<std::string>& attributes,
                          const std::string& extra_where, bool with_tags = true,
                          bool with_changed = true) {
  std::string attrs;
  for (const std::string& a : attributes) attrs += ", c.attributes -> " + Quoted(a);
  // Columns no rule reads are not computed (a million timestamps converted cost 0.1-0.2 s).
  const std::string tags =
      with_tags ? "CASE WHEN cardinality(c.tags) = 0 THEN NULL ELSE array_to_json(c.tags)::text END"
                : "NULL::text";
  if (as_of) {
    const std::string t = std::to_string(as_of->micros);
    return "SELECT c.ci_id, c.type, c.name, c.status, c.owner, " + tags + ", " +
           (with_changed ? "cmdb_us(c.valid_from)" : "0") + attrs +
           " FROM ci_history c WHERE NOT c.deleted AND c.valid_from <= cmdb_ts(" + t +
           ") AND (c.valid_to IS NULL OR c.valid_to > cmdb_ts(" + t + "))" + extra_where +
           " ORDER BY c.ci_id";
  }
  return "SELECT c.id, c.type, c.name, c.status, c.owner, " + tags + ", " +
         (with_changed ? "cmdb_us(c.updated_at)" : "0") + attrs +
         " FROM configuration_items c WHERE true" + extra_where;
}

audit::EstateCi EstateCiFromFields(const pg::Fields& f,
                                   const std::vector<std::string>& attributes) {
  audit::EstateCi ci;
  ci.id = ToInt(*f[0]);
  ci.type = std::string(*f[1]);
  ci.name = std::string(*f[2]);
  ci.status = std::string(*f[3]);
  if (f[4]) ci.owner = std::string(*f[4]);
  if (f[5]) {
    json::value tags = model::ParseStoredJson(*f[5]);
    if (tags.is_array()) {
      for (const auto& t : tags.get_array()) {
        if (t.is_string()) ci.tags.emplace_back(t.get_string());
      }
    }
  }
  ci.changed_at = Timestamp{ToInt(*f[6])};
  for (std::size_t a = 0; a < attributes.size(); ++a) {
    const std::optional<std::string_view>& v = f[7 + a];
    if (!v || *v == "null") continue;
    ci.attributes[attributes[a]] = model::ParseStoredJson(*v);
  }
  return ci;
}

}  // namespace

namespace {

// Latest sighting per CI: closed streaks (rows) and open ones (a bit per CI of a block, at the
// source's latest writing run).
std::unordered_map<model::CiId, std::int64_t> LatestSightings(DbSession& db, std::size_t size) {
  std::unordered_map<model::CiId, std::int64_t> latest;
  latest.reserve(size);
  pg::CopyOut(db,
              "SELECT ci_id, cmdb_us(max(last_seen_at)) FROM discovery_sightings GROUP BY ci_id",
              [&](const pg::Fields& f) { latest[ToInt(*f[0])] = ToInt(*f[1]); });
  pg::CopyOut(db,
              "SELECT b.block, b.bits::text, cmdb_us(d.sighted_at) FROM "
              "discovery_sighting_blocks b JOIN discovery_sources d ON d.id = b.source_id "
              "WHERE d.sighted_at IS NOT NULL",
              [&](const pg::Fields& f) {
                const std::int64_t block = ToInt(*f[0]);
                const std::string_view bits = *f[1];
                const std::int64_t when = ToInt(*f[2]);
                for (std::size_t k = 0; k < bits.size(); ++k) {
                  if (bits[k] != '1') continue;
                  std::int64_t& seen = latest[(block << 10) + static_cast<std::int64_t>(k)];
                  seen = std::max(seen, when);
                }
              });
  return latest;
}

// A CI's sighting as of `at`: a later one means unknown (sightings keep the latest only).
void SetSeen(const std::unordered_map<model::CiId, std::int64_t>& latest, Timestamp at,
             audit::EstateCi& ci) {
  ci.seen_at.reset();
  ci.seen_later = false;
  auto it = latest.find(ci.id);
  if (it == latest.end()) return;
  if (it->second <= at.micros) {
    ci.seen_at = Timestamp{it->second};
  } else {
    ci.seen_later = true;
  }
}

std::vector<audit::EstateDrift> ReadDrift(DbSession& db, std::optional<Timestamp> as_of) {
  std::vector<audit::EstateDrift> drift;
  const std::string t = as_of ? std::to_string(as_of->micros) : "";
  const std::string query =
      as_of ? "SELECT ci_id, attribute, authorized, cmdb_us(detected_at) FROM drift_findings "
              "WHERE detected_at <= cmdb_ts(" +
                  t + ") AND (closed_at IS NULL OR closed_at > cmdb_ts(" + t + "))"
            : std::string(
                  "SELECT ci_id, attribute, authorized, cmdb_us(detected_at) FROM "
                  "drift_findings WHERE state = 'open'");
  pg::CopyOut(db, query, [&](const pg::Fields& f) {
    drift.push_back({ToInt(*f[0]), std::string(*f[1]), *f[2] == "t", Timestamp{ToInt(*f[3])}});
  });
  return drift;
}

std::vector<audit::EstateSource> ReadSources(DbSession& db, Timestamp at) {
  const std::string t = std::to_string(at.micros);
  std::vector<audit::EstateSource> sources;
  pg::CopyOut(db,
              "SELECT s.id, s.name, r.id, coalesce((r.counts->>'matched')::bigint, 0) + "
              "coalesce((r.counts->>'created')::bigint, 0), coalesce((r.counts->>'unmatched')::"
              "bigint, 0) FROM discovery_sources s LEFT JOIN LATERAL (SELECT id, counts FROM "
              "discovery_runs x WHERE x.source_id = s.id AND x.state = 'succeeded' AND NOT "
              "x.dry_run AND x.finished_at <= cmdb_ts(" +
                  t +
                  ") ORDER BY x.id DESC LIMIT 1) r "
                  "ON true WHERE s.created_at <= cmdb_ts(" +
                  t + ") ORDER BY s.id",
              [&](const pg::Fields& f) {
                audit::EstateSource s;
                s.id = ToInt(*f[0]);
                s.name = std::string(*f[1]);
                if (f[2]) s.run_id = ToInt(*f[2]);
                s.registered = ToInt(f[3].value_or("0"));
                s.unmatched = ToInt(f[4].value_or("0"));
                sources.push_back(std::move(s));
              });
  return sources;
}

// `wanted` asks for no more than `held` reads.
bool Covers(const AuditRepository::EstateNeeds& held, const AuditRepository::EstateNeeds& wanted) {
  return (held.sightings || !wanted.sightings) && (held.changed || !wanted.changed) &&
         (held.tags || !wanted.tags) &&
         std::includes(held.attributes.begin(), held.attributes.end(), wanted.attributes.begin(),
                       wanted.attributes.end());
}

}  // namespace

audit::Estate AuditRepository::LoadEstate(std::optional<Timestamp> as_of, const EstateNeeds& needs,
                                          json::object* timings, DbSession* helper) {
  Parts parts = LoadParts(as_of, needs, timings, helper, /*relation_ids=*/false);
  const auto start = std::chrono::steady_clock::now();
  audit::Estate estate(parts.at, std::move(parts.cis), parts.relations, std::move(parts.drift),
                       std::move(parts.sources));
  if (timings != nullptr) {
    (*timings)["estate_build"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return estate;
}

AuditRepository::Parts AuditRepository::LoadParts(std::optional<Timestamp> as_of,
                                                  const EstateNeeds& needs, json::object* timings,
                                                  DbSession* helper, bool relation_ids) {
  const std::set<std::string>& attributes = needs.attributes;
  auto lap = [timings, start = std::chrono::steady_clock::now()](const char* part) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (timings != nullptr) (*timings)[part] = std::chrono::duration<double>(now - start).count();
    start = now;
  };
  Parts parts;
  parts.at = as_of.value_or(Timestamp::Now());
  const std::string t = std::to_string(parts.at.micros);
  audit::EstateRelations& relations = parts.relations;
  // The relation's id is `relation_id` in its history, `id` in relations.
  const std::string columns_read = std::string("from_ci, to_ci, type") +
                                   (relation_ids ? (as_of ? ", relation_id" : ", id") : "");
  const std::string relation_query =
      as_of ? "SELECT " + columns_read +
                  " FROM relation_history WHERE NOT deleted AND "
                  "valid_from <= cmdb_ts(" +
                  t + ") AND (valid_to IS NULL OR valid_to > cmdb_ts(" + t + "))"
            : "SELECT " + columns_read + " FROM relations";
  auto read_relations = [&relation_query, &relations, relation_ids](DbSession& session) {
    pg::CopyOut(session, relation_query, [&](const pg::Fields& f) {
      relations.Add(ToInt(*f[0]), ToInt(*f[1]), *f[2]);
      if (relation_ids) relations.ids.push_back(ToInt(*f[3]));
    });
  };
  // The relations on the helper, in this snapshot, while this session reads the CIs: the two
  // reads keep both cores busy (PostgreSQL writing one, this process parsing the other).
  std::future<void> relations_read;
  if (helper != nullptr) {
    std::string snapshot;
    sql::Run(db_, "SELECT pg_export_snapshot()", soci::into(snapshot));
    relations_read = std::async(std::launch::async, [helper, snapshot, &read_relations] {
      sql::Execute(*helper, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        sql::Execute(*helper, "SET TRANSACTION SNAPSHOT " + Quoted(snapshot));
        read_relations(*helper);
        sql::Execute(*helper, "COMMIT");
      } catch (...) {
        try {
          sql::Execute(*helper, "ROLLBACK");
        } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
        }
        throw;
      }
    });
  }
  std::vector<audit::EstateCi>& cis = parts.cis;
  const std::vector<std::string> columns = AttributeColumns(attributes);
  try {
    pg::CopyOut(db_, EstateCiQuery(as_of, columns, "", needs.tags, needs.changed),
                [&](const pg::Fields& f) { cis.push_back(EstateCiFromFields(f, columns)); });
  } catch (...) {
    if (relations_read.valid()) relations_read.wait();
    throw;
  }
  lap("estate_cis");
  if (relations_read.valid()) {
    relations_read.get();
  } else {
    read_relations(db_);
  }
  lap("estate_relations");
  if (needs.sightings && !cis.empty()) {
    const auto latest = LatestSightings(db_, cis.size());
    for (audit::EstateCi& ci : cis) SetSeen(latest, parts.at, ci);
  }
  lap("estate_sightings");
  parts.drift = ReadDrift(db_, as_of);
  parts.sources = ReadSources(db_, parts.at);
  lap("estate_drift_sources");
  return parts;
}

void AuditRepository::EstateCache::Clear() {
  estate.reset();
  relations = {};
  snapshot.clear();
  needs = {};
}

const audit::Estate& AuditRepository::LoadPresentEstate(EstateCache& cache,
                                                        const EstateNeeds& needs,
                                                        json::object* timings, DbSession* helper,
                                                        std::size_t max_changes) {
  std::string snapshot;
  sql::Run(db_, "SELECT pg_current_snapshot()::text", soci::into(snapshot));
  auto full = [&]() -> const audit::Estate& {
    cache.Clear();
    Parts parts = LoadParts(std::nullopt, needs, timings, helper, /*relation_ids=*/true);
    const auto start = std::chrono::steady_clock::now();
    cache.relations = std::move(parts.relations);
    cache.estate.emplace(parts.at, std::move(parts.cis), cache.relations, std::move(parts.drift),
                         std::move(parts.sources));
    cache.needs = needs;
    cache.snapshot = snapshot;
    if (timings != nullptr) {
      (*timings)["estate_build"] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      (*timings)["estate_refreshed"] = false;
    }
    return *cache.estate;
  };
  if (!cache.estate || cache.snapshot.empty() || !Covers(cache.needs, needs)) return full();
  const auto started = std::chrono::steady_clock::now();
  // What the cache's snapshot could not see and this one can.
  std::optional<LoggedChanges> logged =
      ReadChangeLog(db_, cache.snapshot, /*audit_kinds=*/true, max_changes);
  if (!logged) return full();
  const std::vector<std::int64_t>& ci_ids = logged->ci_ids;
  const std::vector<std::int64_t>& relation_ids = logged->relation_ids;
  const bool sightings = logged->sightings;
  const Timestamp at = Timestamp::Now();
  audit::Estate& estate = *cache.estate;
  // The CIs that changed, as they are now; those not found were deleted.
  std::vector<audit::EstateCi> changed;
  std::vector<model::CiId> removed;
  if (!ci_ids.empty()) {
    const std::vector<std::string> columns = AttributeColumns(cache.needs.attributes);
    pg::CopyOut(db_,
                EstateCiQuery(std::nullopt, columns,
                              " AND c.id = ANY('" + sql::IdArray(ci_ids) + "'::bigint[])",
                              cache.needs.tags, cache.needs.changed),
                [&](const pg::Fields& f) { changed.push_back(EstateCiFromFields(f, columns)); });
    std::vector<model::CiId> found;
    found.reserve(changed.size());
    for (audit::EstateCi& ci : changed) {
      found.push_back(ci.id);
      // Sightings did not change: a CI keeps the one it had.
      if (std::optional<std::uint32_t> i = estate.IndexOf(ci.id)) {
        ci.seen_at = estate.ci(*i).seen_at;
        ci.seen_later = estate.ci(*i).seen_later;
      }
    }
    std::sort(found.begin(), found.end());
    std::set_difference(ci_ids.begin(), ci_ids.end(), found.begin(), found.end(),
                        std::back_inserter(removed));
  }
  // The relations that changed: dropped, then those that still exist read again.
  if (!relation_ids.empty()) {
    cache.relations.Remove(relation_ids);
    pg::CopyOut(db_,
                "SELECT from_ci, to_ci, type, id FROM relations WHERE id = ANY('" +
                    sql::IdArray(relation_ids) + "'::bigint[])",
                [&](const pg::Fields& f) {
                  cache.relations.Add(ToInt(*f[0]), ToInt(*f[1]), *f[2]);
                  cache.relations.ids.push_back(ToInt(*f[3]));
                });
  }
  const bool relations_changed = !relation_ids.empty() || !removed.empty();
  if (timings != nullptr) {
    (*timings)["estate_changes"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    (*timings)["estate_changed_cis"] = static_cast<std::int64_t>(ci_ids.size());
    (*timings)["estate_changed_relations"] = static_cast<std::int64_t>(relation_ids.size());
  }
  const auto build = std::chrono::steady_clock::now();
  // The cache is mid-update from here: an exception leaves it to be loaded in full.
  cache.snapshot.clear();
  estate.Update(at, std::move(changed), removed, relations_changed ? &cache.relations : nullptr,
                ReadDrift(db_, std::nullopt), ReadSources(db_, at));
  if (sightings && cache.needs.sightings) {
    const auto latest = LatestSightings(db_, estate.size());
    for (std::uint32_t i = 0; i < estate.size(); ++i) {
      audit::EstateCi ci;  // only the id and the sighting matter to SetSeen
      ci.id = estate.ci(i).id;
      SetSeen(latest, at, ci);
      estate.SetSeen(i, ci.seen_at, ci.seen_later);
    }
  }
  cache.snapshot = snapshot;
  if (timings != nullptr) {
    (*timings)["estate_build"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - build).count();
    (*timings)["estate_refreshed"] = true;
    (*timings)["estate_sightings_read"] = sightings;
  }
  return estate;
}

std::optional<audit::EstateCi> AuditRepository::LoadCi(model::CiId id,
                                                       const std::set<std::string>& attributes) {
  std::optional<audit::EstateCi> found;
  const std::vector<std::string> columns = AttributeColumns(attributes);
  pg::CopyOut(db_, EstateCiQuery(std::nullopt, columns, " AND c.id = " + std::to_string(id)),
              [&](const pg::Fields& f) { found = EstateCiFromFields(f, columns); });
  return found;
}

std::optional<AuditRepository::Neighbourhood> AuditRepository::LoadNeighbourhood(
    model::CiId id, const std::set<std::string>& attributes, int radius_out, int radius_in,
    const std::map<std::string, std::vector<std::string>>& unique_attributes, std::size_t max_cis) {
  std::set<model::CiId> ids{id};
  std::vector<audit::EstateRelation> relations;
  std::set<std::tuple<model::CiId, model::CiId, std::string>> seen_relations;
  bool truncated = false;
  // Breadth first in one direction: out follows from_ci -> to_ci, in to_ci -> from_ci. The
  // CI's own neighbours are always read (its relation counts must be exact).
  auto walk = [&](bool out, int radius) {
    std::vector<model::CiId> frontier{id};
    for (int depth = 0; depth < radius && !frontier.empty(); ++depth) {
      std::vector<std::int64_t> next;
      sql::ForEachRow(
          db_,
          std::string("SELECT from_ci, to_ci, type FROM relations WHERE ") +
              (out ? "from_ci" : "to_ci") + " = ANY($1::bigint[])",
          [&](const soci::row& r) {
            audit::EstateRelation rel{sql::Int(r, 0), sql::Int(r, 1), sql::Text(r, 2)};
            const model::CiId far = out ? rel.to : rel.from;
            if (ids.count(far) == 0) {
              if (depth > 0 && ids.size() >= max_cis) {
                truncated = true;
                return;
              }
              ids.insert(far);
              next.push_back(far);
            }
            if (seen_relations.insert({rel.from, rel.to, rel.type}).second) {
              relations.push_back(std::move(rel));
            }
          },
          soci::use(sql::IdArray(frontier)));
      frontier = std::move(next);
    }
  };
  walk(true, radius_out);
  walk(false, radius_in);
  // The CIs sharing a value of a `unique` attribute with it, compared as letters and digits
  // in lower case: a superset of every normalisation `unique` offers. Only when the CI has a
  // value, among the CI types the rules keying on it look at.
  for (const auto& [a, types] : unique_attributes) {
    if (!model::IsValidIdentifier(a)) continue;
    std::vector<std::string> mine;
    sql::ForEachRow(
        db_,
        "SELECT k FROM configuration_items me, unnest(cmdb_alnum_keys(me.attributes -> " +
            Quoted(a) + ")) k WHERE me.id = $1",
        [&](const soci::row& r) {
          std::string v = sql::Text(r, 0);
          if (!v.empty()) mine.push_back(std::move(v));
        },
        soci::use(static_cast<long long>(id)));
    if (mine.empty()) continue;
    // cmdb_alnum_keys(attributes -> a) is what the expression indexes of 0019 hold (serial,
    // mac_addresses): an index look-up there, a scan of the scoped types for other attributes.
    sql::ForEachRow(
        db_,
        "SELECT c.id FROM configuration_items c WHERE c.id <> $1 AND ($3::text[] = '{}' OR "
        "c.type = ANY($3::text[])) AND c.attributes ? " +
            Quoted(a) + " AND cmdb_alnum_keys(c.attributes -> " + Quoted(a) +
            ") && $2::text[] LIMIT 1000",
        [&](const soci::row& r) { ids.insert(sql::Int(r, 0)); },
        soci::use(static_cast<long long>(id)), soci::use(sql::TextArray(mine)),
        soci::use(sql::TextArray(types)));
  }
  std::vector<audit::EstateCi> cis;
  const std::vector<std::int64_t> id_list(ids.begin(), ids.end());
  const std::vector<std::string> columns = AttributeColumns(attributes);
  pg::CopyOut(db_,
              EstateCiQuery(std::nullopt, columns,
                            " AND c.id = ANY('" + sql::IdArray(id_list) + "'::bigint[])"),
              [&](const pg::Fields& f) { cis.push_back(EstateCiFromFields(f, columns)); });
  if (std::none_of(cis.begin(), cis.end(), [&](const auto& c) { return c.id == id; })) {
    return std::nullopt;
  }
  // Sightings and drift of these CIs only.
  std::unordered_map<model::CiId, std::int64_t> latest;
  sql::ForEachRow(
      db_,
      std::string("SELECT c.id, ") + kCiLastSeen +
          " FROM configuration_items c WHERE c.id = ANY($1::bigint[])",
      [&](const soci::row& r) {
        if (!sql::IsNull(r, 1)) latest[sql::Int(r, 0)] = sql::Int(r, 1);
      },
      soci::use(sql::IdArray(id_list)));
  for (audit::EstateCi& ci : cis) {
    auto it = latest.find(ci.id);
    if (it != latest.end()) ci.seen_at = Timestamp{it->second};
  }
  std::vector<audit::EstateDrift> drift;
  sql::ForEachRow(
      db_,
      "SELECT ci_id, attribute, authorized, cmdb_us(detected_at) FROM drift_findings WHERE state "
      "= 'open' AND ci_id = ANY($1::bigint[])",
      [&](const soci::row& r) {
        drift.push_back({sql::Int(r, 0), sql::Text(r, 1), sql::Bool(r, 2), sql::Time(r, 3)});
      },
      soci::use(sql::IdArray(id_list)));
  return Neighbourhood{
      audit::Estate(Timestamp::Now(), std::move(cis), relations, std::move(drift), {}), truncated};
}

// --- findings ---

std::int64_t AuditRepository::ExpireWaivers() {
  return sql::Execute(db_,
                      "UPDATE audit_findings SET state = 'open', version = version + 1 WHERE "
                      "state = 'waived' AND waived_until <= now()");
}

std::vector<LiveFinding> AuditRepository::LiveFindings(const std::vector<std::string>& rules) {
  std::vector<LiveFinding> out;
  pg::CopyOut(db_,
              "SELECT id, rule_key, subject, subject_id, ci_type, owner, name, message FROM "
              "audit_findings WHERE state <> 'resolved' AND rule_key = ANY('" +
                  sql::TextArray(rules) + "'::text[])",
              [&](const pg::Fields& f) {
                LiveFinding l;
                l.id = ToInt(*f[0]);
                l.rule = std::string(*f[1]);
                l.subject = *f[2] == "ci" ? model::AuditSubject::kCi
                                          : model::AuditSubject::kDiscoverySource;
                l.subject_id = ToInt(*f[3]);
                if (f[4]) l.ci_type = std::string(*f[4]);
                if (f[5]) l.owner = std::string(*f[5]);
                l.name = std::string(*f[6]);
                l.message = std::string(*f[7]);
                out.push_back(std::move(l));
              });
  return out;
}

void AuditRepository::ApplyFindings(std::int64_t run_id, Timestamp at,
                                    const FindingChanges& changes) {
  const long long run = run_id;
  const long long at_us = at.micros;
  if (!changes.resolved.empty()) {
    // The last failing run of a resolved finding is its rule's latest run before this one
    // (audit_rule_runs moves to this run when it finishes, after this).
    sql::Execute(db_,
                 "UPDATE audit_findings f SET state = 'resolved', resolved_run_id = $2, "
                 "resolved_at = cmdb_ts($3), last_run_id = coalesce((SELECT rr.run_id FROM "
                 "audit_rule_runs rr WHERE rr.rule_key = f.rule_key), f.first_run_id), "
                 "last_failed_at = coalesce((SELECT rr.run_at FROM audit_rule_runs rr WHERE "
                 "rr.rule_key = f.rule_key), f.first_failed_at), version = f.version + 1 WHERE "
                 "f.id = ANY($1::bigint[])",
                 soci::use(sql::IdArray(changes.resolved)), soci::use(run), soci::use(at_us));
  }
  auto copy_rows = [&](const std::vector<LiveFinding>& rows) {
    pg::CopyBuffer buffer;
    for (const LiveFinding& l : rows) {
      buffer.Int(l.id);
      buffer.Field(l.rule);
      buffer.Field(model::NameIn(model::kAuditSubjectNames, l.subject));
      buffer.Int(l.subject_id);
      if (l.ci_type) {
        buffer.Field(*l.ci_type);
      } else {
        buffer.Null();
      }
      if (l.owner) {
        buffer.Field(*l.owner);
      } else {
        buffer.Null();
      }
      buffer.Field(l.name);
      buffer.Field(l.message);
      buffer.EndRow();
    }
    return buffer;
  };
  if (changes.opened.empty() && changes.updated.empty()) return;
  sql::Execute(db_,
               "CREATE TEMP TABLE IF NOT EXISTS audit_findings_in (id bigint, rule_key text, "
               "subject text, subject_id bigint, ci_type text, owner text, name text, message "
               "text) ON COMMIT DELETE ROWS");
  if (!changes.opened.empty()) {
    pg::CopyIn(db_,
               "COPY audit_findings_in (id, rule_key, subject, subject_id, ci_type, owner, name, "
               "message) FROM STDIN",
               copy_rows(changes.opened));
    sql::Execute(db_,
                 "INSERT INTO audit_findings (rule_key, subject, subject_id, ci_type, owner, "
                 "name, message, first_run_id, first_failed_at) SELECT rule_key, subject, "
                 "subject_id, ci_type, owner, name, message, $1, cmdb_ts($2) FROM "
                 "audit_findings_in",
                 soci::use(run), soci::use(at_us));
    sql::Execute(db_, "TRUNCATE audit_findings_in");
  }
  if (!changes.updated.empty()) {
    pg::CopyIn(db_,
               "COPY audit_findings_in (id, rule_key, subject, subject_id, ci_type, owner, name, "
               "message) FROM STDIN",
               copy_rows(changes.updated));
    sql::Execute(db_,
                 "UPDATE audit_findings f SET ci_type = i.ci_type, owner = i.owner, name = "
                 "i.name, message = i.message FROM audit_findings_in i WHERE f.id = i.id");
  }
}

std::vector<AuditFinding> AuditRepository::ListFindings(const AuditFindingFilter& filter) {
  sql::Params params;
  std::string where = "f.id > " + params.Add(filter.after);
  if (filter.state) {
    switch (*filter.state) {
      case model::AuditFindingState::kOpen:
        where += " AND (f.state = 'open' OR (f.state = 'waived' AND f.waived_until <= now()))";
        break;
      case model::AuditFindingState::kWaived:
        where += " AND f.state = 'waived' AND f.waived_until > now()";
        break;
      case model::AuditFindingState::kResolved:
        where += " AND f.state = 'resolved'";
        break;
    }
  }
  if (filter.rule) where += " AND f.rule_key = " + params.Add(*filter.rule);
  if (filter.owner) where += " AND f.owner = " + params.Add(*filter.owner);
  if (filter.type) where += " AND f.ci_type = " + params.Add(*filter.type);
  if (filter.ci) {
    where += " AND f.subject = 'ci' AND f.subject_id = " + params.Add(*filter.ci);
  }
  std::vector<AuditFinding> out;
  sql::ForEachRow(db_,
                  std::string("SELECT ") + kFindingColumns + kFindingFrom + " WHERE " + where +
                      " ORDER BY f.id LIMIT " + std::to_string(filter.limit + 1),
                  params, [&](const soci::row& r) { out.push_back(FindingFromRow(r)); });
  return out;
}

std::optional<AuditFinding> AuditRepository::FindFinding(std::int64_t id) {
  std::optional<AuditFinding> found;
  sql::ForEachRow(
      db_, std::string("SELECT ") + kFindingColumns + kFindingFrom + " WHERE f.id = $1",
      [&](const soci::row& r) { found = FindingFromRow(r); },
      soci::use(static_cast<long long>(id)));
  return found;
}

AuditFinding AuditRepository::Waive(std::int64_t id, const model::Waiver& waiver,
                                    std::optional<std::int64_t> if_match,
                                    const model::WriteContext& ctx) {
  Transaction tr(db_);
  const AuditFinding f = LockVersioned(
      db_,
      std::string("SELECT ") + kFindingColumns + kFindingFrom + " WHERE f.id = $1 FOR UPDATE OF f",
      std::to_string(id), if_match, "audit finding " + std::to_string(id), FindingFromRow);
  if (f.state == model::AuditFindingState::kResolved) {
    throw Error(ErrorCode::kConflict,
                "audit finding " + std::to_string(id) + " is resolved: there is nothing to waive");
  }
  const long long until = waiver.until.micros;
  sql::Execute(db_,
               "UPDATE audit_findings SET state = 'waived', waived_by = $2, waiver_reason = $3, "
               "waived_until = cmdb_ts($4), waived_at = clock_timestamp(), version = version + 1 "
               "WHERE id = $1",
               soci::use(static_cast<long long>(id)), soci::use(ctx.changed_by),
               soci::use(waiver.reason), soci::use(until));
  tr.Commit();
  return *FindFinding(id);
}

// --- scores ---

std::vector<model::AuditScorePoint> AuditRepository::Scores(const std::string& set,
                                                            const std::string& kind,
                                                            std::optional<Timestamp> from,
                                                            std::optional<Timestamp> to) {
  const std::optional<long long> from_us =
      from ? std::optional<long long>(from->micros) : std::nullopt;
  const std::optional<long long> to_us = to ? std::optional<long long>(to->micros) : std::nullopt;
  std::vector<model::AuditScorePoint> out;
  sql::ForEachRow(
      db_,
      "SELECT run_id, cmdb_us(at), group_key, pass, fail, not_applicable, error FROM "
      "audit_scores WHERE set_name = $1 AND group_kind = $2 AND ($3::bigint IS NULL OR at >= "
      "cmdb_ts($3)) AND ($4::bigint IS NULL OR at <= cmdb_ts($4)) ORDER BY at, run_id, group_key",
      [&](const soci::row& r) {
        model::AuditScorePoint p;
        p.run_id = sql::Int(r, 0);
        p.at = sql::Time(r, 1);
        p.group = sql::Text(r, 2);
        p.counts.pass = sql::Int(r, 3);
        p.counts.fail = sql::Int(r, 4);
        p.counts.not_applicable = sql::Int(r, 5);
        p.counts.error = sql::Int(r, 6);
        out.push_back(std::move(p));
      },
      soci::use(set), soci::use(kind), soci::use(from_us), soci::use(to_us));
  return out;
}

// --- schedule ---

void AuditRepository::RequestRun(model::AuditTrigger trigger) {
  const std::string name(model::NameIn(model::kAuditTriggerNames, trigger));
  sql::Execute(db_,
               "UPDATE audit_schedule SET requested_at = clock_timestamp(), requested_by = $1 "
               "WHERE id = 1",
               soci::use(name));
}

int AuditRepository::QueueDueRuns(Timestamp now, std::chrono::seconds debounce) {
  Transaction tr(db_);
  int queued = 0;
  soci::row row;
  sql::Params params;
  const std::string t = params.Add(now.micros);
  const std::string d = params.Add(static_cast<std::int64_t>(debounce.count()));
  if (!sql::OneRow(db_,
                   "SELECT (last_nightly IS DISTINCT FROM (cmdb_ts(" + t +
                       ") AT TIME ZONE 'UTC')::date AND (cmdb_ts(" + t +
                       ") AT TIME ZONE 'UTC')::time >= nightly_at)::int, (requested_at IS NOT "
                       "NULL AND requested_at <= cmdb_ts(" +
                       t + ") - " + d +
                       " * interval '1 second')::int, coalesce(requested_by, 'import') FROM "
                       "audit_schedule WHERE id = 1 FOR UPDATE",
                   params, row)) {
    return 0;
  }
  const bool nightly = sql::Int(row, 0) != 0;
  const bool requested = sql::Int(row, 1) != 0;
  const std::string requested_by = sql::Text(row, 2);
  if (!nightly && !requested) return 0;  // the usual poll: nothing is due
  const bool has_baseline = FindSet("baseline").has_value();
  if (nightly) {
    const long long at = now.micros;
    sql::Execute(db_,
                 "UPDATE audit_schedule SET last_nightly = (cmdb_ts($1) AT TIME ZONE "
                 "'UTC')::date WHERE id = 1",
                 soci::use(at));
    if (has_baseline) {
      QueueRun("baseline", std::nullopt, model::AuditTrigger::kSchedule, "cmdb");
      ++queued;
    }
  }
  if (requested) {
    sql::Execute(db_,
                 "UPDATE audit_schedule SET requested_at = NULL, requested_by = NULL WHERE id = 1");
    // One run for any burst; none when a run of the present is waiting already.
    long long waiting = 0;
    sql::Run(db_,
             "SELECT count(*) FROM audit_runs WHERE state = 'queued' AND as_of IS NULL AND "
             "set_name = 'baseline'",
             soci::into(waiting));
    if (has_baseline && waiting == 0) {
      QueueRun("baseline", std::nullopt,
               model::ValueIn(model::kAuditTriggerNames, requested_by)
                   .value_or(model::AuditTrigger::kImport),
               "cmdb");
      ++queued;
    }
  }
  tr.Commit();
  return queued;
}

}  // namespace cmdb::store
