#include "discovery/reconcile.hpp"

#include <algorithm>
#include <functional>
#include <limits>

#include <arpa/inet.h>

#include "model/error.hpp"
#include "model/json.hpp"
#include "model/parallel.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::FieldErrors;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return std::string(s);
}

// Lookup key of one identifying value: case-insensitive.
std::string KeyText(const json::value& v) {
  if (v.is_string()) return "s" + Lower(model::CanonicalAttributeString(Trim(v.get_string())));
  return model::CanonicalAttributeText(v);
}

json::array SetJson(const std::vector<std::string>& set) {
  json::array out;
  for (const auto& name : set) out.emplace_back(name);
  return out;
}

}  // namespace

bool IsLoopbackAddress(std::string_view s) {
  if (s.rfind("127.", 0) == 0) {
    in_addr addr{};
    return inet_pton(AF_INET, std::string(s).c_str(), &addr) == 1;
  }
  if (s.find(':') != std::string_view::npos) {
    in6_addr addr{};
    return inet_pton(AF_INET6, std::string(s).c_str(), &addr) == 1 && IN6_IS_ADDR_LOOPBACK(&addr);
  }
  return false;
}

// --- junk ---

const std::vector<std::string>& JunkRules::BuiltIn() {
  static const std::vector<std::string> values = {"to be filled by o.e.m.",
                                                  "to be filled by oem",
                                                  "default string",
                                                  "system serial number",
                                                  "system product name",
                                                  "chassis serial number",
                                                  "not specified",
                                                  "not applicable",
                                                  "not available",
                                                  "na",
                                                  "n/a",
                                                  "none",
                                                  "null",
                                                  "nil",
                                                  "unknown",
                                                  "undefined",
                                                  "0",
                                                  "123456789",
                                                  "1234567890",
                                                  "invalid",
                                                  "empty",
                                                  "serial",
                                                  "oem",
                                                  "o.e.m.",
                                                  "localhost",
                                                  "localhost.localdomain",
                                                  "localdomain",
                                                  "0.0.0.0",
                                                  "ff:ff:ff:ff:ff:ff",
                                                  "03000200-0400-0500-0006-000700080009",
                                                  "00000000-0000-0000-0000-000000000000",
                                                  "ffffffff-ffff-ffff-ffff-ffffffffffff"};
  return values;
}

JunkRules::JunkRules(const std::vector<std::string>& extra, bool loopback_identities)
    : values_(BuiltIn()), loopback_identities_(loopback_identities) {
  for (const auto& v : extra) values_.push_back(Lower(Trim(v)));
}

std::string JunkRules::Why(const json::value& value) const {
  if (value.is_null()) return "is null";
  if (value.is_number() && value.to_number<double>() == 0) return "is 0";
  if (!value.is_string()) return {};
  const std::string text = Lower(Trim(value.get_string()));
  if (text.empty()) return "is empty";
  if (std::find(values_.begin(), values_.end(), text) != values_.end()) {
    return "'" + std::string(value.get_string()) + "' is a placeholder, not an identifier";
  }
  // "0000000", "xxxxxx", "------", "000000000000" and all-zero MACs.
  if (std::all_of(text.begin(), text.end(),
                  [&](char c) { return c == text[0] || c == ':' || c == '-' || c == '.'; }) &&
      std::string_view("0x*-.#?:").find(text[0]) != std::string_view::npos) {
    return "'" + std::string(value.get_string()) + "' is a placeholder, not an identifier";
  }
  if (!loopback_identities_ && IsLoopbackAddress(text)) {
    return "'" + std::string(value.get_string()) +
           "' is a loopback address, which every host has (set loopback_identities for scans "
           "of 127.0.0.0/8)";
  }
  return {};
}

// --- decisions ---

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kMatched:
      return "matched";
    case Outcome::kCreated:
      return "created";
    case Outcome::kUnmatched:
      return "unmatched";
    case Outcome::kAmbiguous:
      return "ambiguous";
    case Outcome::kRejected:
      return "rejected";
  }
  return "rejected";
}

std::string_view FindingActionName(FindingAction action) {
  switch (action) {
    case FindingAction::kOpen:
      return "opened";
    case FindingAction::kUpdate:
      return "updated";
    case FindingAction::kUnchanged:
      return "still_open";
    case FindingAction::kResolve:
      return "resolved";
    case FindingAction::kSuppressed:
      return "ignored_before";
  }
  return "opened";
}

json::object Decision::ToJson() const {
  std::string text;
  AppendJson(text);
  return model::ParseStoredJson(text).as_object();
}

void Decision::AppendJson(std::string& out, bool dry_run) const {
  auto ids = [&out](const std::vector<CiId>& list) {
    out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(list[i]);
    }
    out += ']';
  };
  out += "{\"seq\":";
  out += std::to_string(seq);
  out += ",\"observation\":";
  model::AppendJsonString(out, label);
  out += ",\"type\":";
  model::AppendJsonString(out, type);
  out += R"(,"outcome":")";
  out += OutcomeName(outcome);
  out += R"(","ci":)";
  out += ci > 0 ? std::to_string(ci) : "null";
  out += ",\"identify_by\":";
  if (matched_by.empty()) {
    out += "null";
  } else {
    out += '[';
    for (std::size_t i = 0; i < matched_by.size(); ++i) {
      if (i > 0) out += ',';
      model::AppendJsonString(out, matched_by[i]);
    }
    out += ']';
  }
  if (!candidates.empty()) {
    out += ",\"candidates\":";
    ids(candidates);
  }
  out += ",\"tried\":";
  model::AppendJson(out, tried);
  out += ",\"reason\":";
  model::AppendJsonString(out, reason);
  out += ",\"drift\":[";
  for (std::size_t i = 0; i < findings.size(); ++i) {
    const FindingChange& f = findings[i];
    out += i > 0 ? ",{\"attribute\":" : "{\"attribute\":";
    model::AppendJsonString(out, f.attribute);
    out += ",\"expected\":";
    model::AppendJson(out, f.expected);
    out += ",\"actual\":";
    model::AppendJson(out, f.actual);
    out += ",\"finding\":";
    out += f.finding_id > 0 ? std::to_string(f.finding_id) : "null";
    out += R"(,"action":")";
    out += FindingActionName(f.action);
    out += "\"}";
  }
  out += ']';
  if (!fill.empty()) {
    out += ",\"filled\":";
    model::AppendJson(out, fill);
  }
  if (outcome == Outcome::kCreated) {
    out += ",\"name\":";
    model::AppendJsonString(out, create_name);
    out += ",\"attributes\":";
    model::AppendJson(out, create_attributes);
  }
  if (!notes.empty()) {
    out += ",\"notes\":";
    model::AppendJson(out, notes);
  }
  if (dry_run) out += ",\"dry_run\":true";
  out += '}';
}

Reconciler::Reconciler(SourceConfig config, JunkRules junk)
    : config_(std::move(config)), junk_(std::move(junk)) {}

const std::string& Reconciler::TypeOf(const Observation& observation) const {
  return observation.type.empty() ? config_.ci_type : observation.type;
}

std::string Reconciler::Key(const std::vector<std::string>& set, const json::object& values,
                            std::string& why) const {
  std::string key;
  for (const auto& name : set) {
    const json::value* v = values.if_contains(name);
    if (v == nullptr || v->is_null()) {
      why = "no " + name;
      return {};
    }
    if (std::string w = junk_.Why(*v); !w.empty()) {
      why = name;
      why += " ";
      why += w;
      return {};
    }
    key += KeyText(*v);
    key += '\x1f';
  }
  return key;
}

void Reconciler::AddType(model::CiType type, std::vector<Candidate> candidates) {
  if (candidates.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw model::Error(model::ErrorCode::kInvalidArgument,
                       "too many CIs of type " + type.name + " for one run");
  }
  TypeIndex& index = types_[type.name];
  const std::size_t set_count = type.identify_by.size();
  index.sets.assign(set_count, {});
  index.pending.assign(set_count, {});
  index.set_json.clear();
  index.set_text.clear();
  for (const auto& set : type.identify_by) {
    index.set_json.push_back(SetJson(set));
    index.set_text.push_back(model::ToJsonText(index.set_json.back()));
  }
  // Every candidate's key under every set, on all cores; then one sorted array per set.
  std::vector<std::string> keys(candidates.size() * set_count);
  model::ParallelFor(
      candidates.size(),
      [&](std::size_t i) {
        for (std::size_t s = 0; s < set_count; ++s) {
          std::string why;
          keys[i * set_count + s] = Key(type.identify_by[s], candidates[i].attributes, why);
        }
      },
      nullptr);
  for (std::size_t s = 0; s < set_count; ++s) {
    SetIndex& set = index.sets[s];
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const std::string& key = keys[i * set_count + s];
      if (key.empty()) continue;
      set.entries.push_back({std::hash<std::string_view>{}(key), static_cast<std::uint32_t>(i),
                             static_cast<std::uint32_t>(key.size()), set.text.size()});
      set.text += key;
    }
    std::sort(set.entries.begin(), set.entries.end(), [](const auto& a, const auto& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.candidate < b.candidate;
    });
  }
  for (const auto& [name, spec] : type.attributes) {
    model::CiType one;
    one.name = type.name;
    one.attributes.emplace(name, spec);
    one.attributes.at(name).required = false;
    index.single.emplace(name, std::move(one));
  }
  index.type = std::move(type);
  index.candidates = std::move(candidates);
}

std::vector<std::size_t> Reconciler::SetIndex::Find(std::string_view key) const {
  const std::uint64_t hash = std::hash<std::string_view>{}(key);
  auto it = std::lower_bound(entries.begin(), entries.end(), hash,
                             [](const Entry& e, std::uint64_t h) { return e.hash < h; });
  std::vector<std::size_t> out;
  for (; it != entries.end() && it->hash == hash; ++it) {
    if (std::string_view(text).substr(it->begin, it->size) == key) out.push_back(it->candidate);
  }
  return out;
}

void Reconciler::AddOpenFinding(CiId ci, const std::string& attribute, KnownFinding finding) {
  open_[{ci, attribute}] = std::move(finding);
}

void Reconciler::AddIgnoredFinding(CiId ci, const std::string& attribute, KnownFinding finding) {
  ignored_[{ci, attribute}] = std::move(finding);
}

Decision Reconciler::Decide(const Observation& observation, int seq) {
  return Settle(Prepare(observation, seq));
}

Reconciler::Draft Reconciler::Prepare(const Observation& observation, int seq) const {
  Draft draft;
  Decision& d = draft.decision;
  d.seq = seq;
  d.label = observation.label;
  d.type = TypeOf(observation);
  if (!observation.skip_reason.empty()) {
    d.outcome = Outcome::kRejected;
    d.reason = observation.skip_reason;
    return draft;
  }
  auto it = types_.find(d.type);
  if (it == types_.end()) {
    d.outcome = Outcome::kRejected;
    d.reason = "unknown CI type '" + d.type + "'";
    return draft;
  }
  const TypeIndex& index = it->second;
  const model::CiType& type = index.type;

  // The observed values under their CI attribute names; identity values win.
  json::object values(observation.attributes.size() + observation.identity.size());
  auto put = [&](std::string_view key, const json::value& value) {
    if (auto m = config_.mapping.find(key); m != config_.mapping.end()) {
      if (m->second) values[*m->second] = value;
      return;
    }
    values[key] = value;
  };
  for (const auto& [k, v] : observation.attributes) put(k, v);
  for (const auto& [k, v] : observation.identity) put(k, v);

  // Assumes no earlier observation of the run matched or registers what this one names:
  // Settle corrects that.
  bool any_complete = false;
  for (std::size_t s = 0; s < type.identify_by.size(); ++s) {
    const auto& set = type.identify_by[s];
    std::string why;
    std::string key = Key(set, values, why);
    if (key.empty()) {
      d.tried.push_back(json::object{{"identify_by", index.set_json[s]}, {"result", why}});
      draft.keys.emplace_back();
      continue;
    }
    any_complete = true;
    const std::vector<std::size_t> hits = index.sets[s].Find(key);
    draft.keys.push_back(std::move(key));
    if (hits.empty()) {
      d.tried.push_back(json::object{{"identify_by", index.set_json[s]}, {"result", "no CI"}});
      continue;
    }
    draft.hit = true;
    if (hits.size() > 1) {
      d.outcome = Outcome::kAmbiguous;
      for (auto i : hits) d.candidates.push_back(index.candidates[i].id);
      d.tried.push_back(json::object{{"identify_by", index.set_json[s]},
                                     {"result", std::to_string(hits.size()) + " CIs"}});
      d.reason = "identify_by " + index.set_text[s] + " matches " + std::to_string(hits.size()) +
                 " CIs; they are never merged: resolve the duplicate records";
      return draft;
    }
    const Candidate& ci = index.candidates[hits.front()];
    d.tried.push_back(json::object{{"identify_by", index.set_json[s]},
                                   {"result", "CI " + std::to_string(ci.id)}});
    d.outcome = Outcome::kMatched;
    d.ci = ci.id;
    d.matched_by = set;
    d.reason = "matched CI " + std::to_string(ci.id) + " (" + ci.name + ") by identify_by " +
               index.set_text[s];
    Compare(ci, Usable(index, values, &ci, d), d);
    return draft;
  }
  if (!any_complete) {
    d.outcome = Outcome::kUnmatched;
    d.reason = "no identifier set of " + type.name +
               " is complete, so nothing can identify this asset; not registered";
    return draft;
  }
  if (config_.on_unmatched == OnUnmatched::kReport) {
    d.outcome = Outcome::kUnmatched;
    d.reason = "no CI matches; reported as an unregistered asset (on_unmatched=report)";
    return draft;
  }
  d.outcome = Outcome::kCreated;
  const json::object usable = Usable(index, values, nullptr, d);
  d.create_attributes = usable;
  std::string name = observation.name;
  if (const json::value* n = values.if_contains("name");
      name.empty() && n != nullptr && n->is_string()) {
    name = std::string(n->get_string());
  }
  for (const char* key : {"fqdn", "hostname", "ip"}) {
    if (!name.empty()) break;
    if (const json::value* v = usable.if_contains(key); v != nullptr && v->is_string()) {
      name = std::string(v->get_string());
    }
  }
  d.create_name = name.empty() ? observation.label : name;
  d.reason = "no CI matches; registered as a new " + type.name + " (on_unmatched=create)";
  return draft;
}

Decision Reconciler::Settle(Draft draft) {
  Decision& d = draft.decision;
  if (draft.keys.empty()) return std::move(d);  // rejected, or a type without identifier sets
  TypeIndex& index = types_.find(d.type)->second;
  // What Prepare computed for an outcome this observation does not get.
  auto discard = [&d] {
    d.ci = 0;
    d.matched_by.clear();
    d.candidates.clear();
    d.findings.clear();
    d.fill.clear();
    d.notes.clear();
    d.create_name.clear();
    d.create_attributes.clear();
  };
  // A set that found no CI may name an asset an earlier observation registers.
  const std::size_t missed = draft.hit ? draft.keys.size() - 1 : draft.keys.size();
  for (std::size_t s = 0; s < missed; ++s) {
    if (draft.keys[s].empty() || index.pending[s].empty()) continue;
    auto p = index.pending[s].find(draft.keys[s]);
    if (p == index.pending[s].end()) continue;
    discard();
    d.outcome = Outcome::kAmbiguous;
    d.tried.resize(s);
    d.tried.push_back(
        json::object{{"identify_by", index.set_json[s]},
                     {"result", "the asset of observation #" + std::to_string(p->second)}});
    d.reason = "identify_by " + index.set_text[s] + " names the same asset as observation #" +
               std::to_string(p->second) + ", which this run registers; not applied twice";
    return std::move(d);
  }
  if (d.outcome == Outcome::kMatched) {
    auto [seen, first] = matched_.try_emplace(d.ci, d.seq);
    if (!first) {
      const CiId ci = d.ci;
      discard();
      d.outcome = Outcome::kAmbiguous;
      d.candidates.push_back(ci);
      d.reason = "CI " + std::to_string(ci) + " was already matched by observation #" +
                 std::to_string(seen->second) + " of this run; not applied twice";
    }
  } else if (d.outcome == Outcome::kCreated) {
    for (std::size_t s = 0; s < draft.keys.size(); ++s) {
      if (!draft.keys[s].empty()) index.pending[s].emplace(std::move(draft.keys[s]), d.seq);
    }
  }
  return std::move(d);
}

json::object Reconciler::Usable(const TypeIndex& index, const json::object& values,
                                const Candidate* record, Decision& d) const {
  json::object usable;
  for (const auto& [k, v] : values) {
    if (k == "name") continue;
    // A value the record holds already is valid and not worth a note.
    if (record != nullptr) {
      const json::value* recorded = record->attributes.if_contains(k);
      if (recorded != nullptr && SameValue(*recorded, v)) {
        usable[k] = v;
        continue;
      }
    }
    auto single = index.single.find(k);
    if (single == index.single.end()) {
      d.notes.push_back(
          json::object{{"attribute", k}, {"note", "not an attribute of " + index.type.name}});
      continue;
    }
    if (v.is_string()) {
      if (std::string why = junk_.Why(v);
          !why.empty() && why.find("loopback") == std::string::npos) {
        d.notes.push_back(
            json::object{{"attribute", k}, {"note", "junk value not compared: " + why}});
        continue;
      }
    }
    FieldErrors errors;
    model::ValidateAttributes(single->second, json::object{{k, v}}, errors, "");
    if (!errors.empty()) {
      d.notes.push_back(json::object{
          {"attribute", k},
          {"note", "observed value not valid for the type: " + errors.items()[0].message}});
      continue;
    }
    usable[k] = v;
  }
  return usable;
}

void Reconciler::Compare(const Candidate& ci, const json::object& observed, Decision& d) const {
  for (const auto& [k, v] : observed) {
    const std::string attribute(k);
    const json::value* recorded = ci.attributes.if_contains(k);
    const bool missing = recorded == nullptr || recorded->is_null();
    if (missing && config_.fill_missing) {
      d.fill[k] = v;
      continue;
    }
    const json::value expected = missing ? json::value(nullptr) : *recorded;
    auto open = open_.find({ci.id, attribute});
    if (!missing && SameValue(expected, v)) {
      if (open != open_.end()) {
        d.findings.push_back({FindingAction::kResolve, attribute, expected, v, open->second.id});
      }
      continue;
    }
    if (open != open_.end()) {
      const bool same =
          SameValue(open->second.actual, v) && SameValue(open->second.expected, expected);
      d.findings.push_back({same ? FindingAction::kUnchanged : FindingAction::kUpdate, attribute,
                            expected, v, open->second.id});
      continue;
    }
    auto ignored = ignored_.find({ci.id, attribute});
    if (ignored != ignored_.end() && SameValue(ignored->second.actual, v) &&
        SameValue(ignored->second.expected, expected)) {
      d.findings.push_back(
          {FindingAction::kSuppressed, attribute, expected, v, ignored->second.id});
      continue;
    }
    d.findings.push_back({FindingAction::kOpen, attribute, expected, v, 0});
  }
}

}  // namespace cmdb::discovery
