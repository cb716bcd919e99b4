#include "audit/rule_engine.hpp"

#include <chrono>
#include <random>
#include <set>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "model/json.hpp"

namespace cmdb::audit {
namespace {

namespace json = boost::json;
using model::AuditOutcome;

constexpr std::int64_t kDay = 24LL * 3600 * 1000000;
const model::Timestamp kNow{1'790'000'000LL * 1000000};

Catalogue TestCatalogue() {
  Catalogue c;
  c.ci_types["server"] = {"hostname", "serial", "mac_addresses", "env", "cpu_count"};
  c.ci_types["vm"] = {"hostname", "env"};
  c.ci_types["application"] = {"app_code"};
  c.ci_types["business_service"] = {"service_code"};
  c.relation_types = {"depends_on", "runs_on", "hosted_on"};
  return c;
}

model::AuditRule Rule(const std::string& scope, const std::string& check,
                      const std::string& message = "{{name}} fails") {
  model::AuditRule r;
  r.key = "r";
  r.title = "t";
  r.scope = model::ParseJson(scope).as_object();
  r.check = model::ParseJson(check);
  r.message = message;
  return r;
}

std::shared_ptr<const CompiledRule> MustCompile(const std::string& scope, const std::string& check,
                                                const std::string& message = "{{name}} fails") {
  model::FieldErrors errors;
  auto rule = Compile(Rule(scope, check, message), TestCatalogue(), errors);
  for (const auto& e : errors.items()) ADD_FAILURE() << e.field << ": " << e.message;
  EXPECT_NE(rule, nullptr);
  return rule;
}

// The pointer of the first error compiling the rule gives ("" when it compiles).
std::string FirstError(const std::string& scope, const std::string& check,
                       const RuleLimits& limits = {}) {
  model::FieldErrors errors;
  auto rule = Compile(Rule(scope, check), TestCatalogue(), errors, limits);
  if (rule != nullptr) return "";
  return errors.empty() ? "?" : errors.items()[0].field;
}

EstateCi Ci(model::CiId id, const std::string& type, const std::string& name,
            const std::string& status = "active", std::optional<std::string> owner = "ops",
            const std::string& attrs = "{}") {
  EstateCi ci;
  ci.id = id;
  ci.type = type;
  ci.name = name;
  ci.status = status;
  ci.owner = std::move(owner);
  ci.attributes = model::ParseJson(attrs).as_object();
  ci.changed_at = kNow;
  return ci;
}

// One rule over an estate: the outcome per CI id.
std::map<model::CiId, AuditOutcome> Outcomes(const Estate& estate,
                                             std::shared_ptr<const CompiledRule> rule,
                                             EvaluatorOptions options = {}) {
  Evaluator evaluator(estate, {std::move(rule)}, options);
  std::map<model::CiId, AuditOutcome> out;
  for (std::uint32_t i = 0; i < estate.size(); ++i) out[estate.ci(i).id] = evaluator.Evaluate(0, i);
  return out;
}

constexpr AuditOutcome kPass = AuditOutcome::kPass;
constexpr AuditOutcome kFail = AuditOutcome::kFail;
constexpr AuditOutcome kNa = AuditOutcome::kNotApplicable;
constexpr AuditOutcome kError = AuditOutcome::kError;

TEST(AuditRuleCompile, BadPartsAreNamedByTheirJsonPointer) {
  EXPECT_EQ(FirstError("{}", R"({"all": [{"present": "owner"}, {"frobnicate": 1}]})"),
            "/check/all/1/frobnicate");
  EXPECT_EQ(FirstError(R"({"type": ["vm"]})", R"({"present": "attr.serial"})"), "/check/present");
  EXPECT_EQ(FirstError("{}", R"({"present": "attr.no_such_thing"})"), "/check/present");
  EXPECT_EQ(FirstError("{}", R"({"regex": {"attr.hostname": "web(["}})"),
            "/check/regex/attr.hostname");
  EXPECT_EQ(FirstError("{}", R"({"relations": {"type": "runs_on", "min": 3, "max": 1}})"),
            "/check/relations/min");
  EXPECT_EQ(FirstError("{}", R"({"relations": {"type": "no_such_type"}})"),
            "/check/relations/type");
  EXPECT_EQ(FirstError(R"({"type": "no_such_type"})", R"({"present": "owner"})"), "/scope/type");
  EXPECT_EQ(FirstError(R"({"colour": "red"})", R"({"present": "owner"})"), "/scope/colour");
  EXPECT_EQ(FirstError("{}", R"({"not": {"present": "owner", "absent": "owner"}})"), "/check/not");
  EXPECT_EQ(FirstError("{}", R"({"reaches": {"via": "depends_on"}})"), "/check/reaches/to_type");
  EXPECT_EQ(FirstError("{}", R"({"reaches": {"to_type": "vm", "max_depth": 500}})"),
            "/check/reaches/max_depth");
  EXPECT_EQ(FirstError("{}", R"({"unique": {"key": ["attr.serial"], "normalize": "shout"}})"),
            "/check/unique/normalize");
  EXPECT_EQ(FirstError("{}", R"({"len": {"name": {"min": -1}}})"), "/check/len/name/min");
  EXPECT_EQ(FirstError("{}", R"({"unmatched_discoveries": {"max": 0}})"),
            "/check/unmatched_discoveries");
  EXPECT_EQ(FirstError("{}", R"({"seen_within": {"days": "thirty"}})"), "/check/seen_within/days");
  // A valid rule compiles and lists what it reads.
  auto rule =
      MustCompile(R"({"type": ["server"], "attr.env": "prod"})",
                  R"({"all": [{"present": "attr.serial"}, {"regex": {"attr.hostname": "^s"}}]})",
                  "{{attr.cpu_count}}");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->attributes(), (std::set<std::string>{"cpu_count", "env", "hostname", "serial"}));
  // What the loader must read for it: only what some part of the rule uses.
  EXPECT_FALSE(rule->uses_changed() || rule->uses_tags() || rule->uses_sightings());
  auto fresh =
      MustCompile(R"({"tag": "prod"})",
                  R"({"all": [{"changed_within": {"days": 1}}, {"seen_within": {"days": 1}}]})");
  EXPECT_TRUE(fresh->uses_changed() && fresh->uses_tags() && fresh->uses_sightings());
  EXPECT_TRUE(MustCompile("{}", R"({"present": "tags"})")->uses_tags());
}

TEST(AuditRuleCompile, HostileRulesAreRefusedOrBounded) {
  // Deep nesting.
  std::string deep = R"({"present": "owner"})";
  for (int i = 0; i < 40; ++i) deep = R"({"not": )" + deep + "}";
  EXPECT_NE(FirstError("{}", deep), "");
  // Too many operators.
  std::string wide = R"({"any": [)";
  for (int i = 0; i < 400; ++i) wide += std::string(i == 0 ? "" : ",") + R"({"present": "owner"})";
  wide += "]}";
  EXPECT_NE(FirstError("{}", wide), "");
  // A huge pattern.
  const std::string huge = R"({"regex": {"name": ")" + std::string(10000, 'a') + R"("}})";
  EXPECT_EQ(FirstError("{}", huge), "/check/regex/name");
  // A pattern whose compiled program is too large for the memory budget.
  EXPECT_EQ(FirstError("{}", R"({"regex": {"name": "((a{100}){100}){100}"}})"),
            "/check/regex/name");
  // A catastrophic pattern for backtracking engines runs in linear time under RE2.
  auto rule = MustCompile("{}", R"({"regex": {"name": "^(a+)+$"}})");
  std::vector<EstateCi> cis{Ci(1, "server", std::string(100000, 'a') + "b")};
  Estate estate(kNow, std::move(cis), {}, {}, {});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Outcomes(estate, rule)[1], kFail);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(AuditRuleEvaluate, FieldChecks) {
  std::vector<EstateCi> cis{
      Ci(1, "server", "web-01", "active", "ops",
         R"({"hostname": "web-01", "serial": " AB12 ", "cpu_count": 8, "env": "prod",
             "mac_addresses": ["00:11:22:33:44:55"]})"),
      Ci(2, "server", "db-01", "active", std::nullopt, R"({"hostname": "DB-01", "cpu_count": 64})"),
      Ci(3, "server", "bare", "retired", "", R"({"hostname": ""})"),
  };
  Estate estate(kNow, std::move(cis), {}, {}, {});
  using M = std::map<model::CiId, AuditOutcome>;
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"present": "owner"})")),
            (M{{1, kPass}, {2, kFail}, {3, kFail}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"absent": "attr.serial"})")),
            (M{{1, kFail}, {2, kPass}, {3, kPass}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"eq": {"attr.cpu_count": 8.0}})")),
            (M{{1, kPass}, {2, kFail}, {3, kNa}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"ne": {"attr.env": "prod"}})")),
            (M{{1, kFail}, {2, kPass}, {3, kPass}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"in": {"status": ["active", "maintenance"]}})")),
            (M{{1, kPass}, {2, kPass}, {3, kFail}}));
  EXPECT_EQ(
      Outcomes(estate, MustCompile("{}", R"({"regex": {"attr.hostname": "^[a-z]+-[0-9]+$"}})")),
      (M{{1, kPass}, {2, kFail}, {3, kNa}}));
  EXPECT_EQ(Outcomes(estate,
                     MustCompile("{}", R"({"range": {"attr.cpu_count": {"min": 1, "max": 32}}})")),
            (M{{1, kPass}, {2, kFail}, {3, kNa}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"len": {"name": {"max": 5}}})")),
            (M{{1, kFail}, {2, kPass}, {3, kPass}}));
  EXPECT_EQ(Outcomes(estate,
                     MustCompile("{}", R"({"len": {"attr.mac_addresses": {"min": 1, "max": 1}}})")),
            (M{{1, kPass}, {2, kNa}, {3, kNa}}));
  // Scope: the CI list's filters, lists meaning any of them.
  EXPECT_EQ(Outcomes(estate, MustCompile(R"({"status": ["active"], "attr.cpu_count": [8, 16]})",
                                         R"({"present": "owner"})")),
            (M{{1, kPass}, {2, kNa}, {3, kNa}}));
  EXPECT_EQ(Outcomes(estate, MustCompile(R"({"q": "DB"})", R"({"present": "owner"})")),
            (M{{1, kNa}, {2, kFail}, {3, kNa}}));
  // all / any / not, with not_applicable passing through.
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile("{}", R"({"any": [{"present": "owner"}, {"eq": {"attr.cpu_count": 64}}]})")),
      (M{{1, kPass}, {2, kPass}, {3, kFail}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"not": {"regex": {"attr.hostname": "^web"}}})")),
            (M{{1, kFail}, {2, kPass}, {3, kNa}}));
}

TEST(AuditRuleEvaluate, RelationsAndReachesOnCyclesAndRetiredCis) {
  // 1 service -> 2 app -> 3 vm -> 4 server; 5 app (retired) -> 3; 3 -> 6 server (retired);
  // a cycle 7 <-> 8 (depends_on both ways); 9 service depends on the cycle only.
  std::vector<EstateCi> cis{
      Ci(1, "business_service", "shop"),
      Ci(2, "application", "web"),
      Ci(3, "vm", "vm-1"),
      Ci(4, "server", "hv-1"),
      Ci(5, "application", "old", "retired"),
      Ci(6, "server", "hv-old", "retired"),
      Ci(7, "application", "a"),
      Ci(8, "application", "b"),
      Ci(9, "business_service", "loop"),
  };
  std::vector<EstateRelation> rels{
      {1, 2, "depends_on"}, {2, 3, "runs_on"},    {3, 4, "hosted_on"},  {5, 3, "runs_on"},
      {3, 6, "hosted_on"},  {7, 8, "depends_on"}, {8, 7, "depends_on"}, {9, 7, "depends_on"},
  };
  Estate estate(kNow, std::move(cis), rels, {}, {});
  using M = std::map<model::CiId, AuditOutcome>;
  // VMs hosted on exactly one active server: vm-1 has two hosts, one retired.
  EXPECT_EQ(Outcomes(estate, MustCompile(R"({"type": "vm"})",
                                         R"({"relations": {"type": "hosted_on", "to_type": "server",
                                        "min": 1, "max": 1}})"))[3],
            kFail);
  EXPECT_EQ(Outcomes(estate, MustCompile(R"({"type": "vm"})",
                                         R"({"relations": {"type": "hosted_on", "to_type": "server",
                                        "to_status": ["active"], "min": 1, "max": 1}})"))[3],
            kPass);
  // Nothing active depends on a retired CI.
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile(R"({"status": ["active"]})",
                      R"({"relations": {"direction": "out", "to_status": "retired", "max": 0}})")),
      (M{{1, kPass},
         {2, kPass},
         {3, kFail},
         {4, kPass},
         {5, kNa},
         {6, kNa},
         {7, kPass},
         {8, kPass},
         {9, kPass}}));
  // Retired CIs with active consumers (in): hv-old is used by vm-1.
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile(R"({"status": "retired"})",
                      R"({"relations": {"direction": "in", "to_status": ["active"], "max": 0}})")),
      (M{{1, kNa},
         {2, kNa},
         {3, kNa},
         {4, kNa},
         {5, kPass},
         {6, kFail},
         {7, kNa},
         {8, kNa},
         {9, kNa}}));
  // Services reach an application; the cycle terminates.
  auto reaches_server = MustCompile(R"({"type": "business_service"})",
                                    R"({"reaches": {"to_type": "server", "max_depth": 3}})");
  EXPECT_EQ(Outcomes(estate, reaches_server)[1], kPass);
  EXPECT_EQ(Outcomes(estate, reaches_server)[9], kFail);
  EXPECT_EQ(
      Outcomes(estate, MustCompile(R"({"type": "business_service"})",
                                   R"({"reaches": {"to_type": "server", "max_depth": 2}})"))[1],
      kFail);
  EXPECT_EQ(
      Outcomes(estate,
               MustCompile(R"({"type": "business_service"})",
                           R"({"reaches": {"via": ["depends_on"], "to_type": "application"}})"))[9],
      kPass);
  // Upward: the server is reached by a service.
  EXPECT_EQ(Outcomes(estate,
                     MustCompile(
                         R"({"type": "server", "status": "active"})",
                         R"({"reaches": {"direction": "in", "to_type": "business_service"}})"))[4],
            kPass);
  // A search past its bound is an error for that CI, not a failed run.
  EvaluatorOptions tight;
  tight.max_visits = 2;
  auto bounded = Outcomes(estate, reaches_server, tight);
  EXPECT_EQ(bounded[1], kError);
  EXPECT_EQ(bounded[9], kError);
  EXPECT_EQ(bounded[4], kNa);  // the others keep their outcomes
  tight.max_visits = 3;
  EXPECT_EQ(Outcomes(estate, reaches_server, tight)[9], kFail);  // visits 7 and 8 only
}

TEST(AuditRuleEvaluate, UniqueNormalisesKeysAndListElements) {
  std::vector<EstateCi> cis{
      Ci(1, "server", "a", "active", "ops",
         R"({"serial": " AB-12 ", "mac_addresses": ["00:11:22:33:44:55"]})"),
      Ci(2, "server", "b", "active", "ops",
         R"({"serial": "ab-12", "mac_addresses": ["00-11-22-33-44-66"]})"),
      Ci(3, "server", "c", "active", "ops",
         R"({"serial": "AB12", "mac_addresses": ["00-11-22-33-44-55", "aa:bb:cc:dd:ee:ff"]})"),
      Ci(4, "server", "d", "retired", "ops", R"({"serial": "XY"})"),
      Ci(5, "server", "e", "active", "ops", R"({})"),
  };
  Estate estate(kNow, std::move(cis), {}, {}, {});
  using M = std::map<model::CiId, AuditOutcome>;
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile("{}", R"({"unique": {"key": ["attr.serial"], "normalize": "trim_lower"}})")),
      (M{{1, kFail}, {2, kFail}, {3, kPass}, {4, kPass}, {5, kNa}}));
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile("{}",
                      R"({"unique": {"key": ["attr.serial"], "normalize": ["lower", "alnum"]}})")),
      (M{{1, kFail}, {2, kFail}, {3, kFail}, {4, kPass}, {5, kNa}}));
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile(
              "{}",
              R"({"unique": {"key": ["attr.mac_addresses"], "normalize": ["lower", "alnum"]}})")),
      (M{{1, kFail}, {2, kPass}, {3, kFail}, {4, kNa}, {5, kNa}}));
  // Only CIs in the scope count as duplicates.
  EXPECT_EQ(Outcomes(estate, MustCompile(R"({"status": "active"})",
                                         R"({"unique": {"key": ["attr.serial"]}})")),
            (M{{1, kPass}, {2, kPass}, {3, kPass}, {4, kNa}, {5, kNa}}));
}

TEST(AuditRuleEvaluate, FreshnessAndDrift) {
  std::vector<EstateCi> cis{Ci(1, "server", "a"), Ci(2, "server", "b"), Ci(3, "server", "c"),
                            Ci(4, "server", "d")};
  cis[0].seen_at = model::Timestamp{kNow.micros - 2 * kDay};
  cis[1].seen_at = model::Timestamp{kNow.micros - 40 * kDay};
  cis[1].changed_at = model::Timestamp{kNow.micros - 400 * kDay};
  cis[3].seen_later = true;
  std::vector<EstateDrift> drift{
      {1, "os", false, model::Timestamp{kNow.micros - 10 * kDay}},
      {2, "os", true, model::Timestamp{kNow.micros - 10 * kDay}},
      {3, "os", false, model::Timestamp{kNow.micros - 1 * kDay}},
  };
  Estate estate(kNow, std::move(cis), {}, std::move(drift), {});
  using M = std::map<model::CiId, AuditOutcome>;
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"seen_within": {"days": 30}})")),
            (M{{1, kPass}, {2, kFail}, {3, kFail}, {4, kNa}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"changed_within": {"days": 365}})")),
            (M{{1, kPass}, {2, kFail}, {3, kPass}, {4, kPass}}));
  EXPECT_EQ(
      Outcomes(
          estate,
          MustCompile("{}", R"({"no_open_drift": {"authorized": false, "older_than_days": 7}})")),
      (M{{1, kFail}, {2, kPass}, {3, kPass}, {4, kPass}}));
  EXPECT_EQ(Outcomes(estate, MustCompile("{}", R"({"no_open_drift": {}})")),
            (M{{1, kFail}, {2, kFail}, {3, kFail}, {4, kPass}}));
}

TEST(AuditRuleEvaluate, DiscoverySourcesCountUnmatchedAssets) {
  auto rule =
      MustCompile(R"({"subject": "discovery_source"})", R"({"unmatched_discoveries": {"max": 0}})",
                  "{{name}}: {{count}} assets unregistered (run {{run}})");
  std::vector<EstateSource> sources{
      {1, "nmap", 10, 7, 3}, {2, "ansible", 11, 9, 0}, {3, "new", std::nullopt, 0, 0}};
  Estate estate(kNow, {Ci(1, "server", "a")}, {}, {}, sources);
  Evaluator evaluator(estate, {rule});
  EXPECT_EQ(evaluator.Evaluate(0, 0), kNa);  // no CI is in its scope
  auto nmap = evaluator.EvaluateSource(0, 0);
  EXPECT_EQ(nmap.outcome, kFail);
  EXPECT_EQ(nmap.passed, 7);
  EXPECT_EQ(nmap.failed, 3);
  EXPECT_EQ(nmap.message, "nmap: 3 assets unregistered (run 10)");
  EXPECT_EQ(evaluator.EvaluateSource(0, 1).outcome, kPass);
  EXPECT_EQ(evaluator.EvaluateSource(0, 2).outcome, kNa);
}

TEST(AuditRuleEvaluate, ExplainsAndFillsTheMessage) {
  auto rule = MustCompile(
      R"({"type": "vm"})", R"({"relations": {"type": "hosted_on", "min": 1, "max": 1}})",
      "{{name}} ({{id}}, owner {{owner}}, env {{attr.env}}) is not hosted once");
  Estate estate(kNow, {Ci(7, "vm", "vm-<7>", "active", std::nullopt)}, {}, {}, {});
  Evaluator evaluator(estate, {rule});
  std::vector<std::string> why;
  EXPECT_EQ(evaluator.Evaluate(0, 0, &why), kFail);
  ASSERT_EQ(why.size(), 1U);
  EXPECT_EQ(why[0], "/check/relations: 0 matching relations, wanted from 1 to 1");
  EXPECT_EQ(evaluator.Message(0, 0), "vm-<7> (7, owner (no owner), env (none)) is not hosted once");
}

// --- the property test: the engine against a brute-force reading of the same JSON ---

struct World {
  std::vector<EstateCi> cis;
  std::vector<EstateRelation> relations;
  std::vector<EstateDrift> drift;
};

const EstateCi* FindCi(const World& w, model::CiId id) {
  for (const auto& c : w.cis) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

std::optional<json::value> BruteField(const EstateCi& ci, const std::string& field) {
  if (field == "name") return json::value(ci.name);
  if (field == "type") return json::value(ci.type);
  if (field == "status") return json::value(ci.status);
  if (field == "owner") return ci.owner ? std::optional(json::value(*ci.owner)) : std::nullopt;
  if (field == "tags") {
    json::array a;
    for (const auto& t : ci.tags) a.emplace_back(t);
    return json::value(a);
  }
  auto it = ci.attributes.find(field.substr(5));
  if (it == ci.attributes.end() || it->value().is_null()) return std::nullopt;
  return it->value();
}

bool BrutePresent(const std::optional<json::value>& v) {
  if (!v) return false;
  if (v->is_string()) return !v->get_string().empty();
  if (v->is_array()) return !v->get_array().empty();
  return true;
}

bool BruteInScope(const EstateCi& ci, const json::object& scope) {
  auto list = [](const json::value& v) {
    std::vector<std::string> out;
    if (v.is_array()) {
      for (const auto& x : v.get_array()) out.emplace_back(x.get_string());
    } else {
      out.emplace_back(v.get_string());
    }
    return out;
  };
  for (const auto& [k, v] : scope) {
    const auto wanted = list(v);
    auto has = [&](const std::string& s) {
      return std::find(wanted.begin(), wanted.end(), s) != wanted.end();
    };
    if (k == "type" && !has(ci.type)) return false;
    if (k == "status" && !has(ci.status)) return false;
    if (k == "owner" && !(ci.owner && has(*ci.owner))) return false;
  }
  return true;
}

AuditOutcome BruteEval(const World& w, const json::object& scope, const json::value& check,
                       const EstateCi& ci) {
  const auto& [op, arg] = *check.as_object().begin();
  auto v = [](bool ok) { return ok ? kPass : kFail; };
  if (op == "all" || op == "any") {
    std::vector<AuditOutcome> outs;
    for (const auto& c : arg.as_array()) outs.push_back(BruteEval(w, scope, c, ci));
    auto count = [&](AuditOutcome o) { return std::count(outs.begin(), outs.end(), o); };
    if (count(kError) > 0) return kError;
    if (op == "all") return count(kFail) > 0 ? kFail : count(kPass) > 0 ? kPass : kNa;
    return count(kPass) > 0 ? kPass : count(kFail) > 0 ? kFail : kNa;
  }
  if (op == "not") {
    const AuditOutcome o = BruteEval(w, scope, arg, ci);
    return o == kPass ? kFail : o == kFail ? kPass : o;
  }
  if (op == "present") return v(BrutePresent(BruteField(ci, std::string(arg.get_string()))));
  if (op == "absent") return v(!BrutePresent(BruteField(ci, std::string(arg.get_string()))));
  if (op == "eq" || op == "in") {
    const auto& [field, operand] = *arg.as_object().begin();
    const auto value = BruteField(ci, std::string(field));
    if (!BrutePresent(value)) return kNa;
    if (op == "eq") return v(value->to_number<double>() == operand.to_number<double>());
    for (const auto& x : operand.as_array()) {
      if (x == *value) return kPass;
    }
    return kFail;
  }
  if (op == "relations") {
    const json::object& o = arg.as_object();
    std::int64_t n = 0;
    const std::string dir =
        o.contains("direction") ? std::string(o.at("direction").as_string()) : "out";
    for (const auto& r : w.relations) {
      if (o.contains("type") && r.type != o.at("type").as_string()) continue;
      std::vector<model::CiId> far;
      if ((dir == "out" || dir == "both") && r.from == ci.id) far.push_back(r.to);
      if ((dir == "in" || dir == "both") && r.to == ci.id) far.push_back(r.from);
      for (model::CiId f : far) {
        const EstateCi* other = FindCi(w, f);
        if (other == nullptr) continue;
        if (o.contains("to_status") && other->status != o.at("to_status").as_string()) continue;
        ++n;
      }
    }
    const auto min = o.contains("min")   ? o.at("min").to_number<std::int64_t>()
                     : o.contains("max") ? 0
                                         : 1;
    const auto max = o.contains("max") ? o.at("max").to_number<std::int64_t>() : INT64_MAX;
    return v(n >= min && n <= max);
  }
  if (op == "reaches") {
    const json::object& o = arg.as_object();
    const auto depth = o.at("max_depth").to_number<int>();
    std::set<model::CiId> seen{ci.id}, frontier{ci.id};
    for (int d = 0; d < depth; ++d) {
      std::set<model::CiId> next;
      for (const auto& r : w.relations) {
        if (o.contains("via") && r.type != o.at("via").as_string()) continue;
        if (frontier.count(r.from) && !seen.count(r.to)) next.insert(r.to);
      }
      for (model::CiId id : next) {
        if (FindCi(w, id)->type == o.at("to_type").as_string()) return kPass;
        seen.insert(id);
      }
      frontier = next;
    }
    return kFail;
  }
  if (op == "unique") {
    auto key = [](const EstateCi& c) -> std::string {
      auto it = c.attributes.find("serial");
      if (it == c.attributes.end() || !it->value().is_string()) return "";
      std::string s(it->value().get_string());
      for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return s;
    };
    const std::string mine = key(ci);
    if (mine.empty()) return kNa;
    for (const auto& other : w.cis) {
      if (other.id != ci.id && BruteInScope(other, scope) && key(other) == mine) return kFail;
    }
    return kPass;
  }
  if (op == "no_open_drift") {
    for (const auto& d : w.drift) {
      if (d.ci == ci.id && !d.authorized) return kFail;
    }
    return kPass;
  }
  ADD_FAILURE() << "the brute force does not know " << op;
  return kError;
}

// A random check tree over the operators the brute force knows.
json::value RandomCheck(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> pick(0, depth > 2 ? 8 : 11);
  const char* fields[] = {"owner", "attr.serial", "attr.env", "name"};
  const char* types[] = {"server", "vm", "application", "business_service"};
  const char* rels[] = {"depends_on", "runs_on", "hosted_on"};
  const char* statuses[] = {"active", "retired", "planned"};
  auto any_of = [&](auto& arr) {
    return arr[std::uniform_int_distribution<std::size_t>(0, std::size(arr) - 1)(rng)];
  };
  switch (pick(rng)) {
    case 0:
      return json::object{{"present", any_of(fields)}};
    case 1:
      return json::object{{"absent", any_of(fields)}};
    case 2:
      return json::object{{"eq", json::object{{"attr.cpu_count", static_cast<int>(rng() % 4)}}}};
    case 3:
      return json::object{{"in", json::object{{"attr.env", json::array{"prod", "dev"}}}}};
    case 4: {
      json::object o{{"type", any_of(rels)}, {"direction", rng() % 2 ? "out" : "in"}};
      if (rng() % 2) o["to_status"] = any_of(statuses);
      if (rng() % 2) o["min"] = static_cast<int>(rng() % 2);
      if (rng() % 2) o["max"] = 1 + static_cast<int>(rng() % 2);
      return json::object{{"relations", o}};
    }
    case 5: {
      json::object o{{"to_type", any_of(types)}, {"max_depth", 1 + static_cast<int>(rng() % 4)}};
      if (rng() % 2) o["via"] = any_of(rels);
      return json::object{{"reaches", o}};
    }
    case 6:
      return json::object{
          {"unique", json::object{{"key", json::array{"attr.serial"}}, {"normalize", "lower"}}}};
    case 7:
      return json::object{{"no_open_drift", json::object{{"authorized", false}}}};
    case 8:
      return json::object{{"present", "owner"}};
    case 9:
    case 10: {
      json::array items;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; ++i) items.push_back(RandomCheck(rng, depth + 1));
      return json::object{{rng() % 2 ? "all" : "any", items}};
    }
    default:
      return json::object{{"not", RandomCheck(rng, depth + 1)}};
  }
}

World RandomWorld(std::mt19937& rng) {
  World w;
  const char* types[] = {"server", "vm", "application", "business_service"};
  const char* statuses[] = {"active", "retired", "planned"};
  const char* rels[] = {"depends_on", "runs_on", "hosted_on"};
  const int n = 5 + static_cast<int>(rng() % 40);
  for (int i = 1; i <= n; ++i) {
    json::object attrs;
    if (rng() % 2)
      attrs["serial"] =
          rng() % 2 ? "SN" + std::to_string(rng() % 5) : "sn" + std::to_string(rng() % 5);
    if (rng() % 2) attrs["env"] = rng() % 2 ? "prod" : "test";
    if (rng() % 2) attrs["cpu_count"] = static_cast<int>(rng() % 4);
    EstateCi ci =
        Ci(i, types[rng() % 4], "ci-" + std::to_string(i), statuses[rng() % 3],
           rng() % 3 == 0 ? std::nullopt : std::optional<std::string>(rng() % 2 ? "ops" : "dev"));
    ci.attributes = std::move(attrs);
    w.cis.push_back(std::move(ci));
  }
  std::set<std::tuple<std::string, model::CiId, model::CiId>> seen;
  const int m = static_cast<int>(rng() % (3 * n));
  for (int k = 0; k < m; ++k) {
    const model::CiId from = 1 + static_cast<int>(rng() % n), to = 1 + static_cast<int>(rng() % n);
    const std::string type = rels[rng() % 3];
    if (from == to || !seen.insert({type, from, to}).second) continue;  // as the database holds
    w.relations.push_back({from, to, type});
  }
  for (int i = 1; i <= n; ++i) {
    if (rng() % 4 == 0)
      w.drift.push_back({i, "os", rng() % 2 == 0, model::Timestamp{kNow.micros - kDay}});
  }
  return w;
}

TEST(AuditRuleProperty, TheEngineAgreesWithABruteForceEvaluatorOnRandomEstates) {
  std::mt19937 rng(20261206);
  int compared = 0;
  for (int round = 0; round < 300; ++round) {
    World w = RandomWorld(rng);
    json::object scope;
    if (rng() % 2) scope["status"] = json::array{"active", "planned"};
    if (rng() % 3 == 0) scope["type"] = "server";
    const json::value check = RandomCheck(rng, 0);
    model::AuditRule rule;
    rule.key = "p";
    rule.title = "p";
    rule.scope = scope;
    rule.check = check;
    rule.message = "{{name}}";
    model::FieldErrors errors;
    auto compiled = Compile(rule, TestCatalogue(), errors);
    if (compiled == nullptr) continue;  // e.g. attr.serial under a vm-only scope
    Estate estate(kNow, w.cis, w.relations, w.drift, {});
    Evaluator evaluator(estate, {compiled});
    for (std::uint32_t i = 0; i < estate.size(); ++i) {
      const EstateCi& ci = estate.ci(i);
      const AuditOutcome expected = BruteInScope(ci, scope) ? BruteEval(w, scope, check, ci) : kNa;
      ASSERT_EQ(evaluator.Evaluate(0, i), expected)
          << "round " << round << " CI " << ci.id << " check " << model::ToJsonText(check);
      ++compared;
    }
  }
  EXPECT_GT(compared, 3000);
}

// What an estate says about one CI, in names rather than positions: its record, its links
// both ways, its drift and the numbering behind its type, status and owner.
std::string Describe(const Estate& e, std::uint32_t i) {
  const EstateCi& ci = e.ci(i);
  std::string out = std::to_string(ci.id) + " " + ci.type + " " + ci.name + " " + ci.status + " " +
                    ci.owner.value_or("-") + " " + json::serialize(ci.attributes) + " " +
                    std::to_string(ci.changed_at.micros) + " numbered " +
                    e.ci_types()[e.type_id(i)] + "/" + e.statuses()[e.status_id(i)] + "/" +
                    e.owners()[e.owner_id(i)];
  std::multiset<std::string> out_links, in_links, drift;
  for (const Estate::Link& l : e.Out(i)) {
    out_links.insert(e.relation_types()[l.type] + ">" + std::to_string(e.ci(l.ci).id));
  }
  for (const Estate::Link& l : e.In(i)) {
    in_links.insert(e.relation_types()[l.type] + "<" + std::to_string(e.ci(l.ci).id));
  }
  for (const EstateDrift& d : e.DriftOf(i)) drift.insert(d.attribute);
  for (const auto* set : {&out_links, &in_links, &drift}) {
    out += " |";
    for (const std::string& x : *set) out += " " + x;
  }
  return out;
}

// Every CI of the estate described, by id; and each (type, status) bucket as the ids it holds.
std::pair<std::map<model::CiId, std::string>, std::map<std::string, std::set<model::CiId>>>
Contents(const Estate& e) {
  std::map<model::CiId, std::string> cis;
  for (std::uint32_t i = 0; i < e.size(); ++i) {
    EXPECT_EQ(e.IndexOf(e.ci(i).id), std::optional<std::uint32_t>(i));
    cis[e.ci(i).id] = Describe(e, i);
  }
  std::map<std::string, std::set<model::CiId>> buckets;
  for (std::size_t t = 0; t < e.ci_types().size(); ++t) {
    for (std::size_t s = 0; s < e.statuses().size(); ++s) {
      for (const std::uint32_t i :
           e.Bucket(static_cast<std::uint16_t>(t), static_cast<std::uint8_t>(s))) {
        EXPECT_EQ(e.ci(i).type, e.ci_types()[t]);
        EXPECT_EQ(e.ci(i).status, e.statuses()[s]);
        buckets[e.ci_types()[t] + "/" + e.statuses()[s]].insert(e.ci(i).id);
      }
    }
  }
  return {cis, buckets};
}

// The audit worker keeps its estate between runs and updates it in place (Estate::Update):
// after any sequence of CI and relation changes it must be the estate a full load builds,
// and every rule must decide every CI as over that estate.
TEST(AuditEstateProperty, AnEstateUpdatedInPlaceEqualsOneBuiltFromScratch) {
  std::mt19937 rng(20261207);
  const char* types[] = {"server", "vm", "application", "business_service"};
  const char* statuses[] = {"active", "retired", "planned"};
  const char* rels[] = {"depends_on", "runs_on", "hosted_on"};
  int checked = 0;
  for (int round = 0; round < 120; ++round) {
    World w = RandomWorld(rng);
    Estate kept(kNow, w.cis, w.relations, w.drift, {});
    model::CiId next_id = static_cast<model::CiId>(w.cis.size()) + 1;
    for (int batch = 0; batch < 6; ++batch) {
      std::vector<EstateCi> changed;
      std::vector<model::CiId> removed;
      bool relations_changed = false;
      const int edits = static_cast<int>(rng() % 6);
      for (int k = 0; k < edits && !w.cis.empty(); ++k) {
        EstateCi& ci = w.cis[rng() % w.cis.size()];
        switch (rng() % 4) {
          case 0:
            ci.owner = rng() % 3 == 0
                           ? std::nullopt
                           : std::optional<std::string>("team-" + std::to_string(rng() % 4));
            break;
          case 1:
            ci.status = statuses[rng() % 3];
            break;
          case 2:
            ci.type = types[rng() % 4];
            break;
          default:
            ci.attributes["serial"] = "SN" + std::to_string(rng() % 5);
        }
        ci.changed_at = model::Timestamp{kNow.micros + batch};
        changed.push_back(ci);
      }
      // Some leave, with their relations and drift (as the database cascades).
      if (rng() % 2 && w.cis.size() > 3) {
        const model::CiId gone = w.cis[rng() % w.cis.size()].id;
        removed.push_back(gone);
        std::erase_if(w.cis, [&](const EstateCi& c) { return c.id == gone; });
        std::erase_if(changed, [&](const EstateCi& c) { return c.id == gone; });
        const std::size_t before = w.relations.size();
        std::erase_if(w.relations,
                      [&](const EstateRelation& r) { return r.from == gone || r.to == gone; });
        relations_changed = relations_changed || before != w.relations.size();
        std::erase_if(w.drift, [&](const EstateDrift& d) { return d.ci == gone; });
      }
      // Some join: mostly the next id, now and then one far away (the id index changes form).
      const int joining = static_cast<int>(rng() % 3);
      for (int k = 0; k < joining; ++k) {
        const model::CiId id = rng() % 5 == 0 ? next_id + 10'000'000 : next_id;
        ++next_id;
        EstateCi ci = Ci(id, types[rng() % 4], "new-" + std::to_string(id), statuses[rng() % 3]);
        w.cis.push_back(ci);
        changed.push_back(ci);
      }
      if (rng() % 2 && w.cis.size() > 1) {
        const model::CiId from = w.cis[rng() % w.cis.size()].id;
        const model::CiId to = w.cis[rng() % w.cis.size()].id;
        if (from != to) {
          w.relations.push_back({from, to, rels[rng() % 3]});
          relations_changed = true;
        }
      }
      if (rng() % 3 == 0 && !w.relations.empty()) {
        w.relations.erase(w.relations.begin() +
                          static_cast<std::ptrdiff_t>(rng() % w.relations.size()));
        relations_changed = true;
      }
      const EstateRelations columns(w.relations);
      kept.Update(model::Timestamp{kNow.micros + batch}, changed, removed,
                  relations_changed || !removed.empty() ? &columns : nullptr, w.drift, {});
      const Estate fresh(model::Timestamp{kNow.micros + batch}, w.cis, w.relations, w.drift, {});
      ASSERT_EQ(kept.size(), fresh.size()) << "round " << round << " batch " << batch;
      ASSERT_EQ(kept.relation_count(), fresh.relation_count());
      const auto [kept_cis, kept_buckets] = Contents(kept);
      const auto [fresh_cis, fresh_buckets] = Contents(fresh);
      ASSERT_EQ(kept_cis, fresh_cis) << "round " << round << " batch " << batch;
      ASSERT_EQ(kept_buckets, fresh_buckets) << "round " << round << " batch " << batch;
      // Every rule decides every CI alike over both.
      model::AuditRule rule;
      rule.key = "p";
      rule.title = "p";
      rule.check = RandomCheck(rng, 0);
      if (rng() % 2) rule.scope["status"] = json::array{"active", "planned"};
      if (rng() % 3 == 0) rule.scope["type"] = "server";
      rule.message = "{{name}}";
      model::FieldErrors errors;
      auto compiled = Compile(rule, TestCatalogue(), errors);
      if (compiled == nullptr) continue;
      EXPECT_EQ(Outcomes(kept, compiled), Outcomes(fresh, compiled))
          << "round " << round << " check " << model::ToJsonText(rule.check);
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

}  // namespace
}  // namespace cmdb::audit
