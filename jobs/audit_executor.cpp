#include "jobs/audit_executor.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

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

// A finding's identity within a run: the rule's position, the subject (0 CI, 1 source), id.
struct FindingKey {
  std::uint32_t rule = 0;
  std::uint32_t subject = 0;
  std::int64_t id = 0;
  bool operator==(const FindingKey&) const = default;
};
struct FindingKeyHash {
  std::size_t operator()(const FindingKey& k) const {
    return std::hash<std::int64_t>{}(k.id) ^
           (static_cast<std::size_t>(k.rule) * 0x9E3779B97F4A7C15ULL) ^ k.subject;
  }
};

class RunExecution {
 public:
  RunExecution(store::DbSession& work, store::DbSession& progress, std::int64_t id,
               const audit::EvaluatorOptions& options, store::AuditRepository::EstateCache* cache)
      : work_(work), progress_(progress), id_(id), options_(options), cache_(cache) {}

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
    // A run of the present starts from the estate this worker evaluated last, brought up to
    // date; a run as of an instant reads history.
    std::optional<audit::Estate> as_of_estate;
    if (!present || cache_ == nullptr) {
      as_of_estate.emplace(repo.LoadEstate(run->as_of, needs, &timings_, &progress_));
    }
    const audit::Estate& estate =
        as_of_estate ? *as_of_estate
                     : repo.LoadPresentEstate(*cache_, needs, &timings_, &progress_);
    timings_["estate"] = Seconds(phase_start);
    phase_start = std::chrono::steady_clock::now();
    Phase("evaluate", 2);
    audit::Evaluator evaluator(estate, rules, options_);
    timings_["prepare"] = Seconds(phase_start);
    phase_start = std::chrono::steady_clock::now();
    // Owners as the estate numbers them, for the per-owner rows.
    const std::vector<std::string>& owner_names = estate.owners();
    const std::size_t n_rules = rules.size();
    const std::size_t n_types = estate.ci_types().size();
    // The work: each rule over the CIs of the types and statuses its scope may hold, in
    // pieces; a CI of any other bucket is not applicable without a look.
    struct Piece {
      std::uint32_t rule;
      std::span<const std::uint32_t> cis;
    };
    constexpr std::size_t kChunk = 4096;
    std::vector<Piece> pieces;
    std::vector<std::int64_t> looked_at(n_rules, 0);
    for (std::size_t r = 0; r < n_rules; ++r) {
      for (std::size_t t = 0; t < n_types; ++t) {
        for (std::size_t st = 0; st < estate.statuses().size(); ++st) {
          const auto type = static_cast<std::uint16_t>(t);
          const auto status = static_cast<std::uint8_t>(st);
          if (!evaluator.ScopeMayHold(r, type, status)) continue;
          const std::span<const std::uint32_t> bucket = estate.Bucket(type, status);
          looked_at[r] += static_cast<std::int64_t>(bucket.size());
          for (std::size_t b = 0; b < bucket.size(); b += kChunk) {
            pieces.push_back({static_cast<std::uint32_t>(r),
                              bucket.subspan(b, std::min(kChunk, bucket.size() - b))});
          }
        }
      }
    }
    Tally total(n_rules, n_types, owner_names.size());
    // One tally per thread at a time, merged at the end.
    std::mutex merge;
    std::vector<std::unique_ptr<Tally>> idle;
    std::vector<double> rule_seconds(n_rules, 0.0);  // CPU time per rule, across threads
    model::ParallelChunks(pieces.size(), 1,
                          [&](std::size_t p) {
                            std::unique_ptr<Tally> local;
                            {
                              std::lock_guard<std::mutex> lock(merge);
                              if (!idle.empty()) {
                                local = std::move(idle.back());
                                idle.pop_back();
                              }
                            }
                            if (!local)
                              local = std::make_unique<Tally>(n_rules, n_types, owner_names.size());
                            const std::uint32_t r = pieces[p].rule;
                            const auto piece_start = std::chrono::steady_clock::now();
                            for (const std::uint32_t i : pieces[p].cis) {
                              const AuditOutcome o = evaluator.Evaluate(r, i);
                              local->rules[r].Add(o);
                              if (o == AuditOutcome::kNotApplicable) continue;
                              local->types[r][estate.type_id(i)].Add(o);
                              local->owners[r][estate.owner_id(i)].Add(o);
                              if (o == AuditOutcome::kFail) {
                                local->failures.emplace_back(r, i);
                              } else if (o == AuditOutcome::kError) {
                                local->errors.emplace_back(r, i);
                              }
                            }
                            const double spent = Seconds(piece_start);
                            std::lock_guard<std::mutex> lock(merge);
                            rule_seconds[r] += spent;
                            idle.push_back(std::move(local));
                          },
                          {});
    for (auto& t : idle) total.Merge(*t);
    {
      boost::json::object per_rule;
      for (std::size_t r = 0; r < n_rules; ++r) per_rule[rules[r]->rule().key] = rule_seconds[r];
      timings_["evaluate_rules"] = std::move(per_rule);
    }
    for (std::size_t r = 0; r < n_rules; ++r) {
      if (rules[r]->subject() != model::AuditSubject::kCi) continue;
      total.rules[r].not_applicable += static_cast<std::int64_t>(estate.size()) - looked_at[r];
    }
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
      // Failures keyed as findings are: (rule, subject, id), the rule by its first position
      // in the run (a set may name a rule twice). What a finding records is built only for
      // those that open or change.
      std::unordered_map<std::string, std::uint32_t> rule_index;
      for (std::size_t r = 0; r < n_rules; ++r) {
        rule_index.emplace(rules[r]->rule().key, static_cast<std::uint32_t>(r));
      }
      auto key_of = [](std::uint32_t rule, model::AuditSubject subject, std::int64_t id) {
        return FindingKey{rule, subject == model::AuditSubject::kCi ? 0U : 1U, id};
      };
      // Each failing key to the CI's position (or the source's) and the rule's position.
      std::unordered_map<FindingKey, std::pair<std::uint32_t, std::uint32_t>, FindingKeyHash>
          failing;
      failing.reserve(total.failures.size() + source_failures.size());
      for (const auto& [r, i] : total.failures) {
        const std::uint32_t first = rule_index.at(rules[r]->rule().key);
        failing.emplace(key_of(first, model::AuditSubject::kCi, estate.ci(i).id), std::pair{r, i});
      }
      for (const auto& [r, s] : source_failures) {
        const std::uint32_t first = rule_index.at(rules[r]->rule().key);
        failing.emplace(
            key_of(first, model::AuditSubject::kDiscoverySource, estate.sources()[s].id),
            std::pair{static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(s)});
      }
      auto finding = [&](const FindingKey& key, std::pair<std::uint32_t, std::uint32_t> at) {
        const auto [r, i] = at;
        store::LiveFinding f;
        f.rule = rules[r]->rule().key;
        f.subject_id = key.id;
        if (key.subject == 0) {
          const audit::EstateCi& ci = estate.ci(i);
          f.subject = model::AuditSubject::kCi;
          f.ci_type = ci.type;
          f.owner = ci.owner;
          f.name = ci.name;
          f.message = evaluator.Message(r, i);
        } else {
          f.subject = model::AuditSubject::kDiscoverySource;
          f.name = estate.sources()[i].name;
          f.message = source_results[r][i].message;
        }
        return f;
      };
      store::FindingChanges changes;
      // A (rule, CI) this run could not decide keeps its finding as it is: an error is not a
      // pass.
      std::unordered_set<FindingKey, FindingKeyHash> undecided;
      for (const auto& [r, i] : total.errors) {
        undecided.insert(
            key_of(rule_index.at(rules[r]->rule().key), model::AuditSubject::kCi, estate.ci(i).id));
      }
      timings_["findings_failing"] = Seconds(phase_start);
      std::vector<store::LiveFinding> lives = repo.LiveFindings(finished.evaluated);
      timings_["findings_read"] = Seconds(phase_start);
      for (store::LiveFinding& live : lives) {
        auto rule = rule_index.find(live.rule);
        if (rule == rule_index.end()) continue;  // not evaluated (LiveFindings asked for those)
        const FindingKey key = key_of(rule->second, live.subject, live.subject_id);
        auto it = failing.find(key);
        if (it == failing.end()) {
          if (undecided.count(key) == 0) changes.resolved.push_back(live.id);
          continue;
        }
        const auto [r, i] = it->second;
        bool same = false;
        if (key.subject == 0) {
          const audit::EstateCi& ci = estate.ci(i);
          same = live.name == ci.name && live.owner == ci.owner && live.ci_type == ci.type &&
                 live.message == evaluator.Message(r, i);
        } else {
          same =
              live.name == estate.sources()[i].name && live.message == source_results[r][i].message;
        }
        if (!same) {
          store::LiveFinding updated = finding(key, it->second);
          updated.id = live.id;
          changes.updated.push_back(std::move(updated));
        }
        failing.erase(it);
      }
      // In the order of the findings' indexes (rule, subject, id): a first run opens hundreds
      // of thousands, which PostgreSQL inserts markedly faster in order than in hash order.
      std::vector<std::pair<FindingKey, std::pair<std::uint32_t, std::uint32_t>>> opening(
          failing.begin(), failing.end());
      std::sort(opening.begin(), opening.end(), [&](const auto& a, const auto& b) {
        if (a.first.rule != b.first.rule) {  // a key's rule is its first position: keys differ
          return rules[a.first.rule]->rule().key < rules[b.first.rule]->rule().key;
        }
        return std::pair(a.first.subject, a.first.id) < std::pair(b.first.subject, b.first.id);
      });
      changes.opened.reserve(opening.size());
      for (const auto& [key, at] : opening) changes.opened.push_back(finding(key, at));
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
  store::AuditRepository::EstateCache* cache_;
  boost::json::object timings_;
  std::int64_t opened_ = 0;
  std::int64_t resolved_ = 0;
};

}  // namespace

bool ExecuteAuditRun(store::DbSession& work, store::DbSession& progress, std::int64_t id,
                     const audit::EvaluatorOptions& options,
                     store::AuditRepository::EstateCache* cache) {
  std::string error;
  try {
    RunExecution(work, progress, id, options, cache).Execute();
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
  // The estate of the latest run of the present, kept for the next one (the worker runs one
  // job at a time on its own thread).
  std::shared_ptr<store::AuditRepository::EstateCache> cache;
  if (options.keep_estate) cache = std::make_shared<store::AuditRepository::EstateCache>();
  return std::make_unique<JobWorker>(
      dsn, store::JobTable{"audit_runs", "cmdb_audit_lock_key", "audit"}, options.worker,
      [cache](store::DbSession& work, store::DbSession& progress, std::int64_t id) {
        try {
          ExecuteAuditRun(work, progress, id, {}, cache.get());
        } catch (...) {
          if (cache) cache->Clear();  // the database failed mid-run: start afresh
          throw;
        }
      },
      options.schedule
          ? JobWorker::BeforeClaims([debounce = options.debounce](store::DbSession& db) {
              store::AuditRepository(db).QueueDueRuns(model::Timestamp::Now(), debounce);
            })
          : JobWorker::BeforeClaims());
}

}  // namespace cmdb::jobs
