#include "discovery/reconcile.hpp"

#include <cctype>
#include <map>
#include <random>
#include <set>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "model/json.hpp"
#include "model/parallel.hpp"

namespace cmdb::discovery {
namespace {

namespace json = boost::json;

model::CiType ServerType() {
  return model::ParseCiType(json::parse(R"({
    "name": "server",
    "attributes": {
      "hostname": {"type": "string"}, "domain": {"type": "string"}, "fqdn": {"type": "string"},
      "ip": {"type": "ip"}, "serial": {"type": "string"}, "machine_id": {"type": "string"},
      "mac_addresses": {"type": "string", "list": true}, "os": {"type": "string"},
      "memory_mb": {"type": "integer", "min": 0}, "open_ports": {"type": "integer", "list": true}},
    "identify_by": [["serial"], ["machine_id"], ["hostname", "domain"], ["hostname"], ["ip"]]})"));
}

Candidate Ci(CiId id, const char* attributes) {
  return {id, "ci-" + std::to_string(id), json::parse(attributes).as_object()};
}

Observation Obs(const char* attributes, const char* identity = "{}") {
  Observation o;
  o.attributes = json::parse(attributes).as_object();
  o.identity = json::parse(identity).as_object();
  o.label = "obs";
  return o;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  Reconciler Make(const SourceConfig& config = {}) {
    Reconciler r(config, JunkRules(config.junk_values, config.loopback_identities));
    r.AddType(ServerType(),
              {Ci(1, R"({"serial": "S1", "hostname": "db-01", "memory_mb": 1024, "os": "Debian"})"),
               Ci(2, R"({"serial": "S2", "hostname": "Web-01", "domain": "corp"})"),
               Ci(3, R"({"hostname": "twin", "ip": "10.0.0.3"})"),
               Ci(4, R"({"hostname": "twin", "ip": "10.0.0.4"})"),
               Ci(5, R"({"serial": "To be filled by O.E.M.", "hostname": "oem-box"})")});
    return r;
  }
};

TEST_F(ReconcilerTest, MatchesByTheFirstCompleteIdentifierSet) {
  Reconciler r = Make();
  Decision d = r.Decide(Obs(R"({"serial": "S1", "hostname": "renamed"})"), 1);
  EXPECT_EQ(d.outcome, Outcome::kMatched);
  EXPECT_EQ(d.ci, 1);
  EXPECT_EQ(d.matched_by, std::vector<std::string>{"serial"});
  // Identity values compare case-insensitively; later sets are used when earlier ones are
  // incomplete, and the log says why each set before was passed over.
  Decision web = r.Decide(Obs(R"({"hostname": "WEB-01", "domain": "CORP"})"), 2);
  EXPECT_EQ(web.outcome, Outcome::kMatched);
  EXPECT_EQ(web.ci, 2);
  ASSERT_EQ(web.tried.size(), 3U);
  EXPECT_EQ(web.tried[0].at("result"), "no serial");
  EXPECT_EQ(web.tried[1].at("result"), "no machine_id");
  EXPECT_EQ(web.tried[2].at("result"), "CI 2");
  // An IPv6 identifier matches whatever its spelling.
  Reconciler v6(SourceConfig{}, JunkRules({}, false));
  v6.AddType(ServerType(), {Ci(7, R"({"ip": "2001:db8::7"})")});
  Decision ip = v6.Decide(Obs(R"({"ip": "2001:DB8:0:0:0:0:0:7"})"), 1);
  EXPECT_EQ(ip.outcome, Outcome::kMatched);
  EXPECT_EQ(ip.ci, 7);
}

TEST_F(ReconcilerTest, JunkNeverMatches) {
  Reconciler r = Make();
  for (const char* junk :
       {"To be filled by O.E.M.", " default string ", "NA", "0", "000000000", "N/A", "None"}) {
    json::object a{{"serial", junk}};
    Observation o;
    o.attributes = a;
    Decision d = r.Decide(o, 1);
    EXPECT_EQ(d.outcome, Outcome::kUnmatched) << junk;
    EXPECT_NE(d.tried.at(0).at("result").as_string().find("placeholder"), json::string::npos)
        << junk;
  }
  Decision lo = r.Decide(Obs(R"({"hostname": "localhost", "ip": "127.0.0.1"})"), 2);
  EXPECT_EQ(lo.outcome, Outcome::kUnmatched);
  EXPECT_NE(lo.tried.back().at("result").as_string().find("loopback"), json::string::npos);
  // The placeholder serial of CI 5 is not an identifier on the record's side either.
  SourceConfig config;
  config.junk_values = {"ACME-SERIAL"};
  Reconciler custom = Make(config);
  EXPECT_EQ(custom.Decide(Obs(R"({"serial": "acme-serial"})"), 1).outcome, Outcome::kUnmatched);
}

TEST_F(ReconcilerTest, AmbiguousMatchesAreNeverMerged) {
  Reconciler r = Make();
  Decision d = r.Decide(Obs(R"({"hostname": "twin"})"), 1);
  EXPECT_EQ(d.outcome, Outcome::kAmbiguous);
  EXPECT_EQ(d.candidates, (std::vector<CiId>{3, 4}));
  EXPECT_EQ(d.ci, 0);
  EXPECT_TRUE(d.findings.empty());
  // Twice the same CI in one run: the first observation applies, the second does not.
  EXPECT_EQ(r.Decide(Obs(R"({"serial": "S1"})"), 2).outcome, Outcome::kMatched);
  Decision twice = r.Decide(Obs(R"({"hostname": "db-01", "memory_mb": 1})"), 3);
  EXPECT_EQ(twice.outcome, Outcome::kAmbiguous);
  EXPECT_NE(twice.reason.find("observation #2"), std::string::npos);
  EXPECT_TRUE(twice.findings.empty());
}

TEST_F(ReconcilerTest, UnmatchedIsReportedOrRegisteredOnce) {
  Reconciler report = Make();
  Decision d = report.Decide(Obs(R"({"serial": "NEW", "hostname": "new"})"), 1);
  EXPECT_EQ(d.outcome, Outcome::kUnmatched);
  EXPECT_NE(d.reason.find("on_unmatched=report"), std::string::npos);

  SourceConfig config;
  config.on_unmatched = OnUnmatched::kCreate;
  Reconciler create = Make(config);
  Decision c = create.Decide(
      Obs(R"({"serial": "NEW", "hostname": "new", "fqdn": "new.corp", "colour": "red", "memory_mb": -1})"),
      1);
  EXPECT_EQ(c.outcome, Outcome::kCreated);
  EXPECT_EQ(c.create_name, "new.corp");
  EXPECT_EQ(c.create_attributes,
            json::parse(R"({"serial": "NEW", "hostname": "new", "fqdn": "new.corp"})"));
  EXPECT_EQ(c.notes.size(), 2U);  // colour is not an attribute; -1 is out of range
  // The same asset again in the same run is not registered twice.
  Decision again = create.Decide(Obs(R"({"serial": "new"})"), 2);
  EXPECT_EQ(again.outcome, Outcome::kAmbiguous);
  EXPECT_NE(again.reason.find("observation #1"), std::string::npos);
  // Nothing complete to identify it by: never registered (it would be a new duplicate each run).
  Decision nothing = create.Decide(Obs(R"({"os": "Debian", "serial": "0"})"), 3);
  EXPECT_EQ(nothing.outcome, Outcome::kUnmatched);
  EXPECT_NE(nothing.reason.find("nothing can identify"), std::string::npos);
}

TEST_F(ReconcilerTest, DriftFindingsFollowTheirLifecycle) {
  Reconciler r = Make();
  r.AddOpenFinding(1, "os", {10, json::value("Debian"), json::value("Ubuntu")});
  r.AddIgnoredFinding(2, "os", {11, json::value(nullptr), json::value("Alpine")});
  Decision d = r.Decide(
      Obs(R"({"serial": "S1", "memory_mb": 2048, "os": "Debian", "open_ports": [443, 22]})"), 1);
  ASSERT_EQ(d.outcome, Outcome::kMatched);
  ASSERT_EQ(d.findings.size(), 2U);
  EXPECT_EQ(d.findings[0].attribute, "memory_mb");
  EXPECT_EQ(d.findings[0].action, FindingAction::kOpen);
  EXPECT_EQ(d.findings[0].expected, 1024);
  EXPECT_EQ(d.findings[0].actual, 2048);
  EXPECT_EQ(d.findings[1].attribute, "os");  // back at the record: resolves finding 10
  EXPECT_EQ(d.findings[1].action, FindingAction::kResolve);
  EXPECT_EQ(d.findings[1].finding_id, 10);
  EXPECT_EQ(d.fill, json::parse(R"({"open_ports": [443, 22]})"));  // the record had none

  Reconciler again = Make();
  again.AddOpenFinding(1, "memory_mb", {12, json::value(1024), json::value(2048)});
  Decision same = again.Decide(Obs(R"({"serial": "S1", "memory_mb": 2048.0})"), 1);
  ASSERT_EQ(same.findings.size(), 1U);
  EXPECT_EQ(same.findings[0].action, FindingAction::kUnchanged);  // 2048.0 is 2048
  Decision moved = Make().Decide(Obs(R"({"serial": "S1"})"), 1);
  EXPECT_TRUE(moved.findings.empty());  // attributes not observed are not drift
  Reconciler third = Make();
  third.AddOpenFinding(1, "memory_mb", {12, json::value(1024), json::value(2048)});
  Decision changed = third.Decide(Obs(R"({"serial": "S1", "memory_mb": 4096})"), 1);
  EXPECT_EQ(changed.findings.at(0).action, FindingAction::kUpdate);
  EXPECT_EQ(changed.findings.at(0).finding_id, 12);

  // An ignored difference is not reported again while it stays the same.
  SourceConfig strict;
  strict.fill_missing = false;
  Reconciler ignored = Make(strict);
  ignored.AddIgnoredFinding(2, "os", {11, json::value(nullptr), json::value("Alpine")});
  Decision quiet = ignored.Decide(Obs(R"({"serial": "S2", "os": "Alpine"})"), 1);
  EXPECT_EQ(quiet.findings.at(0).action, FindingAction::kSuppressed);
  Decision loud = Make(strict).Decide(Obs(R"({"serial": "S2", "os": "Alpine"})"), 1);
  EXPECT_EQ(loud.findings.at(0).action, FindingAction::kOpen);
  EXPECT_TRUE(loud.findings.at(0).expected.is_null());
}

TEST_F(ReconcilerTest, MappingRenamesAndDropsObservedAttributes) {
  SourceConfig config;
  config.mapping["asset_tag"] = "serial";
  config.mapping["os"] = std::nullopt;
  Reconciler r = Make(config);
  Decision d = r.Decide(Obs(R"({"asset_tag": "S1", "os": "Windows"})"), 1);
  EXPECT_EQ(d.outcome, Outcome::kMatched);
  EXPECT_EQ(d.ci, 1);
  EXPECT_TRUE(d.findings.empty());
}

// Large runs take Prepare on several threads and Settle in order. On random estates with
// duplicate records, repeated and junk identifiers, the outcome and CI of every decision must
// be what a plain sequential reading of the rules gives (first complete identifier set that
// finds CIs decides; a CI matched earlier in the run or an asset registered earlier in it is
// ambiguous), and the decision logs must not depend on the number of threads.
TEST(ReconcilerProperty, PreparedInParallelAgreesWithTheSequentialRules) {
  const std::vector<std::vector<std::string>> sets = {
      {"serial"}, {"machine_id"}, {"hostname", "domain"}, {"hostname"}};
  const model::CiType type = model::ParseCiType(json::parse(R"({
    "name": "server",
    "attributes": {"serial": {"type": "string"}, "machine_id": {"type": "string"},
                   "hostname": {"type": "string"}, "domain": {"type": "string"},
                   "memory_mb": {"type": "integer", "min": 0}},
    "identify_by": [["serial"], ["machine_id"], ["hostname", "domain"], ["hostname"]]})"));
  const std::vector<std::string> junk = JunkRules::BuiltIn();
  for (unsigned seed = 1; seed <= 6; ++seed) {
    std::mt19937 rng(seed);
    // An identifying value from a pool of `pool`, or absent, junk or 0.
    auto put = [&](json::object& o, const char* name, int pool) {
      const int v = static_cast<int>(rng() % static_cast<unsigned>(pool + 3));
      if (v == pool) return;
      if (v == pool + 1) {
        o[name] = junk[rng() % junk.size()];
      } else if (v == pool + 2) {
        o[name] = 0;
      } else {
        std::string text = name + std::to_string(v);
        if (rng() % 4 == 0) text[0] = static_cast<char>(std::toupper(text[0]));  // same key
        o[name] = text;
      }
    };
    auto values = [&](int pool) {
      json::object o;
      for (const char* name : {"serial", "machine_id", "hostname", "domain"}) put(o, name, pool);
      if (rng() % 2 == 0) o["memory_mb"] = static_cast<int>(rng() % 3) * 1024;
      return o;
    };
    std::vector<Candidate> candidates;
    candidates.reserve(300);
    for (int i = 0; i < 300; ++i) candidates.push_back({1000 + i, "ci", values(400)});
    std::vector<Observation> observations(1500);
    for (auto& o : observations) {
      o.identity = values(500);
      if (rng() % 25 == 0) o.identity = {{"serial", "To be filled by O.E.M."}, {"hostname", "0"}};
      o.label = "obs";
      if (rng() % 50 == 0) o.skip_reason = "host down";
    }
    SourceConfig config;
    config.on_unmatched = seed % 2 == 0 ? OnUnmatched::kCreate : OnUnmatched::kReport;
    auto make = [&] {
      Reconciler r(config, JunkRules(config.junk_values, false));
      r.AddType(type, candidates);
      r.AddOpenFinding(1000, "memory_mb", {7, json::value(0), json::value(1024)});
      return r;
    };

    // The rules, read sequentially, without the reconciler.
    const JunkRules rules(config.junk_values, false);
    auto key = [&](const std::vector<std::string>& set, const json::object& o) {
      std::string k;
      for (const auto& name : set) {
        const json::value* v = o.if_contains(name);
        if (v == nullptr || !rules.Why(*v).empty()) return std::string();
        std::string text(v->get_string());
        for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        k += text + '\x1f';
      }
      return k;
    };
    std::vector<std::map<std::string, std::vector<CiId>>> by_key(sets.size());
    for (std::size_t s = 0; s < sets.size(); ++s) {
      for (const auto& c : candidates) {
        if (std::string k = key(sets[s], c.attributes); !k.empty()) by_key[s][k].push_back(c.id);
      }
    }
    std::set<CiId> matched;
    std::set<std::pair<std::size_t, std::string>> pending;
    std::map<Outcome, int> seen;

    Reconciler sequential = make();
    Reconciler parallel = make();
    std::vector<Reconciler::Draft> drafts(observations.size());
    model::ParallelFor(
        observations.size(),
        [&](std::size_t i) {
          drafts[i] = parallel.Prepare(observations[i], static_cast<int>(i) + 1);
        },
        nullptr);
    for (std::size_t i = 0; i < observations.size(); ++i) {
      const Decision one = sequential.Decide(observations[i], static_cast<int>(i) + 1);
      const Decision other = parallel.Settle(std::move(drafts[i]));
      ASSERT_EQ(model::ToJsonText(one.ToJson()), model::ToJsonText(other.ToJson())) << i;

      Outcome expected = Outcome::kUnmatched;
      CiId ci = 0;
      const Observation& o = observations[i];
      bool complete = false;
      bool decided = !o.skip_reason.empty();
      if (decided) expected = Outcome::kRejected;
      std::vector<std::string> keys;
      for (std::size_t s = 0; s < sets.size() && !decided; ++s) {
        keys.push_back(key(sets[s], o.identity));
        if (keys.back().empty()) continue;
        complete = true;
        const std::vector<CiId> hits = by_key[s][keys.back()];
        if (hits.empty()) {
          if (pending.contains({s, keys.back()})) {
            expected = Outcome::kAmbiguous;
            decided = true;
          }
          continue;
        }
        decided = true;
        if (hits.size() > 1 || matched.contains(hits[0])) {
          expected = Outcome::kAmbiguous;
        } else {
          expected = Outcome::kMatched;
          ci = hits[0];
          matched.insert(ci);
        }
      }
      if (!decided && complete && config.on_unmatched == OnUnmatched::kCreate) {
        expected = Outcome::kCreated;
        for (std::size_t s = 0; s < keys.size(); ++s) {
          if (!keys[s].empty()) pending.insert({s, keys[s]});
        }
      }
      ASSERT_EQ(OutcomeName(one.outcome), OutcomeName(expected)) << "seed " << seed << " #" << i;
      ASSERT_EQ(one.ci, ci) << "seed " << seed << " #" << i;
      ++seen[one.outcome];
    }
    // Every rule was exercised.
    EXPECT_GT(seen[Outcome::kMatched], 0) << seed;
    EXPECT_GT(seen[Outcome::kAmbiguous], 0) << seed;
    EXPECT_GT(seen[Outcome::kUnmatched], 0) << seed;
    EXPECT_GT(seen[Outcome::kRejected], 0) << seed;
    if (config.on_unmatched == OnUnmatched::kCreate) {
      EXPECT_GT(seen[Outcome::kCreated], 0) << seed;
    }
  }
}

TEST(DecisionLog, EveryFieldSurvivesHostileText) {
  const std::string hostile = "host \"a\"\\b <script>\n\t\x01 \xd0\x96\xe4\xb8\xad";
  Decision d;
  d.seq = 7;
  d.label = hostile;
  d.type = "server";
  d.outcome = Outcome::kCreated;
  d.ci = 42;
  d.matched_by = {"serial", hostile};
  d.candidates = {1, 2};
  d.tried.push_back(json::object{{"identify_by", json::array{"serial"}}, {"result", hostile}});
  d.reason = hostile;
  d.findings.push_back(
      {FindingAction::kOpen, hostile, json::parse(R"({"deep": [[1]]})"), json::value(hostile), 9});
  d.findings.push_back({FindingAction::kUnchanged, "os", nullptr, 2.5, 0});
  d.fill = {{"os", hostile}};
  d.create_name = hostile;
  d.create_attributes = {{"serial", "S1"}, {"memory_mb", 1024}};
  d.notes.push_back(json::object{{"attribute", "x"}, {"note", hostile}});
  std::string text;
  d.AppendJson(text, /*dry_run=*/true);
  const json::object o = json::parse(text).as_object();
  EXPECT_EQ(o.at("seq"), 7);
  EXPECT_EQ(o.at("observation"), hostile.c_str());
  EXPECT_EQ(o.at("outcome"), "created");
  EXPECT_EQ(o.at("ci"), 42);
  EXPECT_EQ(o.at("identify_by"), (json::array{"serial", hostile.c_str()}));
  EXPECT_EQ(o.at("candidates"), (json::array{1, 2}));
  EXPECT_EQ(o.at("tried"), d.tried);
  EXPECT_EQ(o.at("reason"), hostile.c_str());
  ASSERT_EQ(o.at("drift").as_array().size(), 2U);
  EXPECT_EQ(o.at("drift").at(0).at("attribute"), hostile.c_str());
  EXPECT_EQ(o.at("drift").at(0).at("expected"), json::parse(R"({"deep": [[1]]})"));
  EXPECT_EQ(o.at("drift").at(0).at("finding"), 9);
  EXPECT_EQ(o.at("drift").at(0).at("action"), "opened");
  EXPECT_TRUE(o.at("drift").at(1).at("expected").is_null());
  EXPECT_TRUE(o.at("drift").at(1).at("finding").is_null());
  EXPECT_EQ(o.at("drift").at(1).at("action"), "still_open");
  EXPECT_EQ(o.at("filled"), d.fill);
  EXPECT_EQ(o.at("name"), hostile.c_str());
  EXPECT_EQ(o.at("attributes"), d.create_attributes);
  EXPECT_EQ(o.at("notes"), d.notes);
  EXPECT_EQ(o.at("dry_run"), true);
  // ToJson is the same text read back; absent parts are absent or null, as the API shows them.
  Decision plain;
  plain.label = "obs";
  const json::object p = plain.ToJson();
  EXPECT_TRUE(p.at("ci").is_null());
  EXPECT_TRUE(p.at("identify_by").is_null());
  EXPECT_FALSE(p.contains("candidates"));
  EXPECT_FALSE(p.contains("filled"));
  EXPECT_FALSE(p.contains("notes"));
  EXPECT_FALSE(p.contains("dry_run"));
  EXPECT_TRUE(p.at("drift").as_array().empty());
}

TEST(SameValue, ComparesWhatMeansTheSame) {
  EXPECT_TRUE(SameValue(json::value(2048), json::value(2048.0)));
  EXPECT_TRUE(SameValue(json::parse("[22, 443]"), json::parse("[443, 22]")));
  EXPECT_FALSE(SameValue(json::parse("[22, 443]"), json::parse("[22]")));
  EXPECT_TRUE(SameValue(json::value("AA-BB-CC-DD-EE-FF"), json::value("aa:bb:cc:dd:ee:ff")));
  EXPECT_TRUE(SameValue(json::value("2001:DB8:0:0::1"), json::value("2001:db8::1")));
  EXPECT_FALSE(SameValue(json::value("Debian"), json::value("debian")));
  EXPECT_FALSE(SameValue(json::value("1"), json::value(1)));
  // Objects whatever their key order (jsonb stores keys shorter first), numbers inside them by
  // value, also as list elements; a different value is still different.
  const json::value observed = json::parse(R"([{"port": 22, "protocol": "tcp", "name": "ssh"}])");
  EXPECT_TRUE(
      SameValue(observed, json::parse(R"([{"name": "ssh", "port": 22.0, "protocol": "tcp"}])")));
  EXPECT_TRUE(
      SameValue(observed.at(0), json::parse(R"({"name": "ssh", "protocol": "tcp", "port": 22})")));
  EXPECT_TRUE(SameValue(json::parse(R"({"a": {"y": [1, {"q": 2, "p": 1}], "x": 1}})"),
                        json::parse(R"({"a": {"x": 1.0, "y": [1, {"p": 1, "q": 2}]}})")));
  EXPECT_FALSE(
      SameValue(observed, json::parse(R"([{"name": "ssh", "port": 2222, "protocol": "tcp"}])")));
  EXPECT_FALSE(SameValue(observed.at(0), json::parse(R"({"name": "ssh", "port": 22})")));
  EXPECT_FALSE(SameValue(json::parse(R"({"y": [1, 2]})"), json::parse(R"({"y": [2, 1]})")));
  EXPECT_FALSE(SameValue(json::parse(R"({"k": "v"})"), json::parse(R"({"k": "V"})")));
}

}  // namespace
}  // namespace cmdb::discovery
