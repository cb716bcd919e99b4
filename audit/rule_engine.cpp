#include "audit/rule_engine.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <unordered_map>

#include <boost/json.hpp>
#include <re2/re2.h>

#include "model/json.hpp"
#include "model/parallel.hpp"

namespace cmdb::audit {

namespace json = boost::json;
using model::AuditOutcome;

namespace {

constexpr std::int64_t kDay = 24LL * 3600 * 1000000;

enum class Op {
  kAll,
  kAny,
  kNot,
  kPresent,
  kAbsent,
  kEq,
  kNe,
  kIn,
  kRegex,
  kRange,
  kLen,
  kChangedWithin,
  kSeenWithin,
  kRelations,
  kReaches,
  kUnique,
  kNoOpenDrift,
  kUnmatched,
};

struct OpName {
  std::string_view name;
  Op op;
};
constexpr std::array<OpName, 18> kOps{{
    {"all", Op::kAll},
    {"any", Op::kAny},
    {"not", Op::kNot},
    {"present", Op::kPresent},
    {"absent", Op::kAbsent},
    {"eq", Op::kEq},
    {"ne", Op::kNe},
    {"in", Op::kIn},
    {"regex", Op::kRegex},
    {"range", Op::kRange},
    {"len", Op::kLen},
    {"changed_within", Op::kChangedWithin},
    {"seen_within", Op::kSeenWithin},
    {"relations", Op::kRelations},
    {"reaches", Op::kReaches},
    {"unique", Op::kUnique},
    {"no_open_drift", Op::kNoOpenDrift},
    {"unmatched_discoveries", Op::kUnmatched},
}};

std::string OperatorList() {
  std::string out;
  for (const OpName& o : kOps) out += (out.empty() ? "" : ", ") + std::string(o.name);
  return out;
}

enum class FieldKind { kName, kType, kStatus, kOwner, kTags, kAttr };

struct Field {
  FieldKind kind = FieldKind::kName;
  std::string attr;
  std::string label;  // as the rule wrote it
};

// Normalisations of `unique` keys, applied in this order.
struct Normalize {
  bool trim = false;
  bool lower = false;
  bool alnum = false;  // keep letters and digits only (MAC spellings, serials with dashes)
};

}  // namespace

struct Node {
  Op op = Op::kAll;
  std::string pointer;  // where it is in the rule, for explanations
  std::vector<std::unique_ptr<Node>> children;
  Field field;
  json::value operand;                 // eq, ne
  std::vector<json::value> set;        // in
  std::unique_ptr<RE2> regex;          // regex
  std::optional<double> min, max;      // range, len, relations, unmatched
  std::int64_t days = 0;               // changed_within, seen_within, no_open_drift
  std::vector<std::string> rel_types;  // relations, reaches: empty = every type
  std::vector<std::string> far_types;  // relations, reaches (required there)
  std::vector<std::string> far_statuses;
  bool out = true, in = false;     // relations, reaches: the directions followed
  int depth = 1;                   // reaches
  std::vector<Field> key;          // unique
  Normalize normalize;             // unique
  std::optional<bool> authorized;  // no_open_drift
  std::string attribute;           // no_open_drift: one attribute only
};

CompiledRule::~CompiledRule() = default;

namespace {

class Compiler {
 public:
  Compiler(const Catalogue& catalogue, const RuleLimits& limits, model::FieldErrors& errors,
           std::vector<std::string> scoped_types)
      : catalogue_(catalogue), limits_(limits), errors_(errors), scoped_(std::move(scoped_types)) {}

  std::unique_ptr<Node> Compile(const json::value& v, const std::string& at, int nesting) {
    if (++operators_ > limits_.max_operators) {
      if (operators_ == limits_.max_operators + 1) {
        Add(at, "the check has more than " + std::to_string(limits_.max_operators) + " operators");
      }
      return nullptr;
    }
    if (nesting > limits_.max_nesting) {
      Add(at,
          "all / any / not nest deeper than " + std::to_string(limits_.max_nesting) + " levels");
      return nullptr;
    }
    const json::object* o = v.if_object();
    if (o == nullptr || o->size() != 1) {
      Add(at, "must be an object with exactly one operator: " + OperatorList());
      return nullptr;
    }
    const std::string_view name = o->begin()->key();
    const json::value& arg = o->begin()->value();
    auto found = std::find_if(kOps.begin(), kOps.end(),
                              [name](const OpName& op) { return op.name == name; });
    const std::string here = at + "/" + Escape(name);
    if (found == kOps.end()) {
      Add(here, "unknown operator '" + std::string(name) + "'; one of " + OperatorList());
      return nullptr;
    }
    auto node = std::make_unique<Node>();
    node->op = found->op;
    node->pointer = here;
    switch (node->op) {
      case Op::kAll:
      case Op::kAny: {
        const json::array* items = arg.if_array();
        if (items == nullptr || items->empty()) {
          Add(here, "must be a non-empty array of checks");
          return nullptr;
        }
        for (std::size_t i = 0; i < items->size(); ++i) {
          auto child = Compile((*items)[i], here + "/" + std::to_string(i), nesting + 1);
          if (child) node->children.push_back(std::move(child));
        }
        break;
      }
      case Op::kNot: {
        auto child = Compile(arg, here, nesting + 1);
        if (child) node->children.push_back(std::move(child));
        break;
      }
      case Op::kPresent:
      case Op::kAbsent:
        if (!arg.is_string()) {
          Add(here, "must name a field: name, status, owner, tags or attr.<name>");
        } else {
          node->field = ParseField(arg.get_string(), here);
        }
        break;
      case Op::kEq:
      case Op::kNe:
      case Op::kIn:
      case Op::kRegex:
      case Op::kRange:
      case Op::kLen:
        if (!FieldOperator(*node, arg, here)) return nullptr;
        break;
      case Op::kChangedWithin:
      case Op::kSeenWithin:
        node->days = Days(arg, here, /*required=*/true);
        uses_sightings_ = uses_sightings_ || node->op == Op::kSeenWithin;
        uses_changed_ = uses_changed_ || node->op == Op::kChangedWithin;
        break;
      case Op::kRelations:
      case Op::kReaches:
        GraphOperator(*node, arg, here);
        break;
      case Op::kUnique:
        UniqueOperator(*node, arg, here);
        break;
      case Op::kNoOpenDrift:
        DriftOperator(*node, arg, here);
        break;
      case Op::kUnmatched:
        if (nesting != 0 || !source_rule_) {
          Add(here,
              "only the whole check of a rule with scope {\"subject\": \"discovery_source\"}");
        }
        if (const json::object* a = arg.if_object()) {
          CheckKeys(*a, {"max"}, here);
          node->max = Bound(*a, "max", here);
        } else {
          Add(here, "must be an object, e.g. {\"max\": 0}");
        }
        if (!node->max) node->max = 0;
        break;
    }
    return node;
  }

  Field ParseField(std::string_view text, const std::string& at) {
    Field f;
    f.label = std::string(text);
    if (text == "name") {
      f.kind = FieldKind::kName;
    } else if (text == "type") {
      f.kind = FieldKind::kType;
    } else if (text == "status") {
      f.kind = FieldKind::kStatus;
    } else if (text == "owner") {
      f.kind = FieldKind::kOwner;
    } else if (text == "tags") {
      f.kind = FieldKind::kTags;
      uses_tags_ = true;
    } else if (text.rfind("attr.", 0) == 0 && text.size() > 5) {
      f.kind = FieldKind::kAttr;
      f.attr = std::string(text.substr(5));
      CheckAttribute(f.attr, at);
    } else {
      Add(at, "unknown field '" + std::string(text) +
                  "'; one of name, type, status, owner, tags, attr.<name>");
    }
    return f;
  }

  // An attribute must be known to at least one scoped type (every type without a type scope).
  void CheckAttribute(const std::string& attr, const std::string& at) {
    attributes_.insert(attr);
    if (source_rule_) {
      Add(at, "a discovery-source rule reads no CI attributes");
      return;
    }
    bool known = false;
    if (scoped_.empty()) {
      for (const auto& [type, attrs] : catalogue_.ci_types) known = known || attrs.count(attr) > 0;
    } else {
      for (const std::string& type : scoped_) {
        auto it = catalogue_.ci_types.find(type);
        known = known || (it != catalogue_.ci_types.end() && it->second.count(attr) > 0);
      }
    }
    if (!known) {
      Add(at, "attribute '" + attr + "' is unknown to " +
                  (scoped_.empty() ? std::string("every CI type")
                                   : "every type of the scope (" + Join(scoped_) + ")"));
    }
  }

  std::set<std::string> attributes_;
  std::set<std::string> unique_attributes_;
  int reach_out_ = 0;
  int reach_in_ = 0;
  bool source_rule_ = false;
  bool uses_sightings_ = false;
  bool uses_changed_ = false;
  bool uses_tags_ = false;

 private:
  static std::string Escape(std::string_view token) {
    std::string out;
    for (char c : token) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    return out;
  }
  static std::string Join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
  }
  void Add(const std::string& at, const std::string& message) { errors_.Add(at, message); }

  void CheckKeys(const json::object& o, std::initializer_list<std::string_view> allowed,
                 const std::string& at) {
    for (const auto& [k, v] : o) {
      (void)v;
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string names;
        for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
        Add(at + "/" + Escape(k), "unknown key; allowed: " + names);
      }
    }
  }

  std::optional<double> Bound(const json::object& o, std::string_view key, const std::string& at) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) {
      Add(at + "/" + std::string(key), "must be a number");
      return std::nullopt;
    }
    return v->to_number<double>();
  }

  void MinMax(Node& node, const json::object& o, const std::string& at, bool counts) {
    node.min = Bound(o, "min", at);
    node.max = Bound(o, "max", at);
    for (const auto& [bound, name] : {std::pair{node.min, "min"}, std::pair{node.max, "max"}}) {
      if (counts && bound && (*bound < 0 || *bound != std::floor(*bound))) {
        Add(at + "/" + name, "must be a whole number of at least 0");
      }
    }
    if (node.min && node.max && *node.min > *node.max) {
      Add(at + "/min", "min is greater than max");
    }
  }

  std::int64_t Days(const json::value& arg, const std::string& at, bool required) {
    const json::object* o = arg.if_object();
    const json::value* d = o != nullptr ? o->if_contains("days") : nullptr;
    if (o != nullptr) CheckKeys(*o, {"days"}, at);
    if (d == nullptr) {
      if (required) Add(at + "/days", "required: a whole number of days, 0 to 36500");
      return 0;
    }
    if (!d->is_int64() || d->get_int64() < 0 || d->get_int64() > 36500) {
      Add(at + "/days", "must be a whole number of days, 0 to 36500");
      return 0;
    }
    return d->get_int64();
  }

  std::vector<std::string> Names(const json::object& o, std::string_view key, const std::string& at,
                                 bool relation_types) {
    std::vector<std::string> out;
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return out;
    std::vector<const json::value*> items;
    if (v->is_array()) {
      for (const auto& item : v->get_array()) items.push_back(&item);
    } else {
      items.push_back(v);
    }
    const std::string here = at + "/" + std::string(key);
    for (const json::value* item : items) {
      if (!item->is_string()) {
        Add(here, "must be a name or a list of names");
        continue;
      }
      std::string name(item->get_string());
      if (relation_types && catalogue_.relation_types.count(name) == 0) {
        Add(here, "unknown relation type '" + name + "'");
      } else if (!relation_types && key != "to_status" && catalogue_.ci_types.count(name) == 0) {
        Add(here, "unknown CI type '" + name + "'");
      } else if (key == "to_status" && !model::IsValidCiStatus(name)) {
        Add(here, "'" + name + "' is not a status: planned, active, maintenance, retired");
      }
      out.push_back(std::move(name));
    }
    return out;
  }

  void GraphOperator(Node& node, const json::value& arg, const std::string& at) {
    const json::object* o = arg.if_object();
    if (o == nullptr) {
      Add(at, "must be an object");
      return;
    }
    const bool reaches = node.op == Op::kReaches;
    if (reaches) {
      CheckKeys(*o, {"via", "to_type", "to_status", "max_depth", "direction"}, at);
      node.rel_types = Names(*o, "via", at, true);
    } else {
      CheckKeys(*o, {"type", "direction", "to_type", "to_status", "min", "max"}, at);
      node.rel_types = Names(*o, "type", at, true);
      MinMax(node, *o, at, /*counts=*/true);
      if (!node.min && !node.max) node.min = 1;
    }
    node.far_types = Names(*o, "to_type", at, false);
    node.far_statuses = Names(*o, "to_status", at, false);
    if (reaches && node.far_types.empty()) {
      Add(at + "/to_type", "required: the CI type (or types) to reach");
    }
    if (const json::value* d = o->if_contains("direction")) {
      const std::string_view text = d->is_string() ? std::string_view(d->get_string()) : "";
      if (text == "out") {
        node.out = true;
        node.in = false;
      } else if (text == "in") {
        node.out = false;
        node.in = true;
      } else if (text == "both" && !reaches) {
        node.out = node.in = true;
      } else {
        Add(at + "/direction", reaches ? "must be out or in" : "must be out, in or both");
      }
    }
    node.depth = 1;
    if (reaches) {
      node.depth = 5;
      if (const json::value* d = o->if_contains("max_depth")) {
        if (!d->is_int64() || d->get_int64() < 1 || d->get_int64() > limits_.max_reach_depth) {
          Add(at + "/max_depth",
              "must be a whole number from 1 to " + std::to_string(limits_.max_reach_depth));
        } else {
          node.depth = static_cast<int>(d->get_int64());
        }
      }
    }
    if (node.out) reach_out_ = std::max(reach_out_, node.depth);
    if (node.in) reach_in_ = std::max(reach_in_, node.depth);
  }

  void UniqueOperator(Node& node, const json::value& arg, const std::string& at) {
    const json::object* o = arg.if_object();
    if (o == nullptr) {
      Add(at,
          "must be an object, e.g. {\"key\": [\"attr.serial\"], \"normalize\": \"trim_lower\"}");
      return;
    }
    CheckKeys(*o, {"key", "normalize"}, at);
    const json::value* key = o->if_contains("key");
    const json::array* parts = key != nullptr ? key->if_array() : nullptr;
    if (parts == nullptr || parts->empty() || parts->size() > 8) {
      Add(at + "/key", "required: 1 to 8 fields, e.g. [\"attr.serial\"]");
    } else {
      for (std::size_t i = 0; i < parts->size(); ++i) {
        const std::string here = at + "/key/" + std::to_string(i);
        if (!(*parts)[i].is_string()) {
          Add(here, "must name a field");
          continue;
        }
        node.key.push_back(ParseField((*parts)[i].get_string(), here));
        if (node.key.back().kind == FieldKind::kAttr)
          unique_attributes_.insert(node.key.back().attr);
      }
    }
    if (const json::value* n = o->if_contains("normalize")) {
      std::vector<std::string_view> steps;
      if (n->is_string()) {
        std::string_view s = n->get_string();
        if (s == "trim_lower") {
          steps = {"trim", "lower"};
        } else if (s != "none") {
          steps = {s};
        }
      } else if (n->is_array()) {
        for (const auto& step : n->get_array()) {
          steps.push_back(step.is_string() ? std::string_view(step.get_string()) : "?");
        }
      } else {
        steps = {"?"};
      }
      for (std::string_view step : steps) {
        if (step == "trim") {
          node.normalize.trim = true;
        } else if (step == "lower") {
          node.normalize.lower = true;
        } else if (step == "alnum") {
          node.normalize.alnum = true;
        } else {
          Add(at + "/normalize", "must be none, trim_lower, or a list of trim, lower and alnum");
          break;
        }
      }
    }
  }

  void DriftOperator(Node& node, const json::value& arg, const std::string& at) {
    const json::object* o = arg.if_object();
    if (o == nullptr) {
      Add(at, "must be an object, e.g. {\"authorized\": false, \"older_than_days\": 7}");
      return;
    }
    CheckKeys(*o, {"authorized", "older_than_days", "attribute"}, at);
    if (const json::value* a = o->if_contains("authorized")) {
      if (!a->is_bool()) {
        Add(at + "/authorized", "must be true or false");
      } else {
        node.authorized = a->get_bool();
      }
    }
    if (const json::value* d = o->if_contains("older_than_days")) {
      if (!d->is_int64() || d->get_int64() < 0 || d->get_int64() > 36500) {
        Add(at + "/older_than_days", "must be a whole number of days, 0 to 36500");
      } else {
        node.days = d->get_int64();
      }
    }
    if (const json::value* a = o->if_contains("attribute")) {
      if (!a->is_string() || a->get_string().empty()) {
        Add(at + "/attribute", "must be an attribute name");
      } else {
        node.attribute = std::string(a->get_string());
      }
    }
  }

  // {"<field>": operand}: exactly one field.
  bool FieldOperator(Node& node, const json::value& arg, const std::string& at) {
    const json::object* o = arg.if_object();
    if (o == nullptr || o->size() != 1) {
      Add(at, "must be an object with one field, e.g. {\"attr.env\": \"prod\"}");
      return false;
    }
    const auto& [name, operand] = *o->begin();
    const std::string here = at + "/" + Escape(name);
    node.field = ParseField(name, here);
    switch (node.op) {
      case Op::kEq:
      case Op::kNe:
        node.operand = operand;
        break;
      case Op::kIn:
        if (!operand.is_array() || operand.get_array().empty() ||
            operand.get_array().size() > 10000) {
          Add(here, "must be an array of 1 to 10000 values");
        } else {
          node.set.assign(operand.get_array().begin(), operand.get_array().end());
        }
        break;
      case Op::kRegex: {
        if (!operand.is_string()) {
          Add(here, "must be a regular expression (RE2 syntax)");
          break;
        }
        const std::string_view pattern = operand.get_string();
        if (pattern.size() > limits_.max_pattern) {
          Add(here, "the pattern is longer than " + std::to_string(limits_.max_pattern) + " bytes");
          break;
        }
        RE2::Options options;
        options.set_log_errors(false);
        options.set_max_mem(limits_.max_regex_memory);
        auto re = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
        if (!re->ok()) {
          Add(here, "the pattern does not compile: " + re->error());
        } else {
          node.regex = std::move(re);
        }
        break;
      }
      case Op::kRange:
      case Op::kLen:
        if (!operand.is_object()) {
          Add(here, "must be an object {\"min\": .., \"max\": ..}");
        } else {
          CheckKeys(operand.get_object(), {"min", "max"}, here);
          MinMax(node, operand.get_object(), here, node.op == Op::kLen);
          if (!node.min && !node.max) Add(here, "needs min, max or both");
        }
        break;
      default:
        break;
    }
    return true;
  }

  const Catalogue& catalogue_;
  const RuleLimits& limits_;
  model::FieldErrors& errors_;
  std::vector<std::string> scoped_;
  std::size_t operators_ = 0;
};

std::vector<std::string> ScopeList(const json::object& scope, std::string_view key,
                                   model::FieldErrors& errors) {
  std::vector<std::string> out;
  const json::value* v = scope.if_contains(key);
  if (v == nullptr) return out;
  const std::string at = "/scope/" + std::string(key);
  auto take = [&](const json::value& item) {
    if (item.is_string()) {
      out.emplace_back(item.get_string());
    } else if (item.is_number() || item.is_bool()) {
      out.push_back(model::ToJsonText(item));
    } else {
      errors.Add(at, "must be a value or a list of values");
    }
  };
  if (v->is_array()) {
    if (v->get_array().empty() || v->get_array().size() > 10000) {
      errors.Add(at, "a list of 1 to 10000 values");
    }
    for (const auto& item : v->get_array()) take(item);
  } else {
    take(*v);
  }
  return out;
}

}  // namespace

std::shared_ptr<const CompiledRule> Compile(const model::AuditRule& rule,
                                            const Catalogue& catalogue, model::FieldErrors& errors,
                                            const RuleLimits& limits) {
  const std::size_t before = errors.size();
  std::shared_ptr<CompiledRule> out(new CompiledRule());
  out->rule_ = rule;
  const json::object& scope = rule.scope;
  for (const auto& [key, value] : scope) {
    (void)value;
    const bool known = key == "type" || key == "status" || key == "owner" || key == "tag" ||
                       key == "q" || key == "subject" ||
                       (key.size() > 5 && key.starts_with("attr."));
    if (!known) {
      errors.Add("/scope/" + std::string(key),
                 "unknown filter; the CI list's: type, status, owner, tag, q, attr.<name> "
                 "(and subject)");
    }
  }
  if (const json::value* subject = scope.if_contains("subject")) {
    std::optional<model::AuditSubject> s;
    if (subject->is_string()) s = model::ValueIn(model::kAuditSubjectNames, subject->get_string());
    if (!s) {
      errors.Add("/scope/subject", "must be ci or discovery_source");
    } else {
      out->subject_ = *s;
    }
  }
  out->types_ = ScopeList(scope, "type", errors);
  for (const std::string& t : out->types_) {
    if (catalogue.ci_types.count(t) == 0) errors.Add("/scope/type", "unknown CI type '" + t + "'");
  }
  out->statuses_ = ScopeList(scope, "status", errors);
  for (const std::string& s : out->statuses_) {
    if (!model::IsValidCiStatus(s)) {
      errors.Add("/scope/status",
                 "'" + s + "' is not a status: planned, active, maintenance, retired");
    }
  }
  out->owners_ = ScopeList(scope, "owner", errors);
  out->tags_ = ScopeList(scope, "tag", errors);
  if (const json::value* q = scope.if_contains("q")) {
    if (!q->is_string()) {
      errors.Add("/scope/q", "must be a string");
    } else {
      for (char c : q->get_string()) {
        out->q_ += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      }
    }
  }
  Compiler compiler(catalogue, limits, errors, out->types_);
  compiler.source_rule_ = out->subject_ == model::AuditSubject::kDiscoverySource;
  if (compiler.source_rule_ && scope.size() > 1) {
    errors.Add("/scope", "a discovery-source rule takes no CI filters");
  }
  for (const auto& [key, value] : scope) {
    if (key.size() > 5 && key.starts_with("attr.")) {
      CompiledRule::ScopeAttr a;
      a.name = std::string(key.substr(5));
      compiler.CheckAttribute(a.name, "/scope/" + std::string(key));
      a.values = ScopeList(scope, key, errors);
      out->attrs_.push_back(std::move(a));
      (void)value;
    }
  }
  if (!rule.check.is_null()) out->check_ = compiler.Compile(rule.check, "/check", 0);
  if (compiler.source_rule_ && out->check_ && out->check_->op != Op::kUnmatched) {
    errors.Add("/check",
               "a discovery-source rule checks {\"unmatched_discoveries\": {\"max\": N}}");
  }
  // The message's placeholders read attributes too.
  for (std::size_t at = rule.message.find("{{attr."); at != std::string::npos;
       at = rule.message.find("{{attr.", at + 1)) {
    const std::size_t end = rule.message.find("}}", at);
    if (end == std::string::npos) break;
    compiler.attributes_.insert(rule.message.substr(at + 7, end - at - 7));
  }
  out->attributes_ = std::move(compiler.attributes_);
  out->reach_out_ = compiler.reach_out_;
  out->reach_in_ = compiler.reach_in_;
  out->unique_attributes_ = std::move(compiler.unique_attributes_);
  out->uses_sightings_ = compiler.uses_sightings_;
  out->uses_changed_ = compiler.uses_changed_;
  out->uses_tags_ = compiler.uses_tags_ || !out->tags_.empty();
  if (errors.size() != before || !out->check_) return nullptr;
  return out;
}

// --- evaluation ---

namespace {

// A field's value on a CI: a pointer into the CI's attributes, or `scratch` holding it.
const json::value* FieldValue(const Field& f, const EstateCi& ci, json::value& scratch) {
  switch (f.kind) {
    case FieldKind::kName:
      scratch = json::string(ci.name);
      return &scratch;
    case FieldKind::kType:
      scratch = json::string(ci.type);
      return &scratch;
    case FieldKind::kStatus:
      scratch = json::string(ci.status);
      return &scratch;
    case FieldKind::kOwner:
      if (!ci.owner) return nullptr;
      scratch = json::string(*ci.owner);
      return &scratch;
    case FieldKind::kTags: {
      json::array tags;
      for (const auto& t : ci.tags) tags.emplace_back(t);
      scratch = std::move(tags);
      return &scratch;
    }
    case FieldKind::kAttr: {
      const json::value* v = ci.attributes.if_contains(f.attr);
      return v != nullptr && !v->is_null() ? v : nullptr;
    }
  }
  return nullptr;
}

bool IsPresent(const json::value* v) {
  if (v == nullptr || v->is_null()) return false;
  if (v->is_string()) return !v->get_string().empty();
  if (v->is_array()) return !v->get_array().empty();
  if (v->is_object()) return !v->get_object().empty();
  return true;
}

bool JsonEqual(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  if (a.is_array() && b.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!JsonEqual(x[i], y[i])) return false;
    }
    return true;
  }
  return a == b;
}

std::string Show(const json::value* v) {
  if (v == nullptr) return "absent";
  std::string text = model::ToJsonText(*v);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

bool Within(double value, const Node& node) {
  return (!node.min || value >= *node.min) && (!node.max || value <= *node.max);
}

std::string Bounds(const Node& node) {
  auto num = [](double d) {
    return d == std::floor(d) && std::abs(d) < 1e15 ? std::to_string(static_cast<long long>(d))
                                                    : std::to_string(d);
  };
  if (node.min && node.max) return "from " + num(*node.min) + " to " + num(*node.max);
  if (node.min) return "at least " + num(*node.min);
  return "at most " + num(node.max.value_or(0));
}

// Each scalar of `v`: the value, or every element of a list.
template <typename F>
bool EveryScalar(const json::value& v, F&& f) {
  if (v.is_array()) {
    for (const auto& item : v.get_array()) {
      if (!f(item)) return false;
    }
    return true;
  }
  return f(v);
}

std::string NormalizeText(std::string_view text, const Normalize& n) {
  std::string_view s = text;
  if (n.trim) {
    const auto begin = s.find_first_not_of(" \t\r\n");
    if (begin == std::string_view::npos) return {};
    s = s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
  }
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (n.alnum && !std::isalnum(static_cast<unsigned char>(c))) continue;
    out += n.lower && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

std::string KeyPart(const json::value& v, const Normalize& n) {
  return v.is_string() ? NormalizeText(v.get_string(), n) : model::ToJsonText(v);
}

// The keys CI `ci` has under a `unique` node: one per element of a one-field list key, else
// one joined key; none when a part is absent (or normalises to nothing).
std::vector<std::string> UniqueKeys(const Node& node, const EstateCi& ci) {
  std::vector<std::string> keys;
  json::value scratch;
  if (node.key.size() == 1) {
    const json::value* v = FieldValue(node.key[0], ci, scratch);
    if (!IsPresent(v)) return keys;
    EveryScalar(*v, [&](const json::value& item) {
      std::string k = KeyPart(item, node.normalize);
      if (!k.empty() && std::find(keys.begin(), keys.end(), k) == keys.end()) {
        keys.push_back(std::move(k));
      }
      return true;
    });
    return keys;
  }
  std::string joined;
  for (const Field& f : node.key) {
    const json::value* v = FieldValue(f, ci, scratch);
    if (!IsPresent(v)) return keys;
    std::string part = v->is_array() ? model::ToJsonText(*v) : KeyPart(*v, node.normalize);
    if (part.empty()) return keys;
    joined += part;
    joined += '\x1f';
  }
  keys.push_back(std::move(joined));
  return keys;
}

bool ScopeValueMatches(const json::value& v, const std::vector<std::string>& wanted) {
  return !EveryScalar(v, [&](const json::value& item) {
    const std::string text =
        item.is_string() ? std::string(item.get_string()) : model::ToJsonText(item);
    return std::find(wanted.begin(), wanted.end(), text) == wanted.end();
  });
}

}  // namespace

// Per node, what spans the estate: the masks of type names resolved to the estate's ids, and
// the key counts of `unique`.
struct Evaluator::Prepared {
  struct Masks {
    std::vector<char> rel_types;   // by estate relation type id; empty: every type
    std::vector<char> far_types;   // by estate CI type id; empty: every type
    std::vector<char> far_status;  // by estate status id; empty: every status
  };
  std::unordered_map<const Node*, Masks> masks;
  // unique: the (key, CI) pairs of the rule's scope sorted by the key's hash, then the key
  // (the CIs sharing a key are neighbours; integers compared rather than strings), and per CI
  // whether it has no key (0), only keys of its own (1) or shares one (2).
  struct KeyOf {
    std::uint64_t hash = 0;
    std::string key;
    std::uint32_t ci = 0;
    bool operator<(const KeyOf& o) const { return hash != o.hash ? hash < o.hash : key < o.key; }
  };
  struct Unique {
    std::vector<KeyOf> pairs;
    std::vector<std::uint8_t> state;
  };
  std::unordered_map<const Node*, Unique> uniques;
  // Per rule: scope masks.
  struct Scope {
    std::vector<char> types;     // empty: every type
    std::vector<char> statuses;  // empty: every status
  };
  std::vector<Scope> scopes;
};

namespace {

std::vector<char> Mask(const std::vector<std::string>& names,
                       const std::vector<std::string>& universe) {
  if (names.empty()) return {};
  std::vector<char> mask(universe.size(), 0);
  for (std::size_t i = 0; i < universe.size(); ++i) {
    mask[i] = std::find(names.begin(), names.end(), universe[i]) != names.end() ? 1 : 0;
  }
  return mask;
}

bool Allows(const std::vector<char>& mask, std::size_t id) { return mask.empty() || mask[id] != 0; }

template <typename F>
void ForEachNode(const Node& node, F&& f) {
  f(node);
  for (const auto& child : node.children) ForEachNode(*child, f);
}

}  // namespace

Evaluator::Evaluator(const Estate& estate, std::vector<std::shared_ptr<const CompiledRule>> rules,
                     EvaluatorOptions options)
    : estate_(estate),
      rules_(std::move(rules)),
      options_(options),
      prepared_(std::make_unique<Prepared>()) {
  prepared_->scopes.resize(rules_.size());
  for (std::size_t r = 0; r < rules_.size(); ++r) {
    const CompiledRule& rule = *rules_[r];
    prepared_->scopes[r].types = Mask(rule.types_, estate_.ci_types());
    prepared_->scopes[r].statuses = Mask(rule.statuses_, estate_.statuses());
    if (!rule.check_) continue;
    ForEachNode(*rule.check_, [&](const Node& node) {
      if (node.op == Op::kRelations || node.op == Op::kReaches) {
        Prepared::Masks m;
        m.rel_types = Mask(node.rel_types, estate_.relation_types());
        // A relation type the estate does not hold: nothing of it can match.
        if (!node.rel_types.empty() && m.rel_types.empty()) m.rel_types.assign(1, 0);
        m.far_types = Mask(node.far_types, estate_.ci_types());
        m.far_status = Mask(node.far_statuses, estate_.statuses());
        prepared_->masks.emplace(&node, std::move(m));
      }
    });
  }
  // Key counts of every `unique` node over its rule's scope, the nodes on all cores.
  std::vector<std::pair<std::size_t, const Node*>> uniques;
  for (std::size_t r = 0; r < rules_.size(); ++r) {
    const CompiledRule& rule = *rules_[r];
    if (!rule.check_) continue;
    ForEachNode(*rule.check_, [&](const Node& node) {
      if (node.op == Op::kUnique) {
        uniques.emplace_back(r, &node);
        prepared_->uniques[&node];  // created here: the threads below only fill them
      }
    });
  }
  // One node's keys: built over its rule's scope, sorted, and each CI's state set.
  auto prepare_unique = [&](std::size_t k) {
    const std::size_t r = uniques[k].first;  // not a structured binding: captured below
    const Node* node = uniques[k].second;
    Prepared::Unique& u = prepared_->uniques.at(node);
    u.state.assign(estate_.size(), 0);
    ForEachInScope(r, [&](std::uint32_t i) {
      for (std::string& key : UniqueKeys(*node, estate_.ci(i))) {
        const std::uint64_t hash = std::hash<std::string>{}(key);
        u.pairs.push_back({hash, std::move(key), i});
        u.state[i] = 1;
      }
    });
    std::sort(u.pairs.begin(), u.pairs.end());
    for (std::size_t a = 0; a < u.pairs.size();) {
      std::size_t b = a + 1;
      while (b < u.pairs.size() && u.pairs[b].hash == u.pairs[a].hash &&
             u.pairs[b].key == u.pairs[a].key) {
        ++b;
      }
      if (b - a > 1) {
        for (std::size_t c = a; c < b; ++c) u.state[u.pairs[c].ci] = 2;
      }
      a = b;
    }
  };
  model::ParallelChunks(uniques.size(), 1, prepare_unique, {});
}

bool Evaluator::ScopeMayHold(std::size_t r, std::uint16_t type, std::uint8_t status) const {
  if (rules_[r]->subject_ != model::AuditSubject::kCi) return false;
  const Prepared::Scope& scope = prepared_->scopes[r];
  return (scope.types.empty() || scope.types[type] != 0) &&
         (scope.statuses.empty() || scope.statuses[status] != 0);
}

template <typename F>
void Evaluator::ForEachInScope(std::size_t r, F&& f) const {
  for (std::size_t t = 0; t < estate_.ci_types().size(); ++t) {
    for (std::size_t s = 0; s < estate_.statuses().size(); ++s) {
      const auto type = static_cast<std::uint16_t>(t);
      const auto status = static_cast<std::uint8_t>(s);
      if (!ScopeMayHold(r, type, status)) continue;
      for (const std::uint32_t i : estate_.Bucket(type, status)) {
        if (InScope(r, i)) f(i);
      }
    }
  }
}

Evaluator::~Evaluator() = default;

bool Evaluator::InScope(std::size_t r, std::uint32_t i) const {
  const CompiledRule& rule = *rules_[r];
  if (rule.subject_ != model::AuditSubject::kCi) return false;
  const Prepared::Scope& scope = prepared_->scopes[r];
  if (!scope.types.empty() && scope.types[estate_.type_id(i)] == 0) return false;
  if (!scope.statuses.empty() && scope.statuses[estate_.status_id(i)] == 0) return false;
  const EstateCi& ci = estate_.ci(i);
  if (!rule.owners_.empty() && (!ci.owner || std::find(rule.owners_.begin(), rule.owners_.end(),
                                                       *ci.owner) == rule.owners_.end())) {
    return false;
  }
  for (const std::string& tag : rule.tags_) {
    if (std::find(ci.tags.begin(), ci.tags.end(), tag) == ci.tags.end()) return false;
  }
  if (!rule.q_.empty()) {
    std::string lower = ci.name;
    for (char& c : lower) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower.find(rule.q_) == std::string::npos) return false;
  }
  for (const auto& a : rule.attrs_) {
    const json::value* v = ci.attributes.if_contains(a.name);
    if (v == nullptr || v->is_null() || !ScopeValueMatches(*v, a.values)) return false;
  }
  return true;
}

AuditOutcome Evaluator::Evaluate(std::size_t r, std::uint32_t ci,
                                 std::vector<std::string>* why) const {
  if (!InScope(r, ci)) {
    if (why != nullptr) why->push_back("the CI is not in the rule's scope");
    return AuditOutcome::kNotApplicable;
  }
  thread_local std::vector<std::uint32_t> scratch;
  try {
    return Eval(*rules_[r]->check_, ci, why, scratch);
  } catch (const std::exception& e) {
    if (why != nullptr) why->push_back(std::string("the rule could not be evaluated: ") + e.what());
    return AuditOutcome::kError;
  }
}

AuditOutcome Evaluator::Eval(const Node& node, std::uint32_t i, std::vector<std::string>* why,
                             std::vector<std::uint32_t>& scratch) const {
  const EstateCi& ci = estate_.ci(i);
  // Explanations are built only when asked for (a run evaluates millions without them).
  auto say = [&](std::string text) { why->push_back(node.pointer + ": " + std::move(text)); };
  auto verdict = [](bool ok) { return ok ? AuditOutcome::kPass : AuditOutcome::kFail; };
  const std::int64_t now = estate_.at().micros;
  switch (node.op) {
    case Op::kAll:
    case Op::kAny: {
      bool any_pass = false, any_fail = false, any_error = false;
      for (const auto& child : node.children) {
        const AuditOutcome o = Eval(*child, i, why, scratch);
        any_pass = any_pass || o == AuditOutcome::kPass;
        any_fail = any_fail || o == AuditOutcome::kFail;
        any_error = any_error || o == AuditOutcome::kError;
      }
      if (any_error) return AuditOutcome::kError;
      if (node.op == Op::kAll) {
        if (any_fail) return AuditOutcome::kFail;
        return any_pass ? AuditOutcome::kPass : AuditOutcome::kNotApplicable;
      }
      if (any_pass) return AuditOutcome::kPass;
      return any_fail ? AuditOutcome::kFail : AuditOutcome::kNotApplicable;
    }
    case Op::kNot: {
      const AuditOutcome o = Eval(*node.children[0], i, why, scratch);
      if (o == AuditOutcome::kPass) return AuditOutcome::kFail;
      if (o == AuditOutcome::kFail) return AuditOutcome::kPass;
      return o;
    }
    case Op::kPresent:
    case Op::kAbsent: {
      bool present = false;
      switch (node.field.kind) {
        case FieldKind::kName:
          present = !ci.name.empty();
          break;
        case FieldKind::kType:
          present = !ci.type.empty();
          break;
        case FieldKind::kStatus:
          present = !ci.status.empty();
          break;
        case FieldKind::kOwner:
          present = ci.owner && !ci.owner->empty();
          break;
        case FieldKind::kTags:
          present = !ci.tags.empty();
          break;
        case FieldKind::kAttr:
          present = IsPresent(ci.attributes.if_contains(node.field.attr));
          break;
      }
      if (why != nullptr) say(node.field.label + (present ? " is present" : " is absent"));
      return verdict(present == (node.op == Op::kPresent));
    }
    case Op::kEq:
    case Op::kNe: {
      json::value tmp;
      const json::value* v = FieldValue(node.field, ci, tmp);
      if (!IsPresent(v)) {
        if (why != nullptr) say(node.field.label + " is absent");
        return node.op == Op::kNe ? AuditOutcome::kPass : AuditOutcome::kNotApplicable;
      }
      const bool equal = JsonEqual(*v, node.operand);
      if (why != nullptr)
        say(node.field.label + " is " + Show(v) + (equal ? ", equal to " : ", not equal to ") +
            Show(&node.operand));
      return verdict(equal == (node.op == Op::kEq));
    }
    case Op::kIn:
    case Op::kRegex:
    case Op::kRange:
    case Op::kLen: {
      json::value tmp;
      const json::value* v = FieldValue(node.field, ci, tmp);
      if (!IsPresent(v)) {
        if (why != nullptr) say(node.field.label + " is absent: nothing to check");
        return AuditOutcome::kNotApplicable;
      }
      bool ok = false;
      std::string what;
      if (node.op == Op::kIn) {
        ok = EveryScalar(*v, [&](const json::value& item) {
          return std::any_of(node.set.begin(), node.set.end(),
                             [&](const json::value& s) { return JsonEqual(item, s); });
        });
        if (why != nullptr)
          what = ok ? "is among the allowed values" : "is not among the allowed values";
      } else if (node.op == Op::kRegex) {
        ok = EveryScalar(*v, [&](const json::value& item) {
          if (!item.is_string()) return false;
          const json::string& s = item.get_string();
          return RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *node.regex);
        });
        if (why != nullptr) what = (ok ? "matches " : "does not match ") + node.regex->pattern();
      } else if (node.op == Op::kRange) {
        ok = EveryScalar(*v, [&](const json::value& item) {
          return item.is_number() && Within(item.to_number<double>(), node);
        });
        if (why != nullptr) what = (ok ? "is " : "is not a number ") + Bounds(node);
      } else {
        const double length = v->is_array()    ? static_cast<double>(v->get_array().size())
                              : v->is_string() ? static_cast<double>(CodePoints(v->get_string()))
                                               : -1;
        ok = length >= 0 && Within(length, node);
        if (why != nullptr) {
          what = "has length " + std::to_string(static_cast<long long>(length)) + ", wanted " +
                 Bounds(node);
        }
      }
      if (why != nullptr) say(node.field.label + " " + Show(v) + " " + what);
      return verdict(ok);
    }
    case Op::kChangedWithin: {
      const std::int64_t age = now - ci.changed_at.micros;
      const bool ok = age <= node.days * kDay;
      if (why != nullptr)
        say("last changed " + model::FormatTimestamp(ci.changed_at) +
            (ok ? ", within " : ", not within ") + std::to_string(node.days) + " days");
      return verdict(ok);
    }
    case Op::kSeenWithin: {
      if (!ci.seen_at) {
        if (ci.seen_later) {
          if (why != nullptr)
            say("seen by discovery only after the instant evaluated; earlier sightings are not "
                "kept");
          return AuditOutcome::kNotApplicable;
        }
        if (why != nullptr) say("never seen by discovery");
        return AuditOutcome::kFail;
      }
      const bool ok = now - ci.seen_at->micros <= node.days * kDay;
      if (why != nullptr)
        say("last seen by discovery " + model::FormatTimestamp(*ci.seen_at) +
            (ok ? ", within " : ", not within ") + std::to_string(node.days) + " days");
      return verdict(ok);
    }
    case Op::kRelations: {
      const Prepared::Masks& m = prepared_->masks.at(&node);
      std::int64_t count = 0;
      auto tally = [&](std::span<const Estate::Link> links) {
        for (const Estate::Link& l : links) {
          if (Allows(m.rel_types, l.type) && Allows(m.far_types, estate_.type_id(l.ci)) &&
              Allows(m.far_status, estate_.status_id(l.ci))) {
            ++count;
          }
        }
      };
      if (node.out) tally(estate_.Out(i));
      if (node.in) tally(estate_.In(i));
      const bool ok = Within(static_cast<double>(count), node);
      if (why != nullptr)
        say(std::to_string(count) + " matching relation" + (count == 1 ? "" : "s") + ", wanted " +
            Bounds(node));
      return verdict(ok);
    }
    case Op::kReaches: {
      const Prepared::Masks& m = prepared_->masks.at(&node);
      // Breadth-first over the chosen relation types; `scratch` holds the visited CIs.
      thread_local std::vector<std::uint32_t> marks;
      thread_local std::uint32_t epoch = 0;
      if (marks.size() < estate_.size() || ++epoch == 0) {
        marks.assign(std::max(marks.size(), estate_.size()), 0);
        epoch = 1;
      }
      scratch.clear();
      scratch.push_back(i);
      marks[i] = epoch;
      std::size_t level_begin = 0;
      for (int depth = 1; depth <= node.depth; ++depth) {
        const std::size_t level_end = scratch.size();
        for (std::size_t k = level_begin; k < level_end; ++k) {
          const auto links = node.out ? estate_.Out(scratch[k]) : estate_.In(scratch[k]);
          for (const Estate::Link& l : links) {
            if (!Allows(m.rel_types, l.type)) continue;
            if (marks[l.ci] == epoch) continue;
            marks[l.ci] = epoch;
            if (Allows(m.far_types, estate_.type_id(l.ci)) &&
                Allows(m.far_status, estate_.status_id(l.ci))) {
              if (why != nullptr)
                say("reaches " + estate_.ci(l.ci).type + " " + estate_.ci(l.ci).name + " (" +
                    std::to_string(estate_.ci(l.ci).id) + ") at depth " + std::to_string(depth));
              return AuditOutcome::kPass;
            }
            if (scratch.size() >= options_.max_visits) {
              throw model::Error(
                  model::ErrorCode::kInternal,
                  "reaches visited more than " + std::to_string(options_.max_visits) + " CIs");
            }
            scratch.push_back(l.ci);
          }
        }
        level_begin = level_end;
        if (level_begin == scratch.size()) break;
      }
      if (why != nullptr)
        say("reaches no CI of the wanted type within " + std::to_string(node.depth) +
            (node.depth == 1 ? " step" : " steps") + " (" + std::to_string(scratch.size() - 1) +
            " CIs visited)");
      return AuditOutcome::kFail;
    }
    case Op::kUnique: {
      const Prepared::Unique& u = prepared_->uniques.at(&node);
      const std::uint8_t state = u.state[i];
      if (why != nullptr && state == 2) {
        // Who shares it, for the explanation only.
        for (const std::string& k : UniqueKeys(node, ci)) {
          const Prepared::KeyOf wanted{std::hash<std::string>{}(k), k, 0};
          auto [begin, end] = std::equal_range(u.pairs.begin(), u.pairs.end(), wanted);
          const auto count = static_cast<std::size_t>(end - begin);
          if (count < 2) continue;
          std::string others;
          int shown = 0;
          for (auto it = begin; it != end; ++it) {
            if (it->ci == i) continue;
            if (shown++ == 5) {
              others += ", ...";
              break;
            }
            others += (others.empty() ? "" : ", ") + std::to_string(estate_.ci(it->ci).id);
          }
          if (why != nullptr)
            say("the key is shared with " + std::to_string(count - 1) + " other CI" +
                (count == 2 ? "" : "s") + " (" + others + ")");
          break;
        }
      }
      if (state == 0) {
        if (why != nullptr) say("the key is absent: nothing to compare");
        return AuditOutcome::kNotApplicable;
      }
      if (state == 1 && why != nullptr) say("the key is unique");
      return state == 2 ? AuditOutcome::kFail : AuditOutcome::kPass;
    }
    case Op::kNoOpenDrift: {
      std::size_t matching = 0;
      for (const EstateDrift& d : estate_.DriftOf(i)) {
        if (node.authorized && d.authorized != *node.authorized) continue;
        if (!node.attribute.empty() && d.attribute != node.attribute) continue;
        if (now - d.detected_at.micros < node.days * kDay) continue;
        ++matching;
      }
      if (why != nullptr)
        say(std::to_string(matching) + " open drift finding" + (matching == 1 ? "" : "s") +
            " of the kind checked");
      return verdict(matching == 0);
    }
    case Op::kUnmatched:
      return AuditOutcome::kNotApplicable;  // a discovery-source rule has no CI in scope
  }
  return AuditOutcome::kError;
}

std::string Evaluator::Message(std::size_t r, std::uint32_t ci) const {
  return FillMessage(rules_[r]->rule_.message, estate_.ci(ci));
}

Evaluator::SourceResult Evaluator::EvaluateSource(std::size_t r, std::size_t s) const {
  SourceResult out;
  const CompiledRule& rule = *rules_[r];
  if (rule.subject_ != model::AuditSubject::kDiscoverySource) return out;
  const EstateSource& source = estate_.sources()[s];
  if (!source.run_id) {
    out.message = source.name + " has no successful run yet";
    return out;
  }
  out.passed = source.registered;
  out.failed = source.unmatched;
  const bool ok = static_cast<double>(source.unmatched) <= rule.check_->max.value_or(0);
  out.outcome = ok ? AuditOutcome::kPass : AuditOutcome::kFail;
  std::string text = rule.rule_.message;
  auto replace = [&](std::string_view key, const std::string& value) {
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
      text.replace(at, key.size(), value);
      at += value.size();
    }
  };
  replace("{{name}}", source.name);
  replace("{{count}}", std::to_string(source.unmatched));
  replace("{{run}}", std::to_string(*source.run_id));
  out.message = std::move(text);
  return out;
}

void AddUniqueScope(const CompiledRule& rule,
                    std::map<std::string, std::vector<std::string>>& unique) {
  for (const std::string& a : rule.unique_attributes()) {
    auto [it, added] = unique.try_emplace(a, rule.scope_types());
    if (added) continue;
    if (it->second.empty() || rule.scope_types().empty()) {
      it->second.clear();  // every type
      continue;
    }
    for (const std::string& t : rule.scope_types()) {
      if (std::find(it->second.begin(), it->second.end(), t) == it->second.end()) {
        it->second.push_back(t);
      }
    }
  }
}

std::string FillMessage(const std::string& text, const EstateCi& ci) {
  std::string out;
  out.reserve(text.size() + 32);
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t open = text.find("{{", at);
    if (open == std::string::npos) break;
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(text, at, open - at);
    const std::string_view key(text.data() + open + 2, close - open - 2);
    if (key == "name") {
      out += ci.name;
    } else if (key == "id") {
      out += std::to_string(ci.id);
    } else if (key == "type") {
      out += ci.type;
    } else if (key == "status") {
      out += ci.status;
    } else if (key == "owner") {
      out += ci.owner.value_or("(no owner)");
    } else if (key.rfind("attr.", 0) == 0) {
      const json::value* v = ci.attributes.if_contains(key.substr(5));
      if (v == nullptr || v->is_null()) {
        out += "(none)";
      } else if (v->is_string()) {
        out += v->get_string();
      } else {
        out += model::ToJsonText(*v);
      }
    } else {
      out.append(text, open, close + 2 - open);
    }
    at = close + 2;
  }
  out.append(text, at, std::string::npos);
  return out;
}

}  // namespace cmdb::audit
