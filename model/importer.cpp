#include "model/importer.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <soci/soci.h>

#include "model/ci_type_repository.hpp"
#include "model/csv.hpp"
#include "model/db_errors.hpp"
#include "model/db_query.hpp"
#include "model/json.hpp"
#include "model/parallel.hpp"

namespace cmdb::model {
namespace {

constexpr std::size_t kMaxImportRows = 1000000;

enum class Action { kRejected, kCreate, kUpdate, kUnchanged };

struct CiRow {
  std::string label;
  // The row as given, for the merge into an existing CI: the caller's document, which
  // outlives the import, or `owned` (a CSV line). Not copied for the rows that create a CI.
  const json::value* given = nullptr;
  std::unique_ptr<json::value> owned;
  std::vector<std::string> keys;  // identity keys under the type's identify_by sets
  ConfigurationItem draft;
  Action action = Action::kRejected;
  CiId id = 0;  // > 0: existing or allocated; < 0: -(row + 1) until ids are allocated
  ConfigurationItem current;
  ConfigurationItem next;
  json::object diff;
};

// Where existing (and newly imported) CIs are found by identity, per type.
class IdentityIndex {
 public:
  // Key of identifier set `set` in `attributes`, or "" when a value is missing or empty.
  static std::string Key(const std::vector<std::string>& set, const json::object& attributes) {
    std::string key;
    for (const auto& name : set) {
      const json::value* v = attributes.if_contains(name);
      if (v == nullptr || v->is_null()) return {};
      if (v->is_string()) {
        if (v->get_string().empty()) return {};
        key += 's';
        key.append(v->get_string().data(), v->get_string().size());
      } else {
        key += 'j';
        key += ToJsonText(*v);
      }
      key += '\x1f';
    }
    return key;
  }

  // The key under each of the type's identifier sets ("" where one is incomplete): computed
  // once per row, for the match and, when the row creates a CI, for its own entry.
  static std::vector<std::string> Keys(const CiType& type, const json::object& attributes) {
    std::vector<std::string> keys;
    keys.reserve(type.identify_by.size());
    for (const auto& set : type.identify_by) keys.push_back(Key(set, attributes));
    return keys;
  }

  void Load(soci::session& sql, const CiType& type, std::size_t expected_new) {
    if (loaded_.contains(type.name)) return;
    loaded_.insert(type.name);
    std::set<std::string> names;
    for (const auto& set : type.identify_by) names.insert(set.begin(), set.end());
    std::vector<std::string> list(names.begin(), names.end());
    // One column per identifying attribute (a per-row aggregate into one object cost
    // PostgreSQL twice as much), each value parsed and the keys computed on all cores.
    std::string columns;
    PgParams params{P(type.name)};
    for (const std::string& name : list) {
      params.push_back(P(name));
      columns += ", (attributes -> $" + std::to_string(params.size()) + "::text)::text";
    }
    PgResult r = Query(
        sql, "SELECT id, name" + columns + " FROM configuration_items WHERE type = $1", params);
    const auto n = static_cast<std::size_t>(r.rows());
    std::vector<std::vector<std::string>> keys(n);
    ParallelFor(n,
                [&](std::size_t i) {
                  json::object attrs;
                  for (std::size_t a = 0; a < list.size(); ++a) {
                    const int row = static_cast<int>(i);
                    const int col = static_cast<int>(a) + 2;
                    if (!r.IsNull(row, col)) attrs[list[a]] = ParseJson(r.Text(row, col));
                  }
                  keys[i] = Keys(type, attrs);
                },
                {});
    // Sized once for the CIs there and the rows that may add theirs: no rehash on the way.
    // Each map (names, then one per identifier set) is filled by one task, on both cores.
    PerType& per_type = by_type_[type.name];
    const std::size_t expected = n + expected_new;
    per_type.sets.resize(type.identify_by.size());
    ParallelTasks(per_type.sets.size() + 1, [&](std::size_t t) {
      if (t == 0) {
        per_type.names.reserve(expected);
        for (std::size_t i = 0; i < n; ++i) {
          const int row = static_cast<int>(i);
          per_type.names[std::string(r.Text(row, 1))].push_back(r.Int(row, 0));
        }
        return;
      }
      const std::size_t s = t - 1;
      auto& set = per_type.sets[s];
      set.reserve(expected);
      for (std::size_t i = 0; i < n; ++i) {
        // Each key is read by this task only.
        if (!keys[i][s].empty())
          set[std::move(keys[i][s])].push_back(r.Int(static_cast<int>(i), 0));
      }
    });
  }

  void Add(const CiType& type, CiId id, const std::string& name,
           const std::vector<std::string>& keys) {
    auto& per_type = by_type_[type.name];
    per_type.sets.resize(type.identify_by.size());
    for (std::size_t s = 0; s < keys.size(); ++s) {
      if (!keys[s].empty()) per_type.sets[s][keys[s]].push_back(id);
    }
    per_type.names[name].push_back(id);
  }

  // Candidates for a row with these keys under the first identifier set that finds any;
  // `used_set` is its index, -1 when matching fell back to the name, -2 when a complete set
  // found nothing. The pointer stays valid until the next Add.
  const std::vector<CiId>* Match(const CiType& type, const std::string& name,
                                 const std::vector<std::string>& keys, int& used_set) const {
    used_set = -1;
    auto it = by_type_.find(type.name);
    bool had_complete_set = false;
    for (std::size_t s = 0; s < keys.size(); ++s) {
      if (keys[s].empty()) continue;
      had_complete_set = true;
      if (it == by_type_.end() || s >= it->second.sets.size()) continue;
      auto found = it->second.sets[s].find(keys[s]);
      if (found != it->second.sets[s].end() && !found->second.empty()) {
        used_set = static_cast<int>(s);
        return &found->second;
      }
    }
    if (had_complete_set) {
      used_set = -2;
      return nullptr;
    }
    if (it == by_type_.end()) return nullptr;
    auto found = it->second.names.find(name);
    return found == it->second.names.end() ? nullptr : &found->second;
  }

 private:
  struct PerType {
    std::vector<std::unordered_map<std::string, std::vector<CiId>>> sets;
    std::unordered_map<std::string, std::vector<CiId>> names;
  };
  std::set<std::string> loaded_;
  std::unordered_map<std::string, PerType> by_type_;
};

class Importer {
 public:
  Importer(soci::session& sql, const ImportOptions& options) : sql_(sql), options_(options) {}

  // `body` must outlive Run() (the import document does).
  void AddCi(std::string label, const json::value& body) {
    CiRow row;
    row.label = std::move(label);
    row.given = &body;
    FieldErrors errors;
    row.draft = CiFromJson(body, errors, ReadOnlyFields::kIgnore);
    Report(row.label, errors);
    row.action = errors.empty() ? Action::kCreate : Action::kRejected;
    rows_.push_back(std::move(row));
  }

  // Every CI of an import document, read on all cores; `cis` must outlive Run().
  void AddCis(const json::array& cis) {
    const std::size_t first = rows_.size();
    rows_.resize(first + cis.size());
    std::vector<FieldErrors> errors(cis.size());
    ParallelFor(cis.size(),
                [&](std::size_t i) {
                  CiRow& row = rows_[first + i];
                  row.label = "cis[" + std::to_string(i) + "]";
                  row.given = &cis[i];
                  row.draft = CiFromJson(cis[i], errors[i], ReadOnlyFields::kIgnore);
                  row.action = errors[i].empty() ? Action::kCreate : Action::kRejected;
                },
                {});
    for (std::size_t i = 0; i < cis.size(); ++i) Report(rows_[first + i].label, errors[i]);
  }

  // A row the caller does not keep (a CSV line).
  void AddOwnedCi(std::string label, json::value body) {
    auto owned = std::make_unique<json::value>(std::move(body));
    AddCi(std::move(label), *owned);
    rows_.back().owned = std::move(owned);
  }

  void AddRowError(const std::string& label, const std::string& field, const std::string& msg) {
    errors_.push_back({label, field, msg});
    CiRow row;
    row.label = label;
    row.action = Action::kRejected;
    rows_.push_back(std::move(row));
  }

  void SetRelations(const json::array* relations) { relations_ = relations; }

  ImportResult Run() {
    if (rows_.size() > kMaxImportRows) {
      throw Error(ErrorCode::kInvalidArgument, "an import holds at most 1000000 CIs");
    }
    try {
      const auto rows = static_cast<std::int64_t>(rows_.size() +
                                                  (relations_ != nullptr ? relations_->size() : 0));
      int step = 1;  // "parse" is done: the rows were added before Run
      auto begin = [&](std::string_view name) {
        if (options_.progress) options_.progress(name, step++, kImportSteps, rows);
      };
      Transaction tr(sql_);
      Phase("parse", started_);
      auto t = std::chrono::steady_clock::now();
      begin("validate");
      LoadTypes();
      ValidateRows();
      t = Phase("validate", t);
      begin("lock_and_load_identities");
      LockTypes();
      t = Phase("lock_and_load_identities", t);
      begin("match");
      Decide();
      t = Phase("match", t);
      begin("load_matched");
      LoadCurrent();
      t = Phase("load_matched", t);
      if (options_.atomic && !errors_.empty()) ThrowRejected();
      begin("write_cis_and_history");
      WriteCis();
      t = Phase("write_cis_and_history", t);
      begin("relations");
      ImportRelations();
      t = Phase("relations", t);
      if (options_.atomic && !errors_.empty()) ThrowRejected();
      begin("commit");
      tr.Commit();
      Phase("commit", t);
    } catch (const soci::soci_error& e) {
      ThrowDbError(e);
    }
    ImportResult result;
    result.errors = std::move(errors_);
    for (const CiRow& row : rows_) {
      switch (row.action) {
        case Action::kRejected:
          ++result.cis.rejected;
          break;
        case Action::kCreate:
          ++result.cis.created;
          break;
        case Action::kUpdate:
          ++result.cis.updated;
          break;
        case Action::kUnchanged:
          ++result.cis.unchanged;
          break;
      }
      result.ci_ids.push_back(row.action == Action::kRejected ? 0 : row.id);
    }
    result.relations = relation_counts_;
    result.phases = std::move(phases_);
    return result;
  }

  std::chrono::steady_clock::time_point Phase(const char* name,
                                              std::chrono::steady_clock::time_point since) {
    auto now = std::chrono::steady_clock::now();
    phases_.push_back({name, std::chrono::duration<double>(now - since).count()});
    return now;
  }

 private:
  void Report(const std::string& label, FieldErrors& errors) {
    for (auto& e : errors.Take())
      errors_.push_back({label, std::move(e.field), std::move(e.message)});
  }

  [[noreturn]] void ThrowRejected() {
    std::vector<FieldError> fields;
    std::set<std::string> bad_rows;
    for (const auto& e : errors_) {
      fields.push_back({e.row + (e.field.empty() ? "" : "." + e.field), e.message});
      bad_rows.insert(e.row);
    }
    throw Error(ErrorCode::kValidationFailed,
                std::to_string(bad_rows.size()) +
                    (bad_rows.size() == 1 ? " row is invalid" : " rows are invalid") +
                    "; nothing was imported (use mode=partial to import the valid rows)",
                std::move(fields));
  }

  void LoadTypes() {
    CiTypeRepository repo(sql_);
    for (CiType& type : repo.List()) types_.emplace(type.name, std::move(type));
  }

  // Every row against its type, on all cores; the identity keys of the valid ones with it.
  // Problems are reported in row order.
  void ValidateRows() {
    std::vector<FieldErrors> errors(rows_.size());
    ParallelFor(rows_.size(),
                [&](std::size_t i) {
                  CiRow& row = rows_[i];
                  if (row.action == Action::kRejected) return;
                  auto type = types_.find(row.draft.type);
                  if (type == types_.end()) {
                    errors[i].Add("type", "unknown CI type '" + row.draft.type + "'");
                    return;
                  }
                  ValidateCi(type->second, row.draft, errors[i]);
                  if (errors[i].empty())
                    row.keys = IdentityIndex::Keys(type->second, row.draft.attributes);
                },
                {});
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (errors[i].empty()) continue;
      Report(rows_[i].label, errors[i]);
      rows_[i].action = Action::kRejected;
    }
  }

  void LockTypes() {
    std::set<std::string> used;
    for (const CiRow& row : rows_) {
      if (row.action != Action::kRejected) used.insert(row.draft.type);
    }
    // Two imports of one type must not both create the same CI; serialise them per type.
    for (const auto& name : used) {
      Query(sql_, "SELECT pg_advisory_xact_lock(hashtext('cmdb.import.' || $1))", {P(name)});
      if (!options_.create_only) index_.Load(sql_, types_.at(name), rows_.size());
    }
  }

  void Decide() {
    std::unordered_map<CiId, std::string> claimed;  // existing CI -> row that matched it
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      CiRow& row = rows_[i];
      if (row.action == Action::kRejected) continue;
      const CiType& type = types_.at(row.draft.type);
      int used_set = 0;
      const std::vector<CiId>* found = index_.Match(type, row.draft.name, row.keys, used_set);
      const std::size_t matched = found != nullptr ? found->size() : 0;
      auto by = [&] {
        return used_set >= 0 ? "identify_by " + ToJsonText(IdentifyByToJson(type).as_array().at(
                                                    static_cast<std::size_t>(used_set)))
                             : std::string("name");
      };
      if (matched > 1) {
        Reject(row, "",
               "matches " + std::to_string(matched) + " CIs by " + by() +
                   "; make the identifier unique or import by id");
        continue;
      }
      if (matched == 1) {
        CiId id = found->front();
        auto [it, inserted] = claimed.emplace(id, row.label);
        if (!inserted) {
          Reject(row, "", "names the same CI as " + it->second + " (by " + by() + ")");
          continue;
        }
        row.id = id;
        row.action = Action::kUpdate;
        continue;
      }
      row.id = -static_cast<CiId>(i + 1);
      claimed.emplace(row.id, row.label);
      index_.Add(type, row.id, row.draft.name, row.keys);
      row.action = Action::kCreate;
    }
  }

  // The writable fields of the row as given (type excluded): what the merge applies.
  static json::object WritableFieldsGiven(const CiRow& row) {
    json::object raw;
    if (row.given == nullptr || !row.given->is_object()) return raw;
    for (const auto& [key, value] : row.given->get_object()) {
      if (key == "name" || key == "status" || key == "owner" || key == "tags" ||
          key == "attributes" || key == "redundancy") {
        raw[key] = value;
      }
    }
    return raw;
  }

  void Reject(CiRow& row, const std::string& field, const std::string& message) {
    errors_.push_back({row.label, field, message});
    row.action = Action::kRejected;
  }

  void LoadCurrent() {
    std::vector<CiId> ids;
    std::unordered_map<CiId, CiRow*> by_id;
    for (CiRow& row : rows_) {
      if (row.action == Action::kUpdate) {
        ids.push_back(row.id);
        by_id[row.id] = &row;
      }
    }
    if (ids.empty()) return;
    PgResult r = Query(sql_,
                       std::string("SELECT ") + kCiColumnsWithoutLastSeen +
                           " FROM configuration_items c WHERE c.id = ANY($1::bigint[]) ORDER BY "
                           "c.id FOR UPDATE",
                       {IdArrayLiteral(ids)});
    // Each row merged, validated and compared on all cores (each touches its own CiRow);
    // problems reported afterwards, in the order of the rows read.
    const auto n = static_cast<std::size_t>(r.rows());
    std::vector<FieldErrors> errors(n);
    std::vector<CiRow*> row_of(n);
    ParallelFor(n,
                [&](std::size_t i) {
                  ConfigurationItem current = CiFromRow(r, static_cast<int>(i));
                  CiRow& row = *by_id.at(current.id);
                  row_of[i] = &row;
                  // A row that repeats what is recorded (a nightly re-import) is unchanged
                  // without a merge, validation and diff; the diff stays empty.
                  if (row.given != nullptr && row.given->is_object() &&
                      MergeChangesNothing(current, row.given->get_object())) {
                    row.current = std::move(current);
                    return;
                  }
                  json::value merged =
                      MergePatch(WritableCiJson(current), WritableFieldsGiven(row));
                  ConfigurationItem next = CiFromJson(merged, errors[i], ReadOnlyFields::kIgnore);
                  ValidateCi(types_.at(current.type), next, errors[i]);
                  if (!errors[i].empty()) return;
                  next.id = current.id;
                  next.version = current.version;
                  next.created_at = current.created_at;
                  row.diff = DiffCis(&current, &next);
                  row.current = std::move(current);
                  row.next = std::move(next);
                },
                {});
    for (std::size_t i = 0; i < n; ++i) {
      CiRow& row = *row_of[i];
      if (!errors[i].empty()) {
        Report(row.label, errors[i]);
        row.action = Action::kRejected;
        continue;
      }
      row.action = row.diff.empty() ? Action::kUnchanged : Action::kUpdate;
      latest_existing_ = std::max(latest_existing_, row.current.updated_at.micros);
    }
    for (CiRow& row : rows_) {
      if (row.action == Action::kUpdate && row.current.id == 0) {
        Reject(row, "", "the CI it matched was deleted while importing");
      }
    }
  }

  // The texts of a CI's tags and attributes, made once for the CI's row and its version's.
  struct CiTexts {
    std::string tags;
    std::string attributes;
    explicit CiTexts(const ConfigurationItem& ci)
        : tags(TextArrayLiteral(ci.tags)), attributes(ToJsonText(ci.attributes)) {}
  };

  // A CI's name, status, owner, tags, attributes and min_healthy.
  static void AddCiColumns(CopyBuffer& buf, const ConfigurationItem& ci, const CiTexts& texts) {
    buf.Field(ci.name);
    buf.Field(ci.status);
    if (ci.owner) {
      buf.Field(*ci.owner);
    } else {
      buf.Null();
    }
    buf.Field(texts.tags);
    buf.Field(texts.attributes);
    if (ci.min_healthy) {
      buf.Int(*ci.min_healthy);
    } else {
      buf.Null();
    }
  }

  void WriteCis() {
    std::vector<CiRow*> created;
    std::vector<CiRow*> updated;
    for (CiRow& row : rows_) {
      if (row.action == Action::kCreate) created.push_back(&row);
      if (row.action == Action::kUpdate) updated.push_back(&row);
    }
    const auto write_started = std::chrono::steady_clock::now();
    PgResult clock = Query(sql_, "SELECT cmdb_us(clock_timestamp())");
    now_ = Timestamp{std::max(clock.Int(0, 0), latest_existing_ + 1)};
    const std::string now_text = FormatTimestamp(now_);
    // Every CI created or updated gets its version row (the full snapshot as-of reads use):
    // an updated CI's are encoded here, a created CI's copied by PostgreSQL after the COPY.
    CopyBuffer versions;
    auto add_version = [&](const CiRow& row, const CiTexts& texts) {
      versions.Int(row.id);
      versions.Int(row.next.version);
      versions.Field(row.next.type);
      AddCiColumns(versions, row.next, texts);
      versions.Field(now_text);
      versions.Field(options_.ctx.changed_by);
      versions.Field(options_.ctx.source);
      versions.Field(ToJsonText(row.diff));
      versions.EndRow();
    };
    if (!created.empty()) {
      PgResult ids = Query(sql_, NextIdsQuery("configuration_items"),
                           {P(static_cast<std::int64_t>(created.size()))});
      Phase("allocate_ids", write_started);
      for (std::size_t i = 0; i < created.size(); ++i) {
        CiRow& row = *created[i];
        new_ids_[row.id] = ids.Int(static_cast<int>(i), 0);
        row.id = ids.Int(static_cast<int>(i), 0);
      }
      // Encoding (one thread) overlaps PostgreSQL's COPY (another core): each part goes out
      // as soon as it is encoded. The version rows of the new CIs are encoded with them.
      constexpr std::size_t kRowsPerPart = 2048;
      const std::size_t parts = (created.size() + kRowsPerPart - 1) / kRowsPerPart;
      std::vector<CopyBuffer> encoded(parts);
      std::vector<std::promise<void>> encoded_promises(parts);
      std::vector<std::future<void>> part_ready;
      part_ready.reserve(parts);
      for (auto& promise : encoded_promises) part_ready.push_back(promise.get_future());
      double encode_seconds = 0;
      std::atomic<bool> stop{false};
      std::future<void> encoder = std::async(std::launch::async, [&] {
        const auto started = std::chrono::steady_clock::now();
        for (std::size_t p = 0; p < parts && !stop; ++p) {
          try {
            CopyBuffer& buf = encoded[p];
            for (std::size_t i = p * kRowsPerPart;
                 i < std::min(created.size(), (p + 1) * kRowsPerPart); ++i) {
              CiRow& row = *created[i];
              row.next = std::move(row.draft);  // not read after this
              row.next.id = row.id;
              row.next.version = 1;
              row.next.created_at = now_;
              row.next.updated_at = now_;
              const CiTexts texts(row.next);
              buf.Int(row.id);
              buf.Field(row.next.type);
              AddCiColumns(buf, row.next, texts);
              buf.Int(1);
              buf.Field(now_text);
              buf.Field(now_text);
              buf.EndRow();
            }
            encoded_promises[p].set_value();
          } catch (...) {
            encoded_promises[p].set_exception(std::current_exception());
            return;
          }
        }
        encode_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      });
      const auto t = std::chrono::steady_clock::now();
      try {
        CopyIn(sql_,
               "COPY configuration_items (id, type, name, status, owner, tags, attributes, "
               "min_healthy, version, created_at, updated_at) FROM STDIN",
               parts, [&](std::size_t p) -> const CopyBuffer& {
                 part_ready[p].get();  // rethrows what encoding this part threw
                 return encoded[p];
               });
      } catch (...) {
        stop = true;
        encoder.wait();
        throw;
      }
      encoder.get();
      phases_.push_back({"encode_cis", encode_seconds});  // overlapped with copy_cis
      Phase("copy_cis", t);
      // A new CI's first version is the row just written: PostgreSQL copies it (no second
      // encoding, transfer and jsonb parse of every attribute document). The ids are runs of
      // consecutive sequence values (one run unless another session drew ids meanwhile), and
      // every id in a run is one of this import's.
      const auto versions_started = std::chrono::steady_clock::now();
      std::vector<CiId> created_ids;
      created_ids.reserve(created.size());
      for (const CiRow* row : created) created_ids.push_back(row->id);
      IdRunLiterals runs = IdRuns(std::move(created_ids));
      Query(sql_,
            "INSERT INTO ci_versions (ci_id, version, type, name, status, owner, tags, "
            "attributes, min_healthy, valid_from, changed_by, source) SELECT c.id, c.version, "
            "c.type, c.name, c.status, c.owner, c.tags, c.attributes, c.min_healthy, "
            "c.created_at, $3, $4 FROM unnest($1::bigint[], $2::bigint[]) AS r(first, last) "
            "JOIN configuration_items c ON c.id BETWEEN r.first AND r.last",
            {P(runs.first), P(runs.last), P(options_.ctx.changed_by), P(options_.ctx.source)});
      Phase("insert_versions", versions_started);
    }
    if (!updated.empty()) {
      ExecuteRaw(sql_,
                 "CREATE TEMP TABLE IF NOT EXISTS cmdb_import_updates (id bigint, name text, "
                 "status text, owner text, tags text[], attributes jsonb, min_healthy integer) "
                 "ON COMMIT DELETE ROWS");
      CopyBuffer buf;
      std::vector<CiId> ids;
      ids.reserve(updated.size());
      for (CiRow* row : updated) {
        const CiTexts texts(row->next);
        buf.Int(row->id);
        AddCiColumns(buf, row->next, texts);
        buf.EndRow();
        ids.push_back(row->id);
        row->next.version = row->current.version + 1;
        row->next.updated_at = now_;
        add_version(*row, texts);
      }
      CopyIn(sql_,
             "COPY cmdb_import_updates (id, name, status, owner, tags, attributes, min_healthy) "
             "FROM STDIN",
             buf);
      Query(sql_,
            "UPDATE configuration_items c SET name = u.name, status = u.status, owner = u.owner, "
            "tags = u.tags, attributes = u.attributes, min_healthy = u.min_healthy, version = "
            "c.version + 1, updated_at = cmdb_ts($1) FROM cmdb_import_updates u WHERE c.id = u.id",
            {P(now_.micros)});
      Query(sql_,
            "UPDATE ci_versions SET valid_to = cmdb_ts($1) WHERE ci_id = ANY($2::bigint[]) AND "
            "valid_to IS NULL",
            {P(now_.micros), IdArrayLiteral(ids)});
    }
    if (versions.rows() > 0) {
      auto t = std::chrono::steady_clock::now();
      CopyIn(sql_,
             "COPY ci_versions (ci_id, version, type, name, status, owner, tags, attributes, "
             "min_healthy, valid_from, changed_by, source, diff) FROM STDIN",
             versions);
      Phase("copy_versions", t);
    }
  }

  // Resolves a relation end: a CI id, or {"type", "name"} / {"type", "identity"}.
  std::optional<CiId> ResolveEnd(const json::value& end, std::string& message) {
    if (end.is_int64() && end.get_int64() > 0) return end.get_int64();
    if (!end.is_object()) {
      message = R"(must be a CI id or an object {"type", "name"} or {"type", "identity"})";
      return std::nullopt;
    }
    const json::object& o = end.get_object();
    const json::value* type_name = o.if_contains("type");
    auto type = type_name != nullptr && type_name->is_string()
                    ? types_.find(std::string(type_name->get_string()))
                    : types_.end();
    if (type == types_.end()) {
      message = "names no known CI type";
      return std::nullopt;
    }
    index_.Load(sql_, type->second, 0);
    const std::vector<CiId>* found = nullptr;
    int used_set = 0;
    if (const json::value* identity = o.if_contains("identity"); identity != nullptr) {
      if (!identity->is_object()) {
        message = "identity must be an object of identifying attributes";
        return std::nullopt;
      }
      found = index_.Match(type->second, "\x01",
                           IdentityIndex::Keys(type->second, identity->get_object()), used_set);
    } else if (const json::value* name = o.if_contains("name");
               name != nullptr && name->is_string()) {
      found = index_.Match(type->second, std::string(name->get_string()),
                           IdentityIndex::Keys(type->second, json::object{}), used_set);
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
    if (id < 0) {
      auto it = new_ids_.find(id);
      if (it == new_ids_.end()) {
        message = "names a CI row of this import that was rejected";
        return std::nullopt;
      }
      id = it->second;
    }
    return id;
  }

  void ImportRelations() {
    if (relations_ == nullptr || relations_->empty()) return;
    std::map<std::string, bool> relation_types;
    PgResult types = Query(sql_, "SELECT name FROM relation_types");
    for (int i = 0; i < types.rows(); ++i) relation_types[std::string(types.Text(i, 0))] = true;
    struct RelRow {
      std::string label;
      std::string type;
      CiId from = 0;
      CiId to = 0;
      json::object attributes;
    };
    std::vector<RelRow> rows;
    std::set<CiId> by_id;
    std::size_t index = 0;
    for (const json::value& item : *relations_) {
      std::string label = "relations[" + std::to_string(index++) + "]";
      if (!item.is_object()) {
        errors_.push_back({label, "", "a relation must be an object"});
        ++relation_counts_.rejected;
        continue;
      }
      const json::object& o = item.get_object();
      RelRow row;
      row.label = label;
      FieldErrors errors;
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
        row.type = type->get_string();
      }
      for (const char* end : {"from", "to"}) {
        const json::value* v = o.if_contains(end);
        std::string message;
        std::optional<CiId> id =
            v != nullptr ? ResolveEnd(*v, message) : (message = "is required", std::nullopt);
        if (!id) {
          errors.Add(end, message);
        } else {
          (std::string_view(end) == "from" ? row.from : row.to) = *id;
          if (v->is_int64()) by_id.insert(*id);
        }
      }
      if (row.from != 0 && row.from == row.to) errors.Add("to", "a CI cannot relate to itself");
      if (const json::value* attrs = o.if_contains("attributes");
          attrs != nullptr && !attrs->is_null()) {
        if (!attrs->is_object()) {
          errors.Add("attributes", "must be an object");
        } else if (ContainsNul(*attrs)) {
          errors.Add("attributes", "must not contain the NUL character (\\u0000)");
        } else {
          row.attributes = attrs->get_object();
        }
      }
      if (!errors.empty()) {
        Report(label, errors);
        ++relation_counts_.rejected;
        continue;
      }
      rows.push_back(std::move(row));
    }
    if (!by_id.empty()) {
      std::string ids = "{";
      for (CiId id : by_id) ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
      ids += "}";
      PgResult found = Query(sql_,
                             "SELECT id FROM configuration_items WHERE id = ANY($1::bigint[]) "
                             "FOR KEY SHARE",
                             {ids});
      std::set<CiId> present;
      for (int i = 0; i < found.rows(); ++i) present.insert(found.Int(i, 0));
      std::vector<RelRow> kept;
      for (RelRow& row : rows) {
        bool ok = true;
        for (CiId id : {row.from, row.to}) {
          if (by_id.contains(id) && !present.contains(id)) {
            errors_.push_back({row.label, row.from == id ? "from" : "to",
                               "CI " + std::to_string(id) + " does not exist"});
            ok = false;
            break;
          }
        }
        if (ok) {
          kept.push_back(std::move(row));
        } else {
          ++relation_counts_.rejected;
        }
      }
      rows = std::move(kept);
    }
    if (rows.empty()) return;
    // Existing relations with the same (type, from, to).
    std::string types_array;
    std::string from_array;
    std::string to_array;
    std::vector<std::string> type_values;
    for (const RelRow& row : rows) {
      type_values.push_back(row.type);
      from_array += (from_array.empty() ? "" : ",") + std::to_string(row.from);
      to_array += (to_array.empty() ? "" : ",") + std::to_string(row.to);
    }
    PgResult existing = Query(
        sql_,
        "SELECT r.type, r.from_ci, r.to_ci, r.attributes::text FROM relations r JOIN unnest("
        "$1::text[], $2::bigint[], $3::bigint[]) AS k(type, from_ci, to_ci) ON r.type = k.type "
        "AND r.from_ci = k.from_ci AND r.to_ci = k.to_ci",
        {TextArrayLiteral(type_values), "{" + from_array + "}", "{" + to_array + "}"});
    std::set<std::string> present;
    auto key = [](const std::string& t, CiId f, CiId to) {
      return t + "\x1f" + std::to_string(f) + "\x1f" + std::to_string(to);
    };
    for (int i = 0; i < existing.rows(); ++i) {
      present.insert(key(std::string(existing.Text(i, 0)), existing.Int(i, 1), existing.Int(i, 2)));
    }
    std::vector<const RelRow*> fresh;
    for (const RelRow& row : rows) {
      if (!present.insert(key(row.type, row.from, row.to)).second) {
        ++relation_counts_.unchanged;  // recorded already, or twice in this document
        continue;
      }
      fresh.push_back(&row);
    }
    if (fresh.empty()) return;
    PgResult ids =
        Query(sql_, NextIdsQuery("relations"), {P(static_cast<std::int64_t>(fresh.size()))});
    const std::string now_text = FormatTimestamp(now_);
    CopyBuffer rel_buf;
    CopyBuffer ver_buf;
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const RelRow& row = *fresh[i];
      std::int64_t id = ids.Int(static_cast<int>(i), 0);
      const std::string attrs = ToJsonText(row.attributes);
      rel_buf.Int(id);
      rel_buf.Field(row.type);
      rel_buf.Int(row.from);
      rel_buf.Int(row.to);
      rel_buf.Field(attrs);
      rel_buf.Field(now_text);
      rel_buf.Field(now_text);
      rel_buf.EndRow();
      json::object diff{{"type", {{"old", nullptr}, {"new", row.type}}},
                        {"from", {{"old", nullptr}, {"new", row.from}}},
                        {"to", {{"old", nullptr}, {"new", row.to}}}};
      for (const auto& [k, v] : row.attributes)
        diff[k] = json::object{{"old", nullptr}, {"new", v}};
      ver_buf.Int(id);
      ver_buf.Int(1);
      ver_buf.Field(row.type);
      ver_buf.Int(row.from);
      ver_buf.Int(row.to);
      ver_buf.Field(attrs);
      ver_buf.Field(now_text);
      ver_buf.Field(options_.ctx.changed_by);
      ver_buf.Field(options_.ctx.source);
      ver_buf.Field(ToJsonText(diff));
      ver_buf.EndRow();
      ++relation_counts_.created;
    }
    CopyIn(sql_,
           "COPY relations (id, type, from_ci, to_ci, attributes, created_at, updated_at) FROM "
           "STDIN",
           rel_buf);
    CopyIn(sql_,
           "COPY relation_versions (relation_id, version, type, from_ci, to_ci, attributes, "
           "valid_from, changed_by, source, diff) FROM STDIN",
           ver_buf);
  }

  soci::session& sql_;
  const ImportOptions& options_;
  std::map<std::string, CiType, std::less<>> types_;
  std::vector<CiRow> rows_;
  std::vector<ImportRowError> errors_;
  IdentityIndex index_;
  std::unordered_map<CiId, CiId> new_ids_;  // pseudo id -> allocated id
  const json::array* relations_ = nullptr;
  ImportCounts relation_counts_;
  std::int64_t latest_existing_ = 0;
  Timestamp now_;
  std::vector<ImportPhase> phases_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

void CheckImportDocumentShape(const json::value& document) {
  if (!document.is_object()) {
    throw Error(ErrorCode::kInvalidArgument,
                R"(an import document is an object {"cis": [...], "relations": [...]})");
  }
  const json::object& o = document.get_object();
  FieldErrors shape;
  for (const auto& [key, unused] : o) {
    if (key != "cis" && key != "relations")
      shape.Add(std::string(key), "is not a field of an import");
  }
  const json::value* cis = o.if_contains("cis");
  const json::value* relations = o.if_contains("relations");
  if (cis != nullptr && !cis->is_array()) shape.Add("cis", "must be an array of CIs");
  if (relations != nullptr && !relations->is_array()) {
    shape.Add("relations", "must be an array of relations");
  }
  if (cis == nullptr && relations == nullptr) shape.Add("cis", "is required (or relations)");
  shape.ThrowIfAny("the import document has the wrong shape");
}

ImportResult ImportDocument(soci::session& sql, const json::value& document,
                            const ImportOptions& options) {
  CheckImportDocumentShape(document);
  const json::object& o = document.get_object();
  const json::value* cis = o.if_contains("cis");
  const json::value* relations = o.if_contains("relations");
  Importer importer(sql, options);
  if (cis != nullptr) {
    importer.AddCis(cis->get_array());
  }
  if (relations != nullptr) importer.SetRelations(&relations->get_array());
  return importer.Run();
}

ImportResult ImportCsv(soci::session& sql, std::string_view type_name, std::string_view csv,
                       const ImportOptions& options) {
  std::optional<CiType> type = CiTypeRepository(sql).Find(type_name);
  if (!type) {
    throw Error(ErrorCode::kValidationFailed, "unknown CI type",
                {{"type", "unknown CI type '" + std::string(type_name) + "'"}});
  }
  std::vector<CsvRecord> records = ParseCsv(csv);
  if (records.empty()) {
    throw Error(ErrorCode::kValidationFailed, "the CSV file is empty",
                {{"header", "a header line naming the columns is required"}});
  }
  const std::vector<std::string>& header = records.front().fields;
  FieldErrors header_errors;
  std::set<std::string> seen;
  for (const std::string& column : header) {
    if (!seen.insert(column).second) header_errors.Add("header." + column, "appears twice");
    if (column == "name" || column == "status" || column == "owner" || column == "tags") continue;
    if (!type->attributes.contains(column)) {
      header_errors.Add(
          "header." + column,
          "is neither name, status, owner, tags nor an attribute of '" + type->name + "'");
    }
  }
  if (!seen.contains("name")) header_errors.Add("header", "a name column is required");
  header_errors.ThrowIfAny("the CSV header is invalid");
  Importer importer(sql, options);
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    const std::string label = "line " + std::to_string(record.line);
    if (record.fields.size() != header.size()) {
      importer.AddRowError(label, "",
                           "has " + std::to_string(record.fields.size()) +
                               " fields; the header has " + std::to_string(header.size()));
      continue;
    }
    json::object row{{"type", type->name}};
    json::object attrs;
    std::string bad_field;
    std::string message;
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string& column = header[c];
      const std::string& cell = record.fields[c];
      if (cell.empty()) continue;
      if (column == "name" || column == "status" || column == "owner") {
        row[column] = cell;
      } else if (column == "tags") {
        json::array tags;
        std::size_t start = 0;
        while (start <= cell.size()) {
          std::size_t end = std::min(cell.find(';', start), cell.size());
          std::string tag = cell.substr(start, end - start);
          if (!tag.empty()) tags.emplace_back(tag);
          start = end + 1;
        }
        row["tags"] = std::move(tags);
      } else {
        std::optional<json::value> v =
            AttributeFromText(type->attributes.at(column), cell, message);
        if (!v) {
          bad_field = "attributes." + column;
          break;
        }
        attrs[column] = std::move(*v);
      }
    }
    if (!bad_field.empty()) {
      importer.AddRowError(label, bad_field, message);
      continue;
    }
    row["attributes"] = std::move(attrs);
    importer.AddOwnedCi(label, std::move(row));
  }
  return importer.Run();
}

}  // namespace cmdb::model
