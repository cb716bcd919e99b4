#include "jobs/discovery_executor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>

#include "discovery/collector.hpp"
#include "discovery/decision_log.hpp"
#include "discovery/reconcile.hpp"
#include "discovery/sightings.hpp"
#include "import/importer.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "model/parallel.hpp"
#include "store/audit_repository.hpp"
#include "store/change_repository.hpp"
#include "store/ci_repository.hpp"
#include "store/ci_type_repository.hpp"
#include "store/discovery_run_repository.hpp"
#include "store/discovery_source_repository.hpp"
#include "store/drift_repository.hpp"
#include "store/import_store.hpp"
#include "store/sighting_repository.hpp"
#include "store/transaction.hpp"

namespace cmdb::jobs {

using discovery::Decision;
using discovery::FindingAction;
using discovery::Observation;
using discovery::Outcome;
using model::Error;
using model::ErrorCode;
namespace json = boost::json;

namespace {

// The CI types a run reconciles against, each locked against imports and other runs.
struct Loaded {
  std::optional<model::CiType> type;  // nullopt: no such type
  std::vector<discovery::Candidate> candidates;
};
using LoadedTypes = std::map<std::string, Loaded, std::less<>>;

// The work of one run inside its transaction, phase by phase.
class RunExecution {
 public:
  RunExecution(store::DbSession& db, std::int64_t run_id,
               const std::function<void(std::int64_t, std::int64_t)>& progress)
      : db_(db), runs_(db), run_id_(run_id), progress_(progress) {}

  void Execute() {
    ReadRun();
    Phase("read_run");
    store::Transaction tr(db_);
    std::vector<Observation> observations = CollectAndLoad();
    const auto total = static_cast<std::int64_t>(observations.size());
    progress_(0, total);
    discovery::Reconciler reconciler(source_.config, Junk(observations));
    for (const auto& o : observations) Load(reconciler.TypeOf(o));
    Phase("collect_and_load");
    Index(reconciler);
    Phase("index");
    Reconcile(reconciler, observations);
    Phase("reconcile");
    Authorize();
    if (!input_.dry_run) {
      CreateCis();
      Phase("register");
      FillRecords();
      Phase("fill");
      AssignFindingIds();
    }
    WriteOutcome(total);
    tr.Commit();
    Phase("commit");
    runs_.SetTimings(run_id_, timings_);
  }

 private:
  void ReadRun() {
    input_ = runs_.Input(run_id_);
    std::optional<model::DiscoverySource> source =
        store::DiscoverySourceRepository(db_).Find(input_.source_id);
    if (!source) throw Error(ErrorCode::kNotFound, "the run's source was deleted");
    source_ = std::move(*source);
  }

  // Parsing the payload (one core) overlaps loading the CIs of the source's type (the other
  // core and PostgreSQL).
  std::vector<Observation> CollectAndLoad() {
    std::future<std::vector<Observation>> collected = std::async(std::launch::async, [&] {
      return discovery::Collect(source_, input_.content_type, input_.payload);
    });
    try {
      Load(source_.config.ci_type);
    } catch (...) {
      collected.wait();
      throw;
    }
    return collected.get();
  }

  // Locks CI type `name` against imports and other runs and loads its CIs, once.
  void Load(const std::string& name) {
    if (loaded_.contains(name)) return;
    Loaded& l = loaded_[name];
    if (!model::IsValidIdentifier(name)) return;
    store::ImportStore(db_).LockType(name);
    l.type = store::CiTypeRepository(db_).Find(name, /*lock_shared=*/true);
    if (!l.type) return;
    for (store::CiAttributes& ci : store::CiRepository(db_).AttributesOfType(name)) {
      l.candidates.push_back({ci.id, std::move(ci.name), std::move(ci.attributes)});
    }
  }

  // A scan of loopback addresses is identified by them; any other scan is not.
  discovery::JunkRules Junk(const std::vector<Observation>& observations) const {
    bool loopback = source_.config.loopback_identities;
    if (source_.kind == model::SourceKind::kNmapXml && !observations.empty()) {
      loopback =
          loopback || std::all_of(observations.begin(), observations.end(), [](const auto& o) {
            const json::value* ip = o.attributes.if_contains("ip");
            return ip != nullptr && ip->is_string() &&
                   discovery::IsLoopbackAddress(ip->get_string());
          });
    }
    return {source_.config.junk_values, loopback};
  }

  // Indexing the candidates (all cores) overlaps reading the known findings (PostgreSQL).
  void Index(discovery::Reconciler& reconciler) {
    std::vector<std::string> known;
    for (auto& [name, l] : loaded_) {
      if (l.type) known.push_back(name);
    }
    std::future<void> indexed = std::async(std::launch::async, [&] {
      for (auto& [name, l] : loaded_) {
        if (l.type) reconciler.AddType(std::move(*l.type), std::move(l.candidates));
      }
    });
    std::vector<store::KnownFinding> open;
    std::vector<store::KnownFinding> ignored;
    try {
      store::DriftRepository(db_).LoadKnown(known, open, ignored);
    } catch (...) {
      indexed.wait();
      throw;
    }
    indexed.get();
    for (store::KnownFinding& f : open) {
      reconciler.AddOpenFinding(f.ci, f.attribute,
                                {f.id, std::move(f.expected), std::move(f.actual)});
    }
    for (store::KnownFinding& f : ignored) {
      reconciler.AddIgnoredFinding(f.ci, f.attribute,
                                   {f.id, std::move(f.expected), std::move(f.actual)});
    }
  }

  // The order-independent part of every decision on all cores (PostgreSQL has nothing to do
  // meanwhile), then the rest in observation order.
  void Reconcile(discovery::Reconciler& reconciler, const std::vector<Observation>& observations) {
    const auto total = static_cast<std::int64_t>(observations.size());
    std::vector<discovery::Reconciler::Draft> drafts(observations.size());
    model::ParallelFor(
        observations.size(),
        [&](std::size_t i) {
          drafts[i] = reconciler.Prepare(observations[i], static_cast<int>(i) + 1);
        },
        [&](std::size_t done) { progress_(static_cast<std::int64_t>(done), total); });
    decisions_.reserve(observations.size());
    for (auto& draft : drafts) decisions_.push_back(reconciler.Settle(std::move(draft)));
  }

  model::WriteContext Context() const {
    return {"discovery:" + source_.name, "discovery:" + std::to_string(run_id_)};
  }

  // Drift on a CI that an approved or in-progress change covers at the observation time is
  // authorised and names the change.
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
    const std::map<std::int64_t, std::int64_t> changes =
        store::ChangeRepository(db_).Authorizing(drifted, input_.observed_at);
    if (changes.empty()) return;
    for (auto& d : decisions_) {
      auto c = changes.find(d.ci);
      if (c == changes.end()) continue;
      for (auto& f : d.findings) f.change = c->second;
    }
  }

  // Registers the unmatched observations the source creates CIs for, through the importer.
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
    import::ImportOptions options;
    options.atomic = false;
    options.create_only = true;  // reconciliation found no CI for any of them
    options.ctx = Context();
    const import::ImportResult result =
        import::ImportDocument(db_, json::object{{"cis", std::move(cis)}}, options);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i]->ci = i < result.ci_ids.size() ? result.ci_ids[i] : 0;
    }
    for (const auto& e : result.errors) {
      // e.row is "cis[<i>]".
      const std::size_t i = std::stoul(e.row.substr(4));
      if (i >= rows.size()) continue;
      rows[i]->outcome = Outcome::kRejected;
      rows[i]->ci = 0;
      rows[i]->reason =
          "could not register it: " + (e.field.empty() ? "" : e.field + ": ") + e.message;
    }
  }

  // Fills in the attributes matched records lack (history source discovery:<run>).
  void FillRecords() {
    store::CiRepository cis(db_);
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

  // Ids for the findings this run opens, in one round trip, before anything is written: the
  // decision log names them and is encoded while the findings are written.
  void AssignFindingIds() {
    std::vector<discovery::FindingChange*> opened;
    for (auto& d : decisions_) {
      if (d.outcome != Outcome::kMatched) continue;
      for (auto& f : d.findings) {
        if (f.action == FindingAction::kOpen) opened.push_back(&f);
      }
    }
    if (opened.empty()) return;
    const std::vector<std::int64_t> ids = store::DriftRepository(db_).NextIds(opened.size());
    for (std::size_t i = 0; i < opened.size(); ++i) opened[i]->finding_id = ids[i];
  }

  // The decisions are final now (CI and finding ids known): they are encoded on a second core
  // while the findings and sightings are written, then the log and the counts.
  void WriteOutcome(std::int64_t total) {
    std::future<std::vector<model::DecisionBlock>> encoded = std::async(std::launch::async, [this] {
      return discovery::EncodeDecisionLog(decisions_, input_.dry_run);
    });
    if (!input_.dry_run) {
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
    const std::vector<model::DecisionBlock> blocks = encoded.get();
    Phase("decisions_encode");
    runs_.WriteDecisionBlocks(run_id_, blocks);
    Phase("decisions_copy");
    runs_.Succeed(run_id_, Counts(total), total);
  }

  void WriteFindings() {
    store::RunFindings out;
    for (const auto& d : decisions_) {
      if (d.outcome != Outcome::kMatched) continue;
      for (const auto& f : d.findings) {
        switch (f.action) {
          case FindingAction::kOpen:
            out.opened.push_back({f.finding_id, d.ci, f.attribute, f.expected, f.actual, f.change});
            break;
          case FindingAction::kUpdate:
            out.updated.push_back({f.finding_id, f.expected, f.actual, f.change});
            break;
          case FindingAction::kUnchanged:
            out.unchanged.push_back({f.finding_id, f.change});
            break;
          case FindingAction::kResolve:
            out.resolved.push_back(f.finding_id);
            break;
          case FindingAction::kSuppressed:
            break;
        }
      }
    }
    store::DriftRepository(db_).WriteRun(run_id_, input_.observed_at, out,
                                         "discovery:" + std::to_string(run_id_));
  }

  // Records which CIs this run saw (a CI's last_seen_at is not versioned, so an observation
  // that changes nothing changes no version): only what changed against the source's
  // previous writing run is written (discovery/sightings.hpp).
  void StampSeen() {
    std::vector<std::int64_t> seen;
    for (const auto& d : decisions_) {
      if ((d.outcome == Outcome::kMatched || d.outcome == Outcome::kCreated) && d.ci > 0) {
        seen.push_back(d.ci);
      }
    }
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    store::SightingRepository sightings(db_);
    // The source row's lock serialises the sightings of one source (runs of one source with
    // different CI types do not share the per-type lock).
    const store::SourceSightings before = sightings.LockAndRead(source_.id);
    const model::SightingChanges changes =
        discovery::DiffSightings(before.blocks, before.closed_rows, seen);
    sightings.Write(source_.id, before, changes, run_id_, input_.observed_at);
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

  store::DbSession& db_;
  store::DiscoveryRunRepository runs_;
  std::int64_t run_id_;
  const std::function<void(std::int64_t, std::int64_t)>& progress_;
  std::chrono::steady_clock::time_point phase_start_ = std::chrono::steady_clock::now();
  json::object timings_;
  store::RunInput input_;
  model::DiscoverySource source_;
  LoadedTypes loaded_;
  std::vector<Decision> decisions_;
};

}  // namespace

bool ExecuteDiscoveryRun(store::DbSession& db, std::int64_t run_id,
                         const std::function<void(std::int64_t, std::int64_t)>& progress) {
  std::string error;
  try {
    RunExecution(db, run_id, progress).Execute();
    return true;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;
    error = e.what();
    for (const auto& f : e.field_errors()) error += "; " + f.field + ": " + f.message;
  } catch (const std::exception& e) {
    error = e.what();
  }
  store::DiscoveryRunRepository(db).Fail(run_id, error);
  return false;
}

DiscoveryWorker::DiscoveryWorker(const std::string& dsn, const DiscoveryWorkerOptions& options)
    : worker_(
          dsn, {"discovery_runs", "cmdb_run_lock_key", "discovery"},
          {options.instance, options.poll},
          [graph_changed = options.graph_changed](store::DbSession& db, store::DbSession& progress,
                                                  std::int64_t run_id) {
            auto report = [&](std::int64_t done, std::int64_t total) {
              store::DiscoveryRunRepository(progress).ReportProgress(run_id, done, total);
            };
            if (!ExecuteDiscoveryRun(db, run_id, report)) return;
            store::AuditRepository(progress).RequestRun(model::AuditTrigger::kDiscovery);
            if (!graph_changed) return;
            try {
              if (store::DiscoveryRunRepository(db).CreatedCis(run_id) > 0) graph_changed();
            } catch (const Error&) {
              graph_changed();  // best effort: when unsure, the graph is out of date
            }
          },
          options.schedule ? JobWorker::BeforeClaims([](store::DbSession& db) {
            store::DiscoveryRunRepository(db).QueueScheduled();
          })
                           : JobWorker::BeforeClaims()) {}

}  // namespace cmdb::jobs
