#pragma once
// Configuration audit in PostgreSQL (0019_configuration_audit.sql): rules with their history,
// rule sets, runs (queued like discovery runs; executed by jobs/audit_executor), the estate a
// run evaluates (now, or as of an instant from history), the per-run score table, findings
// with waivers and the schedule. Borrows one session; not thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "audit/estate.hpp"
#include "audit/rule_engine.hpp"
#include "model/audit.hpp"
#include "model/history.hpp"
#include "model/paging.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct AuditRuleVersion {
  std::int64_t version = 0;
  bool deleted = false;
  boost::json::object body;
  model::Timestamp valid_from;
  std::string changed_by;
};

struct AuditFindingFilter {
  std::optional<model::AuditFindingState> state;
  std::optional<std::string> rule;
  std::optional<std::string> owner;
  std::optional<std::string> type;
  std::optional<model::CiId> ci;
  std::int64_t after = 0;
  int limit = model::kDefaultPageSize;
};

// A live (open or waived) finding as a run compares it with its failures.
struct LiveFinding {
  std::int64_t id = 0;
  std::string rule;
  model::AuditSubject subject = model::AuditSubject::kCi;
  std::int64_t subject_id = 0;
  std::optional<std::string> ci_type;
  std::optional<std::string> owner;
  std::string name;
  std::string message;
};

// What a run of the present changes in the findings.
struct FindingChanges {
  std::vector<LiveFinding> opened;   // id unused
  std::vector<LiveFinding> updated;  // still failing, with a new owner, type, name or message
  std::vector<std::int64_t> resolved;
};

// One group's counts of a run.
struct ScoreRow {
  std::string kind;  // overall, rule, kpi, type, owner
  std::string key;
  model::AuditCounts counts;
};

struct FinishedRun {
  std::int64_t id = 0;
  std::string set;
  model::Timestamp evaluated_at;
  bool present = true;  // not as_of: the findings and the rules' latest runs move
  std::map<std::string, model::AuditCounts> rules;
  std::vector<std::string> evaluated;  // the rules it evaluated (not those that failed to compile)
  std::int64_t subjects = 0;
  std::vector<ScoreRow> scores;
  boost::json::object timings;
};

class AuditRepository {
 public:
  explicit AuditRepository(DbSession& db) : db_(db) {}

  // --- rules and sets ---
  std::vector<model::AuditRule> ListRules();
  // With `lock`, the row stays locked until the caller's transaction ends.
  std::optional<model::AuditRule> FindRule(const std::string& key, bool lock = false);
  // Creates or replaces the rule (a new version each time); `created` tells which.
  model::AuditRule PutRule(const model::AuditRule& rule, std::optional<std::int64_t> if_match,
                           const model::WriteContext& ctx, bool& created);
  // 409 while a rule set names it.
  void DeleteRule(const std::string& key, std::optional<std::int64_t> if_match,
                  const model::WriteContext& ctx);
  // Newest first; empty when the rule never existed.
  std::vector<AuditRuleVersion> RuleHistory(const std::string& key);
  std::vector<model::AuditRuleSet> ListSets();
  std::optional<model::AuditRuleSet> FindSet(const std::string& name);
  // 422 naming rules[i] for a key that is not a rule.
  model::AuditRuleSet PutSet(const model::AuditRuleSet& set, std::optional<std::int64_t> if_match,
                             const model::WriteContext& ctx, bool& created);
  // What rules may name: CI types with their attributes, relation types.
  audit::Catalogue LoadCatalogue();

  // --- runs ---
  // 404 for an unknown set.
  model::AuditRun QueueRun(const std::string& set, std::optional<model::Timestamp> as_of,
                           model::AuditTrigger trigger, const std::string& by);
  std::optional<model::AuditRun> FindRun(std::int64_t id);
  std::vector<model::AuditRun> ListRuns(std::optional<model::JobState> state, std::int64_t after,
                                        int limit);
  void SetPhase(std::int64_t id, const std::string& phase, std::int64_t done, std::int64_t total);
  // Counts, scores, the rules' latest runs (a present run) and state succeeded.
  void FinishRun(const FinishedRun& run);
  void FailRun(std::int64_t id, const std::string& error);

  // The estate now (in the caller's snapshot) or as of `as_of`, from history: CIs with the
  // `attributes` named (and their sightings when `sightings`), relations, open drift, and the
  // latest run of each discovery source.
  // With `timings`, adds the seconds of each part (cis, relations, sightings, drift, sources,
  // build). With a `helper` session (idle, outside any transaction) and the caller's session
  // in a REPEATABLE READ transaction, the relations are read on the helper at the same time,
  // under the caller's snapshot (pg_export_snapshot), while this session reads the CIs.
  // What the rules read of each CI beyond its id, type, name, status and owner.
  struct EstateNeeds {
    std::set<std::string> attributes;
    bool sightings = true;
    bool changed = true;  // when its version was written (changed_within)
    bool tags = true;
  };
  audit::Estate LoadEstate(std::optional<model::Timestamp> as_of, const EstateNeeds& needs,
                           boost::json::object* timings = nullptr, DbSession* helper = nullptr);
  // What an audit worker keeps between runs of the present: the estate it evaluated, the
  // relations with their ids, what it read and the PostgreSQL snapshot it was read under.
  struct EstateCache {
    std::optional<audit::Estate> estate;
    audit::EstateRelations relations;  // with ids
    std::string snapshot;              // pg_snapshot text; empty: load in full
    EstateNeeds needs;
    void Clear();
  };
  // The estate now, in the caller's REPEATABLE READ snapshot, kept in `cache`: the cached one
  // brought up to date from the change log (the CIs and relations graph_changes names that
  // the cache's snapshot could not see are read again, sightings when a statement changed
  // them; open drift and sources always), or loaded in full — the first time, when the log
  // was pruned past the cache's snapshot or records a TRUNCATE, when the rules read more
  // than the cache holds, or when more than `max_changes` CIs and relations changed.
  // `timings` gets estate_refreshed (which it was) and the parts' seconds. The estate
  // returned lives in the cache until its next call.
  const audit::Estate& LoadPresentEstate(EstateCache& cache, const EstateNeeds& needs,
                                         boost::json::object* timings = nullptr,
                                         DbSession* helper = nullptr,
                                         std::size_t max_changes = 200000);
  // CI `id` now, with the `attributes` named; nullopt when it does not exist.
  std::optional<audit::EstateCi> LoadCi(model::CiId id, const std::set<std::string>& attributes);
  // The part of the present estate that decides the rules for CI `id`: the CIs reached
  // following relations out of it up to `radius_out` steps and into it up to `radius_in`
  // (its own neighbours always, farther ones while the neighbourhood holds fewer than
  // `max_cis`: `truncated` says when it stopped), and those sharing a value of an attribute of
  // `unique_attributes` with it (each with the CI types to look among; none: every type).
  // nullopt when the CI does not exist.
  struct Neighbourhood {
    audit::Estate estate;
    bool truncated = false;
  };
  std::optional<Neighbourhood> LoadNeighbourhood(
      model::CiId id, const std::set<std::string>& attributes, int radius_out, int radius_in,
      const std::map<std::string, std::vector<std::string>>& unique_attributes,
      std::size_t max_cis = 100000);

  // --- findings ---
  // Waivers past their end become open findings again. Returns how many.
  std::int64_t ExpireWaivers();
  std::vector<LiveFinding> LiveFindings(const std::vector<std::string>& rules);
  void ApplyFindings(std::int64_t run_id, model::Timestamp at, const FindingChanges& changes);
  std::vector<model::AuditFinding> ListFindings(const AuditFindingFilter& filter);
  std::optional<model::AuditFinding> FindFinding(std::int64_t id);
  // An open (or waived: the waiver is replaced) finding waived until `waiver.until`.
  model::AuditFinding Waive(std::int64_t id, const model::Waiver& waiver,
                            std::optional<std::int64_t> if_match, const model::WriteContext& ctx);

  // --- scores ---
  std::vector<model::AuditScorePoint> Scores(const std::string& set, const std::string& kind,
                                             std::optional<model::Timestamp> from,
                                             std::optional<model::Timestamp> to);

  // --- schedule ---
  // An import or discovery run asks for an audit (debounced by QueueDueRuns).
  void RequestRun(model::AuditTrigger trigger);
  // Queues the nightly run of `baseline` once its time of day has passed (UTC), and one run
  // for the requests of imports and discovery once the latest is `debounce` old. Returns
  // how many runs it queued.
  int QueueDueRuns(model::Timestamp now, std::chrono::seconds debounce);

 private:
  struct Parts {
    model::Timestamp at;
    std::vector<audit::EstateCi> cis;
    audit::EstateRelations relations;
    std::vector<audit::EstateDrift> drift;
    std::vector<audit::EstateSource> sources;
  };
  Parts LoadParts(std::optional<model::Timestamp> as_of, const EstateNeeds& needs,
                  boost::json::object* timings, DbSession* helper, bool relation_ids);

  DbSession& db_;
};

}  // namespace cmdb::store
