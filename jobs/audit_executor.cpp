#include "jobs/audit_executor.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include <boost/json.hpp>

#include "model/error.hpp"
#include "model/log.hpp"
#include "model/parallel.hpp"
#include "store/audit_repository.hpp"
#include "store/sql.hpp"
#include "store/transaction.hpp"

namespace cmdb::jobs {

using model::AuditCounts;
using model::AuditOutcome;
using model::Error;
using model::ErrorCode;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Counts of one evaluation pass, per rule, type and owner (by index), merged across threads.
struct Tally {
  std::vector<AuditCounts> rules;
  std::vector<std::vector<AuditCounts>> types;   // [rule][type id]: kpi and type rows
  std::vector<std::vector<AuditCounts>> owners;  // [rule][owner id]
  std::vector<std::pair<std::uint32_t, std::uint32_t>> failures;  // (rule, CI)
  std::vector<std::pair<std::uint32_t, std::uint32_t>> errors;    // (rule, CI): undecided

  Tally(std::size_t rules_n, std::size_t types_n, std::size_t owners_n)
      : rules(rules_n),
        types(rules_n, std::vector<AuditCounts>(types_n)),
        owners(rules_n, std::vector<AuditCounts>(owners_n)) {}

  void Merge(Tally& other) {
    for (std::size_t r = 0; r < rules.size(); ++r) {
      rules[r] += other.rules[r];
      for (std::size_t t = 0; t < types[r].size(); ++t) types[r][t] += other.types[r][t];
      for (std::size_t o = 0; o < owners[r].size(); ++o) owners[r][o] += other.owners[r][o];
    }
    failures.insert(failures.end(), other.failures.begin(), other.failures.end());
    errors.insert(errors.end(), other.errors.begin(), other.errors.end());
  }
};

// The session-level advisory lock that serialises runs of the present, held while in scope.
class FindingsLock {
 public:
  FindingsLock(store::DbSession& db, bool take) : db_(db), held_(take) {
    if (held_) store::sql::Execute(db_, "SELECT pg_advisory_lock(cmdb_audit_lock_key(0))");
  }
  ~FindingsLock() {
    if (!held_) return;
    try {
      store::sql::Execute(db_, "SELECT pg_advisory_unlock(cmdb_audit_lock_key(0))");
    } catch (...) {  // NOLINT(bugprone-empty-catch): a lost session has released it already
    }
  }
  FindingsLock(const FindingsLock&) = delete;
  FindingsLock& operator=(const FindingsLock&) = delete;

 private:
  store::DbSession& db_;
  bool held_;
};

class RunExecution {
 public:
  RunExecution(store::DbSession& work, store::DbSession& progress, std::int64_t id,
               const audit::EvaluatorOptions& options)
      : work_(work), progress_(progress), id_(id), options_(options) {}

  void Execute() {
    const auto started = std::chrono::steady_clock::now();
    store::AuditRepository repo(work_);
    const std::optional<model::AuditRun> run = repo.FindRun(id_);
    if (!run) throw Error(ErrorCode::kNotFound, "audit run " + std::to_string(id_) + " is gone");
    const bool present = !run->as_of.has_value();
    // Runs of the present move the findings: one at a time across instances, each taking its
    // snapshot only once the previous one committed (hence the lock before the transaction:
    // a REPEATABLE READ snapshot would be taken by the very statement waiting for the lock).
    const FindingsLock serialised(work_, present);
    store::Transaction tr(work_);
    // One snapshot for everything read, with the writes of the outcome in the same
    // transaction.
    store::sql::Execute(work_, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    Phase("rules", 0);
    const std::optional<model::AuditRuleSet> set = repo.FindSet(run->set);
    if (!set) throw Error(ErrorCode::kNotFound, "rule set " + run->set + " does not exist");
    const audit::Catalogue catalogue = repo.LoadCatalogue();
    std::vector<std::shared_ptr<const audit::CompiledRule>> rules;
    std::vector<std::string> broken;  // rules that no longer compile (the catalogue changed)
    store::AuditRepository::EstateNeeds needs;
    needs.sightings = needs.changed = needs.tags = false;
    // One read of the rules, then the set's in its order (a rule deleted since the set was
    // written is skipped).
    std::map<std::string, model::AuditRule> all;
    for (model::AuditRule& r : repo.ListRules()) {
      std::string key = r.key;
      all.emplace(std::move(key), std::move(r));
    }
    for (const std::string& key : set->rules) {
      auto found = all.find(key);
      if (found == all.end()) continue;
      model::FieldErrors errors;
      auto compiled = audit::Compile(found->second, catalogue, errors);
      if (!compiled) {
        model::Log(
            model::LogLevel::kWarn, "audit rule no longer compiles",
            {{"rule", key},
             {"error",
              errors.empty() ? "" : errors.items()[0].field + ": " + errors.items()[0].message}});
        broken.push_back(key);
        continue;
      }
      needs.attributes.insert(compiled->attributes().begin(), compiled->attributes().end());
      needs.sightings = needs.sightings || compiled->uses_sightings();
      needs.changed = needs.changed || compiled->uses_changed();
      needs.tags = needs.tags || compiled->uses_tags();
      rules.push_back(std::move(compiled));
    }
    timings_["rules"] = Seconds(started);
    auto phase_start = std::chrono::steady_clock::now();
    Phase("estate", 1);
    // The relations are read on the progress session meanwhile: no phase is reported then.
    const audit::Estate estate = repo.LoadEstate(run->as_of, needs, &timings_, &progress_);
    timings_["estate"] = Seconds(phase_start);
    phase_start = std::chrono::steady_clock::now();
    Phase("evaluate", 2);
    audit::Evaluator evaluator(estate, rules, options_);
    timings_["prepare"] = Seconds(phase_start);
    phase_start = std::chrono::steady_clock::now();
    // Owners interned for the per-owner rows.
    std::vector<std::string> owner_names{""};
    std::vector<std::uint32_t> owner_of(estate.size(), 0);
    {
      std::unordered_map<std::string, std::uint32_t> index{{"", 0}};
      for (std::uint32_t i = 0; i < estate.size(); ++i) {
        const auto& owner = estate.ci(i).owner;
        if (!owner || owner->empty()) continue;
        auto [it, added] = index.emplace(*owner, static_cast<std::uint32_t>(owner_names.size()));
        if (added) owner_names.push_back(*owner);
        owner_of[i] = it->second;
      }
    }
    const std::size_t n_rules = rules.size();
    const std::size_t n_types = estate.ci_types().size();
    Tally total(n_rules, n_types, owner_names.size());
    std::mutex merge;
    constexpr std::size_t kChunk = 4096;
    const std::size_t chunks = (estate.size() + kChunk - 1) / kChunk;
    model::ParallelChunks(
        chunks, 1,
        [&](std::size_t c) {
          Tally local(n_rules, n_types, owner_names.size());
          const auto begin = static_cast<std::uint32_t>(c * kChunk);
          const auto end = static_cast<std::uint32_t>(std::min(estate.size(), (c + 1) * kChunk));
          for (std::size_t r = 0; r < n_rules; ++r) {
            if (rules[r]->subject() != model::AuditSubject::kCi) continue;
            for (std::uint32_t i = begin; i < end; ++i) {
              const AuditOutcome o = evaluator.Evaluate(r, i);
              local.rules[r].Add(o);
              if (o == AuditOutcome::kNotApplicable) continue;
              local.types[r][estate.type_id(i)].Add(o);
              local.owners[r][owner_of[i]].Add(o);
              if (o == AuditOutcome::kFail) {
                local.failures.emplace_back(static_cast<std::uint32_t>(r), i);
              } else if (o == AuditOutcome::kError) {
                local.errors.emplace_back(static_cast<std::uint32_t>(r), i);
              }
            }
          }
          std::lock_guard<std::mutex> lock(merge);
          total.Merge(local);
        },
        {});
    timings_["evaluate"] = Seconds(phase_start);
    phase_start = std::chrono::steady_clock::now();
    // Discovery-source rules: observations count for and against.
    std::vector<std::pair<std::size_t, std::size_t>> source_failures;  // (rule, source)
    std::vector<std::vector<audit::Evaluator::SourceResult>> source_results(n_rules);
    for (std::size_t r = 0; r < n_rules; ++r) {
      if (rules[r]->subject() != model::AuditSubject::kDiscoverySource) continue;
      for (std::size_t s = 0; s < estate.sources().size(); ++s) {
        audit::Evaluator::SourceResult res = evaluator.EvaluateSource(r, s);
        if (res.outcome != AuditOutcome::kNotApplicable) {
          total.rules[r].pass += res.passed;
          total.rules[r].fail += res.failed;
        } else {
          total.rules[r].not_applicable += 1;
        }
        if (res.outcome == AuditOutcome::kFail) source_failures.emplace_back(r, s);
        source_results[r].push_back(std::move(res));
      }
    }
    // The result of the run: counts per rule and the score rows.
    store::FinishedRun finished;
    finished.id = id_;
    finished.set = run->set;
    finished.evaluated_at = estate.at();
    finished.present = present;
    finished.subjects = static_cast<std::int64_t>(estate.size() + estate.sources().size());
    AuditCounts overall;
    std::map<std::string, AuditCounts> kpis, types, owners;
    for (std::size_t r = 0; r < n_rules; ++r) {
      const model::AuditRule& rule = rules[r]->rule();
      const AuditCounts& c = total.rules[r];
      finished.rules[rule.key] = c;
      finished.evaluated.push_back(rule.key);
      AuditCounts scored = c;
      scored.not_applicable = 0;  // not applicable says nothing of a group
      overall += scored;
      kpis[std::string(model::AuditKpiName(rule.kpi))] += scored;
      finished.scores.push_back({"rule", rule.key, c});
      for (std::size_t t = 0; t < n_types; ++t) types[estate.ci_types()[t]] += total.types[r][t];
      for (std::size_t o = 0; o < owner_names.size(); ++o) {
        owners[owner_names[o]] += total.owners[r][o];
      }
    }
    for (const std::string& key : broken) {
      AuditCounts c;
      c.error = static_cast<std::int64_t>(estate.size());
      finished.rules[key] = c;
      finished.scores.push_back({"rule", key, c});
      overall.error += c.error;
    }
    finished.scores.push_back({"overall", "", overall});
    for (const auto& [k, c] : kpis) finished.scores.push_back({"kpi", k, c});
    for (const auto& [k, c] : types) {
      if (c.pass + c.fail + c.error > 0) finished.scores.push_back({"type", k, c});
    }
    for (const auto& [k, c] : owners) {
      if (c.pass + c.fail + c.error > 0) finished.scores.push_back({"owner", k, c});
    }
    if (present) {
      Phase("findings", 3);
      repo.ExpireWaivers();
      // Failures keyed as findings are: (rule, subject, id).
      using Key = std::tuple<std::string, model::AuditSubject, std::int64_t>;
      std::map<Key, store::LiveFinding> failing;
      for (const auto& [r, i] : total.failures) {
        const audit::EstateCi& ci = estate.ci(i);
        store::LiveFinding f;
        f.rule = rules[r]->rule().key;
        f.subject = model::AuditSubject::kCi;
        f.subject_id = ci.id;
        f.ci_type = ci.type;
        f.owner = ci.owner;
        f.name = ci.name;
        f.message = evaluator.Message(r, i);
        failing.emplace(Key{f.rule, f.subject, f.subject_id}, std::move(f));
      }
      for (const auto& [r, s] : source_failures) {
        const audit::EstateSource& source = estate.sources()[s];
        store::LiveFinding f;
        f.rule = rules[r]->rule().key;
        f.subject = model::AuditSubject::kDiscoverySource;
        f.subject_id = source.id;
        f.name = source.name;
        f.message = source_results[r][s].message;
        failing.emplace(Key{f.rule, f.subject, f.subject_id}, std::move(f));
      }
      store::FindingChanges changes;
      // A (rule, CI) this run could not decide keeps its finding as it is: an error is not a
      // pass.
      std::set<Key> undecided;
      for (const auto& [r, i] : total.errors) {
        undecided.insert(Key{rules[r]->rule().key, model::AuditSubject::kCi, estate.ci(i).id});
      }
      for (store::LiveFinding& live : repo.LiveFindings(finished.evaluated)) {
        auto it = failing.find(Key{live.rule, live.subject, live.subject_id});
        if (it == failing.end()) {
          if (undecided.count(Key{live.rule, live.subject, live.subject_id}) == 0) {
            changes.resolved.push_back(live.id);
          }
          continue;
        }
        const store::LiveFinding& now = it->second;
        if (now.name != live.name || now.message != live.message || now.owner != live.owner ||
            now.ci_type != live.ci_type) {
          store::LiveFinding updated = now;
          updated.id = live.id;
          changes.updated.push_back(std::move(updated));
        }
        failing.erase(it);
      }
      for (auto& [key, f] : failing) changes.opened.push_back(std::move(f));
      opened_ = static_cast<std::int64_t>(changes.opened.size());
      resolved_ = static_cast<std::int64_t>(changes.resolved.size());
      repo.ApplyFindings(id_, estate.at(), changes);
      timings_["findings"] = Seconds(phase_start);
    }
    timings_["total"] = Seconds(started);
    finished.timings = timings_;
    finished.timings["findings_opened"] = opened_;
    finished.timings["findings_resolved"] = resolved_;
    repo.FinishRun(finished);
    tr.Commit();
    model::Log(model::LogLevel::kInfo, "audit run finished",
               {{"run", id_},
                {"set", run->set},
                {"subjects", finished.subjects},
                {"seconds", Seconds(started)},
                {"findings_opened", opened_},
                {"findings_resolved", resolved_}});
  }

 private:
  void Phase(const std::string& name, std::int64_t done) {
    store::AuditRepository(progress_).SetPhase(id_, name, done, 4);
  }

  store::DbSession& work_;
  store::DbSession& progress_;
  std::int64_t id_;
  audit::EvaluatorOptions options_;
  boost::json::object timings_;
  std::int64_t opened_ = 0;
  std::int64_t resolved_ = 0;
};

}  // namespace

bool ExecuteAuditRun(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                     const audit::EvaluatorOptions& options) {
  std::string error;
  try {
    RunExecution(work, progress, id, options).Execute();
    return true;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
  }
  model::Log(model::LogLevel::kError, "audit run failed", {{"run", id}, {"error", error}});
  store::AuditRepository(progress).FailRun(id, error);
  return false;
}

CiAudit EvaluateCi(store::DbSession& session, model::CiId id,
                   const std::vector<model::AuditRule>& rules) {
  store::AuditRepository repo(session);
  const audit::Catalogue catalogue = repo.LoadCatalogue();
  CiAudit out;
  std::set<std::string> attributes;
  std::map<std::string, std::vector<std::string>> unique;
  int radius_out = 0, radius_in = 0;
  for (const model::AuditRule& rule : rules) {
    model::FieldErrors errors;
    auto compiled = audit::Compile(rule, catalogue, errors);
    if (!compiled) {
      out.broken.push_back(rule);
      continue;
    }
    if (compiled->subject() != model::AuditSubject::kCi) continue;
    attributes.insert(compiled->attributes().begin(), compiled->attributes().end());
    out.compiled.push_back(std::move(compiled));
  }
  // Only the rules whose scope holds the CI decide what else to read: a hub that no graph
  // rule applies to is not walked.
  std::optional<audit::EstateCi> self = repo.LoadCi(id, attributes);
  if (!self)
    throw model::Error(model::ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
  {
    const audit::Estate alone(model::Timestamp::Now(), {*self}, {}, {}, {});
    const audit::Evaluator scoping(alone, out.compiled);
    for (std::size_t r = 0; r < out.compiled.size(); ++r) {
      if (!scoping.InScope(r, 0)) continue;
      AddUniqueScope(*out.compiled[r], unique);
      radius_out = std::max(radius_out, out.compiled[r]->reach_out());
      radius_in = std::max(radius_in, out.compiled[r]->reach_in());
    }
  }
  auto loaded = repo.LoadNeighbourhood(id, attributes, radius_out, radius_in, unique);
  if (!loaded)
    throw model::Error(model::ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
  out.estate = std::move(loaded->estate);
  out.truncated = loaded->truncated;
  out.index = *out.estate->IndexOf(id);
  out.evaluator = std::make_unique<audit::Evaluator>(*out.estate, out.compiled);
  return out;
}

std::unique_ptr<JobWorker> MakeAuditWorker(const std::string& dsn,
                                           const AuditWorkerOptions& options) {
  return std::make_unique<JobWorker>(
      dsn, store::JobTable{"audit_runs", "cmdb_audit_lock_key", "audit"}, options.worker,
      [](store::DbSession& work, store::DbSession& progress, std::int64_t id) {
        ExecuteAuditRun(work, progress, id);
      },
      options.schedule
          ? JobWorker::BeforeClaims([debounce = options.debounce](store::DbSession& db) {
              store::AuditRepository(db).QueueDueRuns(model::Timestamp::Now(), debounce);
            })
          : JobWorker::BeforeClaims());
}

}  // namespace cmdb::jobs
