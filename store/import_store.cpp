#include "store/import_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>

#include "model/json.hpp"
#include "model/parallel.hpp"
#include "store/ci_rows.hpp"
#include "store/pg.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::CiId;
using model::ConfigurationItem;
using model::Timestamp;
using model::WriteContext;
namespace json = boost::json;

namespace {

// The texts of a CI's tags and attributes, made once for the CI's row and its version's.
struct CiTexts {
  std::string tags;
  std::string attributes;
  explicit CiTexts(const ConfigurationItem& ci)
      : tags(sql::TextArray(ci.tags)), attributes(model::ToJsonText(ci.attributes)) {}
};

// A CI's name, status, owner, tags, attributes and min_healthy.
void AddCiColumns(pg::CopyBuffer& buf, const ConfigurationItem& ci, const CiTexts& texts) {
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

// FormatTimestamp of the instants of many rows, which are mostly one.
class TimeTexts {
 public:
  const std::string& Of(Timestamp t) {
    if (text_.empty() || t != last_) {
      last_ = t;
      text_ = model::FormatTimestamp(t);
    }
    return text_;
  }

 private:
  Timestamp last_;
  std::string text_;
};

}  // namespace

void ImportStore::LockType(const std::string& type) {
  sql::Execute(db_, "SELECT pg_advisory_xact_lock(hashtext('cmdb.import.' || $1))",
               soci::use(type));
}

IdentityColumns ImportStore::Identities(const std::string& type,
                                        const std::vector<std::string>& attributes) {
  // One column per identifying attribute (a per-row aggregate into one object cost PostgreSQL
  // twice as much).
  sql::Params params;
  const std::string type_param = params.Add(type);
  std::string columns;
  for (const std::string& name : attributes) {
    columns += ", (attributes -> " + params.Add(name) + "::text)::text";
  }
  IdentityColumns out;
  out.values.resize(attributes.size());
  sql::ForEachRow(
      db_, "SELECT id, name" + columns + " FROM configuration_items WHERE type = " + type_param,
      params, [&](const soci::row& r) {
        out.ids.push_back(sql::Int(r, 0));
        out.names.push_back(sql::Text(r, 1));
        for (std::size_t a = 0; a < attributes.size(); ++a) {
          out.values[a].push_back(sql::OptionalText(r, a + 2));
        }
      });
  return out;
}

namespace {

// CIs read as text, then parsed on all cores.
std::vector<ConfigurationItem> ParseCis(std::vector<CiRowText> texts) {
  std::vector<ConfigurationItem> out(texts.size());
  model::ParallelFor(texts.size(), [&](std::size_t i) { out[i] = CiFromText(std::move(texts[i])); },
                     {});
  return out;
}

// A re-import reads all the CIs it matched (100,000 rows: 0.6 s through SOCI's dynamic rows);
// COPY streams them as text. `where` holds no parameter (COPY takes none).
std::vector<ConfigurationItem> CopyCis(DbSession& db, const std::string& where) {
  std::vector<CiRowText> texts;
  pg::CopyOut(db,
              std::string("SELECT ") + kCiColumnsWithoutLastSeen +
                  " FROM configuration_items c WHERE " + where + " ORDER BY c.id",
              [&](const pg::Fields& f) { texts.push_back(CiRowTextOf(f)); });
  return ParseCis(std::move(texts));
}

}  // namespace

std::vector<ConfigurationItem> ImportStore::ReadCurrent(const std::vector<CiId>& ids, bool lock) {
  if (ids.empty()) return {};
  if (!lock) {
    // The ids are integers, written into the array literal.
    return CopyCis(db_, "c.id = ANY('" + sql::IdArray(ids) + "'::bigint[])");
  }
  std::vector<CiRowText> texts;
  texts.reserve(ids.size());
  sql::ForEachRow(
      db_,
      std::string("SELECT ") + kCiColumnsWithoutLastSeen +
          " FROM configuration_items c WHERE c.id = ANY($1::bigint[]) ORDER BY c.id FOR UPDATE",
      [&](const soci::row& r) { texts.push_back(CiRowTextOf(r)); }, soci::use(sql::IdArray(ids)));
  return ParseCis(std::move(texts));
}

bool ImportStore::WroteNothing() {
  int none = 0;
  sql::Run(db_, "SELECT (pg_current_xact_id_if_assigned() IS NULL)::int", soci::into(none));
  return none == 1;
}

std::string ImportStore::Snapshot() {
  std::string snapshot;
  sql::Run(db_, "SELECT pg_current_snapshot()::text", soci::into(snapshot));
  return snapshot;
}

std::string ImportStore::TransactionId() {
  std::string xid;
  sql::Run(db_, "SELECT pg_current_xact_id()::text", soci::into(xid));
  return xid;
}

std::vector<CiId> ImportStore::OfType(const std::vector<CiId>& ids, const std::string& type) {
  std::vector<CiId> out;
  if (ids.empty()) return out;
  sql::ForEachRow(
      db_, "SELECT id FROM configuration_items WHERE id = ANY($1::bigint[]) AND type = $2",
      [&](const soci::row& r) { out.push_back(sql::Int(r, 0)); }, soci::use(sql::IdArray(ids)),
      soci::use(type));
  return out;
}

std::int64_t ImportStore::CountOfType(const std::string& type) {
  long long count = 0;
  sql::Run(db_, "SELECT count(*) FROM configuration_items WHERE type = $1", soci::into(count),
           soci::use(type));
  return count;
}

std::vector<ConfigurationItem> ImportStore::ReadType(const std::string& type) {
  // The type's name goes into the query as a quoted literal (COPY takes no parameters).
  return CopyCis(db_, "c.type = " + pg::QuoteLiteral(db_, type));
}

void ImportStore::ReadTypeInParts(const std::string& type, std::size_t part,
                                  const std::function<bool(std::vector<ConfigurationItem>)>& each) {
  struct Abandoned {};
  std::vector<CiRowText> texts;
  texts.reserve(part);
  try {
    // One statement, in no order (a sort of the whole type is not needed): the rows of a part
    // are parsed once it is complete, while PostgreSQL keeps sending.
    pg::CopyOut(db_,
                std::string("SELECT ") + kCiColumnsWithoutLastSeen +
                    " FROM configuration_items c WHERE c.type = " + pg::QuoteLiteral(db_, type),
                [&](const pg::Fields& f) {
                  texts.push_back(CiRowTextOf(f));
                  if (texts.size() < part) return;
                  if (!each(ParseCis(std::exchange(texts, {})))) throw Abandoned{};
                  texts.reserve(part);
                });
  } catch (const Abandoned&) {
    return;
  }
  if (!texts.empty()) each(ParseCis(std::move(texts)));
}

void ImportStore::RecordKeptTypes(const std::vector<std::string>& types) {
  if (types.empty()) return;
  // A type deleted since is skipped: the key would refer to nothing.
  sql::Execute(db_,
               "INSERT INTO import_kept_types (type, kept_at) SELECT t.name, now() FROM ci_types t "
               "WHERE t.name = ANY($1::text[]) ON CONFLICT (type) DO UPDATE SET kept_at = "
               "excluded.kept_at",
               soci::use(sql::TextArray(types)));
}

std::vector<std::string> ImportStore::KeptTypesSince(std::chrono::hours ago) {
  std::vector<std::string> out;
  const int hours = static_cast<int>(ago.count());
  sql::ForEachRow(
      db_,
      "SELECT type FROM import_kept_types WHERE kept_at > now() - make_interval(hours => $1) "
      "ORDER BY type",
      [&](const soci::row& r) { out.push_back(sql::Text(r, 0)); }, soci::use(hours));
  return out;
}

std::unordered_map<CiId, std::int64_t> ImportStore::LockVersions(const std::vector<CiId>& ids) {
  std::unordered_map<CiId, std::int64_t> out;
  if (ids.empty()) return out;
  out.reserve(ids.size());
  sql::ForEachRow(
      db_,
      "SELECT id, version FROM configuration_items WHERE id = ANY($1::bigint[]) ORDER BY id FOR "
      "UPDATE",
      [&](const soci::row& r) { out.emplace(sql::Int(r, 0), sql::Int(r, 1)); },
      soci::use(sql::IdArray(ids)));
  return out;
}

Timestamp ImportStore::Now() {
  long long now = 0;
  sql::Run(db_, "SELECT cmdb_us(clock_timestamp())", soci::into(now));
  return Timestamp{now};
}

std::vector<CiId> ImportStore::NextCiIds(std::size_t count) {
  return sql::NextIds(db_, "configuration_items", count);
}

double ImportStore::InsertCis(const std::vector<const ConfigurationItem*>& cis,
                              const WriteContext& ctx) {
  if (cis.empty()) return 0;
  // Encoding (one thread) overlaps PostgreSQL's COPY (another core): each part goes out as
  // soon as it is encoded.
  constexpr std::size_t kRowsPerPart = 2048;
  const std::size_t parts = (cis.size() + kRowsPerPart - 1) / kRowsPerPart;
  std::vector<pg::CopyBuffer> encoded(parts);
  std::vector<std::promise<void>> encoded_promises(parts);
  std::vector<std::future<void>> part_ready;
  part_ready.reserve(parts);
  for (auto& promise : encoded_promises) part_ready.push_back(promise.get_future());
  double encode_seconds = 0;
  std::atomic<bool> stop{false};
  std::future<void> encoder = std::async(std::launch::async, [&] {
    const auto started = std::chrono::steady_clock::now();
    TimeTexts times;
    for (std::size_t p = 0; p < parts && !stop; ++p) {
      try {
        pg::CopyBuffer& buf = encoded[p];
        for (std::size_t i = p * kRowsPerPart; i < std::min(cis.size(), (p + 1) * kRowsPerPart);
             ++i) {
          const ConfigurationItem& ci = *cis[i];
          buf.Int(ci.id);
          buf.Field(ci.type);
          AddCiColumns(buf, ci, CiTexts(ci));
          buf.Int(ci.version);
          buf.Field(times.Of(ci.created_at));
          buf.Field(times.Of(ci.updated_at));
          buf.Field(ctx.changed_by);
          buf.Field(ctx.source);
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
  try {
    pg::CopyIn(db_,
               "COPY configuration_items (id, type, name, status, owner, tags, attributes, "
               "min_healthy, version, created_at, updated_at, changed_by, source) FROM STDIN",
               parts, [&](std::size_t p) -> const pg::CopyBuffer& {
                 part_ready[p].get();  // rethrows what encoding this part threw
                 return encoded[p];
               });
  } catch (...) {
    stop = true;
    encoder.wait();
    throw;
  }
  encoder.get();
  return encode_seconds;
}

double ImportStore::UpdateCis(const std::vector<CiUpdate>& updates, Timestamp now,
                              const WriteContext& ctx) {
  if (updates.empty()) return 0;
  // DDL, run as written.
  pg::ExecuteScript(db_,
                    "CREATE TEMP TABLE IF NOT EXISTS cmdb_import_updates (id bigint, name text, "
                    "status text, owner text, tags text[], attributes jsonb, min_healthy "
                    "integer, diff jsonb) ON COMMIT DELETE ROWS");
  pg::CopyBuffer rows;
  for (const CiUpdate& u : updates) {
    const ConfigurationItem& ci = *u.next;
    rows.Int(ci.id);
    AddCiColumns(rows, ci, CiTexts(ci));
    rows.Field(model::ToJsonText(*u.diff));
    rows.EndRow();
  }
  pg::CopyIn(db_,
             "COPY cmdb_import_updates (id, name, status, owner, tags, attributes, min_healthy, "
             "diff) FROM STDIN",
             rows);
  const long long at = now.micros;
  // The version each CI had ends now (0025_ci_current_versions.sql); the rows were locked
  // when the import read them.
  const auto started = std::chrono::steady_clock::now();
  sql::Execute(db_,
               "INSERT INTO ci_versions (ci_id, version, type, name, status, owner, tags, "
               "attributes, min_healthy, valid_from, valid_to, changed_by, source, diff) SELECT "
               "c.id, c.version, c.type, c.name, c.status, c.owner, c.tags, c.attributes, "
               "c.min_healthy, c.updated_at, cmdb_ts($1), c.changed_by, c.source, c.diff FROM "
               "configuration_items c JOIN cmdb_import_updates u ON u.id = c.id",
               soci::use(at));
  const double ended_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  sql::Execute(db_,
               "UPDATE configuration_items c SET name = u.name, status = u.status, owner = "
               "u.owner, tags = u.tags, attributes = u.attributes, min_healthy = u.min_healthy, "
               "version = c.version + 1, updated_at = cmdb_ts($1), changed_by = $2, source = $3, "
               "diff = u.diff FROM cmdb_import_updates u WHERE c.id = u.id",
               soci::use(at), soci::use(ctx.changed_by), soci::use(ctx.source));
  return ended_seconds;
}

std::set<std::string> ImportStore::RelationTypeNames() {
  std::set<std::string> names;
  sql::ForEachRow(db_, "SELECT name FROM relation_types",
                  [&](const soci::row& r) { names.insert(sql::Text(r, 0)); });
  return names;
}

std::set<CiId> ImportStore::ExistingCis(const std::vector<CiId>& ids) {
  std::set<CiId> present;
  if (ids.empty()) return present;
  sql::ForEachRow(
      db_, "SELECT id FROM configuration_items WHERE id = ANY($1::bigint[])",
      [&](const soci::row& r) { present.insert(sql::Int(r, 0)); }, soci::use(sql::IdArray(ids)));
  return present;
}

std::vector<std::tuple<std::string, std::string, CiId>> ImportStore::CisByName(
    const std::vector<std::string>& types, const std::vector<std::string>& names) {
  std::vector<std::tuple<std::string, std::string, CiId>> found;
  if (types.empty()) return found;
  // Without parallel workers: each would unnest, deduplicate and hash the batch's 100,000 names
  // again to probe its share of the CIs, and on two cores that took twice as long (0.8-1.0 s
  // against 0.4-0.5 s per batch of 50,000 relations into 1M CIs). Local to the import's
  // transaction, and set back for the rest of it.
  sql::Execute(db_, "SET LOCAL max_parallel_workers_per_gather = 0");
  // The only index on names is the trigram index of the search, which answers `=` too: for a
  // batch's names PostgreSQL then plans one bitmap scan of it per name, and the trigrams names
  // share ("vm-", "-12") have posting lists of most of the table: 0.7 ms a name, 35 s for
  // 50,000 (perf: ginPostingListDecodeAllSegments), against 0.3-0.5 s for hashing the table.
  // Only a few names are looked up through it.
  constexpr std::size_t kNamesByIndex = 500;
  const bool many = names.size() > kNamesByIndex;
  if (many) sql::Execute(db_, "SET LOCAL enable_bitmapscan = off");
  sql::ForEachRow(
      db_,
      "SELECT c.type, c.name, c.id FROM configuration_items c JOIN (SELECT DISTINCT type, name "
      "FROM unnest($1::text[], $2::text[]) AS k(type, name)) k ON c.type = k.type AND c.name = "
      "k.name",
      [&](const soci::row& r) {
        found.emplace_back(sql::Text(r, 0), sql::Text(r, 1), sql::Int(r, 2));
      },
      soci::use(sql::TextArray(types)), soci::use(sql::TextArray(names)));
  sql::Execute(db_, "SET LOCAL max_parallel_workers_per_gather TO DEFAULT");
  if (many) sql::Execute(db_, "SET LOCAL enable_bitmapscan TO DEFAULT");
  return found;
}

std::set<std::tuple<std::string, CiId, CiId>> ImportStore::ExistingRelations(
    const std::vector<const NewRelation*>& relations) {
  std::set<std::tuple<std::string, CiId, CiId>> present;
  if (relations.empty()) return present;
  std::vector<std::string> types;
  std::vector<CiId> from;
  std::vector<CiId> to;
  for (const NewRelation* r : relations) {
    types.push_back(r->type);
    from.push_back(r->from);
    to.push_back(r->to);
  }
  sql::ForEachRow(
      db_,
      "SELECT r.type, r.from_ci, r.to_ci FROM relations r JOIN unnest($1::text[], $2::bigint[], "
      "$3::bigint[]) AS k(type, from_ci, to_ci) ON r.type = k.type AND r.from_ci = k.from_ci "
      "AND r.to_ci = k.to_ci",
      [&](const soci::row& r) { present.emplace(sql::Text(r, 0), sql::Int(r, 1), sql::Int(r, 2)); },
      soci::use(sql::TextArray(types)), soci::use(sql::IdArray(from)), soci::use(sql::IdArray(to)));
  return present;
}

void ImportStore::InsertRelations(const std::vector<const NewRelation*>& relations, Timestamp now,
                                  const WriteContext& ctx) {
  if (relations.empty()) return;
  const std::string now_text = model::FormatTimestamp(now);
  pg::CopyBuffer rows;
  for (const NewRelation* r : relations) {
    rows.Field(r->type);
    rows.Int(r->from);
    rows.Int(r->to);
    rows.Field(r->attributes.empty() ? "{}" : model::ToJsonText(r->attributes));
    rows.Field(now_text);
    rows.Field(now_text);
    rows.Field(ctx.changed_by);
    rows.Field(ctx.source);
    rows.EndRow();
  }
  // COPY inserts rows in batches (an INSERT ... SELECT, one at a time, took 40% longer), and
  // the relations' types and ends are checked and locked once for the statement
  // (0015_relation_checks_per_statement.sql). Each row is also its relation's first version,
  // whose creation diff the reader derives (0023_relation_current_versions.sql); the ids come
  // from the column's identity.
  pg::CopyIn(db_,
             "COPY relations (type, from_ci, to_ci, attributes, created_at, updated_at, "
             "changed_by, source) FROM STDIN",
             rows);
}

}  // namespace cmdb::store
