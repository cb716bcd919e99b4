#pragma once
// Audit rules compiled from their JSON (model::AuditRule) and evaluated over an Estate.
//
// Compile checks everything a rule says against the catalogue and reports each bad part under
// its JSON pointer ("/check/all/1/regex/attr.hostname"): unknown operators and fields, an
// attribute no scoped CI type has, a regex RE2 refuses, min > max, nesting past the limits.
// Evaluation gives each (rule, CI) pass, fail or not_applicable, and error when the rule
// could not be decided for that CI (a reachability search past its bound); Explain says why
// in sentences. Compiled rules are immutable; an Evaluator is shared by evaluation threads.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "audit/estate.hpp"
#include "model/audit.hpp"
#include "model/error.hpp"

namespace cmdb::audit {

// What rules may name: the CI types with their attributes, and the relation types.
struct Catalogue {
  std::map<std::string, std::set<std::string>> ci_types;
  std::set<std::string> relation_types;
};

// Bounds on what a rule may ask for, so that a hostile rule is refused or bounded.
struct RuleLimits {
  int max_nesting = 16;                     // all / any / not levels
  std::size_t max_operators = 256;          // operator objects in one check
  std::size_t max_pattern = 4096;           // bytes of one regex
  std::int64_t max_regex_memory = 1 << 20;  // RE2's compiled-program budget
  int max_reach_depth = 20;
};

struct Node;  // a compiled operator

class CompiledRule {
 public:
  const model::AuditRule& rule() const { return rule_; }
  model::AuditSubject subject() const { return subject_; }
  // The attribute names the rule reads (scope, checks, unique keys, the message).
  const std::set<std::string>& attributes() const { return attributes_; }
  // The deepest relation walk of the rule (1 for `relations`, max_depth for `reaches`), and
  // the same per direction: following relations out of a CI, and into it.
  int reach() const { return std::max(reach_out_, reach_in_); }
  int reach_out() const { return reach_out_; }
  int reach_in() const { return reach_in_; }
  // Whether it reads discovery sightings (seen_within), when CIs changed (changed_within),
  // their tags (the `tags` field or a `tag` scope).
  bool uses_sightings() const { return uses_sightings_; }
  bool uses_changed() const { return uses_changed_; }
  bool uses_tags() const { return uses_tags_; }
  // The CI types of its scope (empty: every type).
  const std::vector<std::string>& scope_types() const { return types_; }
  // The attributes its `unique` checks key on.
  const std::set<std::string>& unique_attributes() const { return unique_attributes_; }
  ~CompiledRule();
  CompiledRule(const CompiledRule&) = delete;
  CompiledRule& operator=(const CompiledRule&) = delete;

 private:
  friend std::shared_ptr<const CompiledRule> Compile(const model::AuditRule&, const Catalogue&,
                                                     model::FieldErrors&, const RuleLimits&);
  friend class Evaluator;
  CompiledRule() = default;

  struct ScopeAttr {
    std::string name;
    std::vector<std::string> values;
  };
  model::AuditRule rule_;
  model::AuditSubject subject_ = model::AuditSubject::kCi;
  std::vector<std::string> types_, statuses_, owners_, tags_;
  std::vector<ScopeAttr> attrs_;
  std::string q_;  // lower-case name substring
  std::unique_ptr<Node> check_;
  std::set<std::string> attributes_;
  std::set<std::string> unique_attributes_;
  int reach_out_ = 0;
  int reach_in_ = 0;
  bool uses_sightings_ = false;
  bool uses_changed_ = false;
  bool uses_tags_ = false;
};

// Compiles `rule`; nullptr with `errors` filled when it is invalid.
std::shared_ptr<const CompiledRule> Compile(const model::AuditRule& rule,
                                            const Catalogue& catalogue, model::FieldErrors& errors,
                                            const RuleLimits& limits = {});

struct EvaluatorOptions {
  // CIs one `reaches` may visit for one CI before the CI's outcome is error.
  std::size_t max_visits = 200000;
};

// The rules over one estate. Building it prepares what spans CIs (the key counts of `unique`).
class Evaluator {
 public:
  Evaluator(const Estate& estate, std::vector<std::shared_ptr<const CompiledRule>> rules,
            EvaluatorOptions options = {});
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  const Estate& estate() const { return estate_; }
  std::size_t rule_count() const { return rules_.size(); }
  const CompiledRule& rule(std::size_t r) const { return *rules_[r]; }

  // Whether CI `ci` is in rule `r`'s scope (a discovery-source rule has no CI in scope).
  bool InScope(std::size_t r, std::uint32_t ci) const;
  // Whether CIs of this type and status may be in rule `r`'s scope (false: none is, so the
  // estate's bucket need not be looked at).
  bool ScopeMayHold(std::size_t r, std::uint16_t type, std::uint8_t status) const;
  // Rule `r` on CI `ci`: not_applicable out of scope. Never throws for one CI's sake: what
  // goes wrong is kError. With `why`, appends the reasons, one sentence each.
  model::AuditOutcome Evaluate(std::size_t r, std::uint32_t ci,
                               std::vector<std::string>* why = nullptr) const;
  // The rule's message for the CI ({{name}} and friends filled in).
  std::string Message(std::size_t r, std::uint32_t ci) const;

  // A discovery-source rule on source `s` of the estate: pass or fail for the source, and
  // the observations that count for and against compliance.
  struct SourceResult {
    model::AuditOutcome outcome = model::AuditOutcome::kNotApplicable;
    std::int64_t passed = 0;
    std::int64_t failed = 0;
    std::string message;
  };
  SourceResult EvaluateSource(std::size_t r, std::size_t s) const;

 private:
  struct Prepared;
  template <typename F>
  void ForEachInScope(std::size_t r, F&& f) const;
  model::AuditOutcome Eval(const Node& node, std::uint32_t ci, std::vector<std::string>* why,
                           std::vector<std::uint32_t>& scratch) const;

  const Estate& estate_;
  std::vector<std::shared_ptr<const CompiledRule>> rules_;
  EvaluatorOptions options_;
  std::unique_ptr<Prepared> prepared_;
};

// Adds to `unique` each attribute `rule` keys a `unique` check on, with the CI types of its
// scope (an empty list, once any rule keying on it has no type scope: every type).
void AddUniqueScope(const CompiledRule& rule,
                    std::map<std::string, std::vector<std::string>>& unique);

// Fills a message template: {{name}}, {{id}}, {{type}}, {{status}}, {{owner}},
// {{attr.<name>}}; unknown placeholders are left as written.
std::string FillMessage(const std::string& text, const EstateCi& ci);

}  // namespace cmdb::audit
