#include "import/relation_writer.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "import/ci_writer.hpp"
#include "model/error.hpp"
#include "model/json.hpp"
#include "store/import_store.hpp"
#include "store/transaction.hpp"

namespace cmdb::import {

using model::CiId;
using model::FieldErrors;
namespace json = boost::json;

namespace {

struct RelationRow {
  std::string label;
  store::NewRelation relation;
};

// CIs by (type, name), for the ends named that way whose type this import adds no CI to and
// the instance does not keep (EndsKept): looked up in one query for the batch rather than by
// loading every CI of the type into the identity index (600,000 VMs to resolve 50,000 names).
struct NameLookup {
  std::set<std::string, std::less<>> types;  // the types resolved here
  std::map<std::pair<std::string, std::string>, IdentityIndex::Ids> cis;
};

// What the batch's ends name by name or identity of the known types the import writes no CI
// of (those are in its identity index): each such type, true where an end names its CIs by
// identity, and the (type, name) of each end by name.
struct NamedEnds {
  std::map<std::string, bool, std::less<>> types;
  std::vector<std::pair<std::string_view, std::string_view>> by_name;
};

NamedEnds ReadNamedEnds(const ImportState& state) {
  NamedEnds named;
  for (const json::value& item : *state.relations) {
    const json::object* o = item.if_object();
    if (o == nullptr) continue;
    for (const char* end : {"from", "to"}) {
      const json::value* v = o->if_contains(end);
      const json::object* e = v != nullptr ? v->if_object() : nullptr;
      const json::value* type = e != nullptr ? e->if_contains("type") : nullptr;
      if (type == nullptr || !type->is_string()) continue;
      const std::string_view type_name = type->get_string();
      if (!state.types.contains(type_name) || state.imported_types.contains(type_name)) continue;
      const json::value* identity = e->if_contains("identity");
      named.types[std::string(type_name)] |= identity != nullptr && identity->is_object();
      const json::value* name = e->if_contains("name");
      if (identity == nullptr && name != nullptr && name->is_string()) {
        named.by_name.emplace_back(type_name, name->get_string());
      }
    }
  }
  return named;
}

// The ends by name of `named` whose types the instance does not keep, looked up in one query.
NameLookup LookUpNames(ImportState& state, const NamedEnds& named, const EndsKept& kept) {
  std::vector<std::string> types;
  std::vector<std::string> names;
  NameLookup lookup;
  for (const auto& [type, name] : named.by_name) {
    if (kept.Of(type) != nullptr) continue;
    lookup.types.emplace(type);
    types.emplace_back(type);
    names.emplace_back(name);
  }
  for (auto& [type, name, id] : store::ImportStore(state.db).CisByName(types, names)) {
    lookup.cis[{std::move(type), std::move(name)}].push_back(id);
  }
  return lookup;
}

// Resolves a relation end: a CI id, or {"type", "name"} / {"type", "identity"}; nullopt with
// the reason in `message` otherwise.
std::optional<CiId> ResolveEnd(ImportState& state, const EndsKept& kept, const NameLookup& by_name,
                               const json::value& end, std::string& message) {
  if (end.is_int64() && end.get_int64() > 0) return end.get_int64();
  if (!end.is_object()) {
    message = R"(must be a CI id or an object {"type", "name"} or {"type", "identity"})";
    return std::nullopt;
  }
  const json::object& o = end.get_object();
  const json::value* type_name = o.if_contains("type");
  auto type = type_name != nullptr && type_name->is_string()
                  ? state.types.find(std::string(type_name->get_string()))
                  : state.types.end();
  if (type == state.types.end()) {
    message = "names no known CI type";
    return std::nullopt;
  }
  const json::value* identity = o.if_contains("identity");
  const json::value* name = o.if_contains("name");
  const IdentityIndex::Ids* found = nullptr;
  int used_set = 0;
  const IdentityIndex* kept_index = kept.Of(type->first);
  if (identity != nullptr) {
    if (!identity->is_object()) {
      message = "identity must be an object of identifying attributes";
      return std::nullopt;
    }
    const std::vector<std::string> keys = IdentityIndex::Keys(type->second, identity->get_object());
    if (kept_index != nullptr) {
      found = kept_index->Match(type->second, "\x01", keys, used_set);
    } else {
      state.index.Load(state.db, type->second, 0);
      found = state.index.Match(type->second, "\x01", keys, used_set);
    }
  } else if (name != nullptr && name->is_string()) {
    std::string text(name->get_string());
    if (kept_index != nullptr) {
      found = kept_index->Match(type->second, text,
                                IdentityIndex::Keys(type->second, json::object{}), used_set);
    } else if (by_name.types.contains(type->first)) {
      auto it = by_name.cis.find({type->first, std::move(text)});
      if (it != by_name.cis.end()) found = &it->second;
    } else {
      state.index.Load(state.db, type->second, 0);
      found = state.index.Match(type->second, text,
                                IdentityIndex::Keys(type->second, json::object{}), used_set);
    }
  } else {
    message = R"(must give "name" or "identity")";
    return std::nullopt;
  }
  const std::size_t matched = found != nullptr ? found->size() : 0;
  if (matched != 1) {
    message = matched == 0 ? "matches no CI"
                           : "matches " + std::to_string(matched) +
                                 " CIs; name it by id or a unique identity";
    return std::nullopt;
  }
  CiId id = found->front();
  if (id < 0) id = state.NewCiId(id);  // a CI this import created
  if (id == 0) {                       // a new CI not written: its row was rejected
    message = "names a CI row of this import that was rejected";
    return std::nullopt;
  }
  return id;
}

// Reads one relation row; problems go to `errors`. The CIs its ends name go to `ends`, those
// given as ids to `by_id` too: when the batch cannot be written at once, their existence is
// checked for all rows together.
RelationRow ReadRelation(ImportState& state, const EndsKept& kept, const NameLookup& by_name,
                         const json::object& o, const std::set<std::string>& relation_types,
                         std::set<CiId>& ends, std::set<CiId>& by_id, FieldErrors& errors) {
  RelationRow row;
  for (const auto& [key, unused] : o) {
    if (key != "type" && key != "from" && key != "to" && key != "attributes") {
      errors.Add(std::string(key), "is not a field of a relation");
    }
  }
  const json::value* type = o.if_contains("type");
  if (type == nullptr || !type->is_string() ||
      !relation_types.contains(std::string(type->get_string()))) {
    errors.Add("type", "must name a known relation type");
  } else {
    row.relation.type = type->get_string();
  }
  for (const char* end : {"from", "to"}) {
    const json::value* v = o.if_contains(end);
    std::string message;
    std::optional<CiId> id = v != nullptr ? ResolveEnd(state, kept, by_name, *v, message)
                                          : (message = "is required", std::nullopt);
    if (!id) {
      errors.Add(end, message);
    } else {
      (std::string_view(end) == "from" ? row.relation.from : row.relation.to) = *id;
      ends.insert(*id);
      if (v->is_int64()) by_id.insert(*id);
    }
  }
  if (row.relation.from != 0 && row.relation.from == row.relation.to) {
    errors.Add("to", "a CI cannot relate to itself");
  }
  if (const json::value* attrs = o.if_contains("attributes");
      attrs != nullptr && !attrs->is_null()) {
    if (!attrs->is_object()) {
      errors.Add("attributes", "must be an object");
    } else if (model::ContainsNul(*attrs)) {
      errors.Add("attributes", "must not contain the NUL character (\\u0000)");
    } else {
      row.relation.attributes = attrs->get_object();
    }
  }
  return row;
}

// Drops the rows naming a CI that does not exist (each reported).
void DropMissingEnds(ImportState& state, std::vector<RelationRow>& rows, const std::set<CiId>& ends,
                     const std::set<CiId>& by_id) {
  if (ends.empty()) return;
  const std::set<CiId> present =
      store::ImportStore(state.db).ExistingCis(std::vector<CiId>(ends.begin(), ends.end()));
  std::vector<RelationRow> kept;
  for (RelationRow& row : rows) {
    bool ok = true;
    for (CiId id : {row.relation.from, row.relation.to}) {
      if (!present.contains(id)) {
        // An end by name or identity matched a CI deleted since (after the look-up, or
        // unseen by what the instance keeps).
        state.AddError({row.label, row.relation.from == id ? "from" : "to",
                        by_id.contains(id)
                            ? "CI " + std::to_string(id) + " does not exist"
                            : "matched CI " + std::to_string(id) + ", which no longer exists"});
        ok = false;
        break;
      }
    }
    if (ok) {
      kept.push_back(std::move(row));
    } else {
      ++state.relation_counts.rejected;
    }
  }
  rows = std::move(kept);
}

// Each (type, from, to) key of `rows` once, in the order of the unique index (from, to,
// type): the look-ups of recorded ones and the inserts then walk the index in order.
std::vector<const store::NewRelation*> UniqueKeys(const std::vector<RelationRow>& rows) {
  std::vector<const store::NewRelation*> keys;
  keys.reserve(rows.size());
  for (const RelationRow& row : rows) keys.push_back(&row.relation);
  auto key = [](const store::NewRelation* r) { return std::tie(r->from, r->to, r->type); };
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const auto* a, const auto* b) { return key(a) < key(b); });
  keys.erase(std::unique(keys.begin(), keys.end(),
                         [&](const auto* a, const auto* b) { return key(a) == key(b); }),
             keys.end());
  return keys;
}

// At most `n` of `keys`, evenly spread.
std::vector<const store::NewRelation*> Sample(const std::vector<const store::NewRelation*>& keys,
                                              std::size_t n) {
  if (keys.size() <= n) return keys;
  std::vector<const store::NewRelation*> sample;
  sample.reserve(n);
  for (std::size_t i = 0; i < n; ++i) sample.push_back(keys[i * keys.size() / n]);
  return sample;
}

}  // namespace

void WriteRelations(ImportState& state) {
  if (state.relations == nullptr || state.relations->empty()) return;
  store::ImportStore store(state.db);
  auto t = std::chrono::steady_clock::now();
  const std::set<std::string> relation_types = store.RelationTypeNames();
  // Held until the batch's ends are resolved.
  const NamedEnds named = ReadNamedEnds(state);
  std::optional<EndsKept> kept = TakeKeptForEnds(state, named.types);
  const NameLookup by_name = LookUpNames(state, named, *kept);
  std::vector<RelationRow> rows;
  std::set<CiId> ends;
  std::set<CiId> by_id;
  std::size_t index = state.relation_offset;
  for (const json::value& item : *state.relations) {
    const std::string label = "relations[" + std::to_string(index++) + "]";
    if (!item.is_object()) {
      state.AddError({label, "", "a relation must be an object"});
      ++state.relation_counts.rejected;
      continue;
    }
    FieldErrors errors;
    RelationRow row =
        ReadRelation(state, *kept, by_name, item.get_object(), relation_types, ends, by_id, errors);
    if (!errors.empty()) {
      state.Report(label, errors);
      ++state.relation_counts.rejected;
      continue;
    }
    row.label = label;
    rows.push_back(std::move(row));
  }
  kept.reset();
  t = state.Phase("relations.read", t);
  if (rows.empty()) return;
  std::vector<const store::NewRelation*> candidates = UniqueKeys(rows);
  // The usual bulk load writes new relations between existing CIs: when a sample of the keys
  // is new, the whole batch is written at once, its ends checked by the insert itself
  // (0015_relation_checks_per_statement.sql). A recorded relation, a missing CI or a
  // concurrent writer of the same keys fails that attempt, and the batch is checked row by
  // row instead.
  if (store.ExistingRelations(Sample(candidates, 64)).empty()) {
    try {
      store::Transaction attempt(state.db);
      store.InsertRelations(candidates, state.now, state.options.ctx);
      attempt.Commit();
      state.Phase("relations.write", t);
      state.relation_counts.created += static_cast<int>(candidates.size());
      state.relation_counts.unchanged += static_cast<int>(rows.size() - candidates.size());
      return;
    } catch (const model::Error& e) {
      if (e.code() != model::ErrorCode::kAlreadyExists &&
          e.code() != model::ErrorCode::kFailedPrecondition) {
        throw;
      }
    }
    t = state.Phase("relations.attempt", t);
  }
  DropMissingEnds(state, rows, ends, by_id);
  t = state.Phase("relations.check_ends", t);
  if (rows.empty()) return;
  candidates = UniqueKeys(rows);
  // Relations recorded already, or twice in this document, are unchanged.
  const std::set<std::tuple<std::string, CiId, CiId>> present = store.ExistingRelations(candidates);
  std::vector<const store::NewRelation*> fresh;
  fresh.reserve(candidates.size());
  for (const store::NewRelation* r : candidates) {
    if (!present.contains(std::tie(r->type, r->from, r->to))) fresh.push_back(r);
  }
  t = state.Phase("relations.existing", t);
  store.InsertRelations(fresh, state.now, state.options.ctx);
  state.Phase("relations.write", t);
  state.relation_counts.created += static_cast<int>(fresh.size());
  state.relation_counts.unchanged += static_cast<int>(rows.size() - fresh.size());
}

}  // namespace cmdb::import
