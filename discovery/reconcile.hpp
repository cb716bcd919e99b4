#pragma once
// Reconciliation: what one discovery observation means for the records. Pure and in memory:
// the run executor (jobs/discovery_executor.hpp) loads the candidate CIs and open findings, asks
// the Reconciler for a Decision per observation and writes the outcome. Every decision explains
// itself: which identifier sets were tried, which value was junk, which CI matched and why
// a finding was opened, updated, resolved or suppressed. Not thread-safe, except Prepare.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "discovery/observation.hpp"
#include "model/ci_type.hpp"
#include "model/discovery_source.hpp"

namespace cmdb::discovery {

using CiId = std::int64_t;

using model::OnUnmatched;
using model::SourceConfig;

// True for 127.0.0.0/8 and ::1 (in any spelling).
bool IsLoopbackAddress(std::string_view address);

// Values that must never identify an asset: placeholders firmware and installers leave behind
// ("To be filled by O.E.M.", "Default string", "0", ...), all-zero or broadcast MACs, and
// loopback addresses unless the scan is of loopback addresses.
class JunkRules {
 public:
  JunkRules(const std::vector<std::string>& extra, bool loopback_identities);
  // Why `value` cannot identify anything, or "" when it can.
  std::string Why(const boost::json::value& value) const;
  static const std::vector<std::string>& BuiltIn();

 private:
  std::vector<std::string> values_;  // lower case, trimmed
  bool loopback_identities_;
};

// A CI that observations of its type may match.
struct Candidate {
  CiId id = 0;
  std::string name;
  boost::json::object attributes;
};

enum class Outcome { kMatched, kCreated, kUnmatched, kAmbiguous, kRejected };
std::string_view OutcomeName(Outcome outcome);

enum class FindingAction {
  kOpen,        // a new difference
  kUpdate,      // an open finding whose observed (or recorded) value changed
  kUnchanged,   // an open finding observed again with the same values
  kResolve,     // reality is back at the record
  kSuppressed,  // the same difference was ignored before
};
std::string_view FindingActionName(FindingAction action);

struct FindingChange {
  FindingAction action = FindingAction::kOpen;
  std::string attribute;
  boost::json::value expected;  // the record's value (null when it has none)
  boost::json::value actual;    // the observed value
  std::int64_t finding_id = 0;  // the existing finding; for kOpen, set once written
  std::int64_t change = 0;      // the approved, in-window change that covers it (authorised)
};

struct Decision {
  int seq = 0;
  std::string label;
  std::string type;
  Outcome outcome = Outcome::kUnmatched;
  CiId ci = 0;  // matched or created CI
  std::vector<std::string> matched_by;
  std::vector<CiId> candidates;  // ambiguous: every CI that matched
  boost::json::array tried;      // [{"identify_by": [...], "result": "..."}]
  std::string reason;
  std::vector<FindingChange> findings;
  boost::json::object fill;  // attributes the record lacked, written by the run
  std::string create_name;   // kCreated: the new CI's name and attributes
  boost::json::object create_attributes;
  boost::json::array notes;  // observed values not used, and why

  boost::json::object ToJson() const;
  // ToJson's text appended to `out` (with "dry_run": true last when `dry_run`), written
  // directly: a run's decision log is 100k of these.
  void AppendJson(std::string& out, bool dry_run = false) const;
};

struct KnownFinding {
  std::int64_t id = 0;
  boost::json::value expected;
  boost::json::value actual;
};

class Reconciler {
 public:
  Reconciler(SourceConfig config, JunkRules junk);

  // The CI type observations may name, with its CIs (indexed here by every identifier set).
  void AddType(model::CiType type, std::vector<Candidate> candidates);
  void AddOpenFinding(CiId ci, const std::string& attribute, KnownFinding finding);
  // The most recent ignored finding of (ci, attribute).
  void AddIgnoredFinding(CiId ci, const std::string& attribute, KnownFinding finding);

  // Decides what `observation` (number `seq` of the run) means. Remembers matches, so a second
  // observation of the same CI in one run is reported as ambiguous, not applied twice.
  // Decide(o, seq) is Settle(Prepare(o, seq)).
  Decision Decide(const Observation& observation, int seq);

  // A decision in two steps, so that a large run can take the first on several threads.
  // Prepare does everything that does not depend on the run's other observations (identifier
  // keys, look-ups, validation, comparison with the record) and may be called concurrently;
  // Settle, called once per draft in observation order, applies what does: a CI that an
  // earlier observation matched, an asset that an earlier observation registers.
  struct Draft {
    Decision decision;
    std::vector<std::string> keys;  // per identifier set examined; empty: incomplete
    bool hit = false;               // the last set examined found CIs
  };
  Draft Prepare(const Observation& observation, int seq) const;
  Decision Settle(Draft draft);

  // The type an observation is reconciled as.
  const std::string& TypeOf(const Observation& observation) const;

 private:
  // The candidates by their lookup key under one identifier set: entries sorted by (hash of
  // the key, candidate), the keys' text in one buffer. Flat arrays, so that building and
  // freeing the index of 100k CIs costs a sort, not 100k map nodes.
  struct SetIndex {
    struct Entry {
      std::uint64_t hash = 0;
      std::uint32_t candidate = 0;
      std::uint32_t size = 0;
      std::size_t begin = 0;  // of the key in `text`
    };
    std::vector<Entry> entries;
    std::string text;
    // The candidates whose key is `key`, in ascending order.
    std::vector<std::size_t> Find(std::string_view key) const;
  };
  struct TypeIndex {
    model::CiType type;
    std::vector<Candidate> candidates;
    std::vector<SetIndex> sets;  // per identifier set
    // Per identifier set, as the decision log names it: ["hostname","domain"], and that text.
    std::vector<boost::json::array> set_json;
    std::vector<std::string> set_text;
    // Per set, keys of the CIs this run will create -> seq of the observation.
    std::vector<std::unordered_map<std::string, int>> pending;
    // Per attribute, a type holding only that attribute (optional), to validate one value.
    std::map<std::string, model::CiType, std::less<>> single;
  };
  // The lookup key of identifier set `set` in `values` (none, with the reason in `why`, when
  // a value is missing or junk). Identifier sets hold scalar attributes only (ci_type.hpp).
  std::string Key(const std::vector<std::string>& set, const boost::json::object& values,
                  std::string& why) const;
  // The observed values usable as attributes: in the type, valid for it, not junk; the others
  // are noted in `d`. `record`: the matched CI, whose own values need no checking.
  boost::json::object Usable(const TypeIndex& index, const boost::json::object& values,
                             const Candidate* record, Decision& d) const;
  void Compare(const Candidate& ci, const boost::json::object& observed, Decision& decision) const;

  SourceConfig config_;
  JunkRules junk_;
  std::map<std::string, TypeIndex, std::less<>> types_;
  std::map<std::pair<CiId, std::string>, KnownFinding> open_;
  std::map<std::pair<CiId, std::string>, KnownFinding> ignored_;
  std::unordered_map<CiId, int> matched_;  // CI -> seq of the observation that matched it
};

// True when two attribute values mean the same (model::SameAttributeValue).
inline bool SameValue(const boost::json::value& a, const boost::json::value& b) {
  return model::SameAttributeValue(a, b);
}

}  // namespace cmdb::discovery
