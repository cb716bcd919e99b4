#pragma once
// CIs and their versioned history in PostgreSQL. Every write records a version with who, when,
// from where and the field-level diff, and closes the validity range of the version before it,
// so reading "as of T" is an index lookup. A repository borrows one leased session for one
// request; not thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "model/configuration_item.hpp"
#include "model/history.hpp"
#include "model/paging.hpp"
#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

namespace cmdb::store {

struct CiFilter {
  std::optional<std::string> type;
  std::optional<std::string> status;
  std::optional<std::string> owner;
  std::vector<std::string> tags;                           // every tag must be present
  std::optional<std::string> q;                            // case-insensitive name substring
  std::vector<std::pair<std::string, std::string>> attrs;  // attr.<name>=<value>
  std::optional<model::Timestamp> as_of;
  model::CiId after = 0;  // keyset cursor
  int limit = model::kDefaultPageSize;
};

struct CiPage {
  std::vector<model::ConfigurationItem> items;
  std::optional<model::CiId> next_after;  // set when more items follow
};

// A CI's id, name and attributes: what discovery matches observations against.
struct CiAttributes {
  model::CiId id = 0;
  std::string name;
  boost::json::object attributes;
};

class CiRepository {
 public:
  explicit CiRepository(DbSession& db) : db_(db) {}

  // The CI, or as it was at `as_of`; nullopt when it does not exist (then).
  std::optional<model::ConfigurationItem> FindById(model::CiId id,
                                                   std::optional<model::Timestamp> as_of = {});

  // One page in id order; stable under concurrent inserts (new CIs get larger ids).
  CiPage List(const CiFilter& filter);

  // How many CIs there are.
  std::int64_t Count();

  // Every CI of `type` with its attributes, streamed (a type may hold a million CIs).
  std::vector<CiAttributes> AttributesOfType(const std::string& type);

  // The type of each CI of `ids` that exists (the others are not in the map).
  std::map<model::CiId, std::string> TypesOf(const std::vector<model::CiId>& ids);
  // Adds "<field>[i]: CI <id> does not exist" to `errors` for each CI of `ids` (a list given
  // under `field`) that does not exist; returns the types of those that do.
  std::map<model::CiId, std::string> CheckExist(const std::vector<model::CiId>& ids,
                                                std::string_view field, model::FieldErrors& errors);

  // Adds to `errors` what is wrong with `draft` against its type (unknown type, attributes).
  void Validate(const model::ConfigurationItem& draft, model::FieldErrors& errors);

  // Validates `draft` against its type and stores it. Throws kValidationFailed (every bad
  // field, including an unknown type).
  model::ConfigurationItem Create(const model::ConfigurationItem& draft,
                                  const model::WriteContext& ctx);

  // Applies a JSON merge patch. kNotFound; kVersionMismatch when `if_match` is stale (nothing
  // written); kValidationFailed. A patch that changes nothing records no version.
  model::ConfigurationItem Patch(model::CiId id, const boost::json::value& patch,
                                 std::optional<std::int64_t> if_match,
                                 const model::WriteContext& ctx);

  // Deletes the CI and its relations, recording both in history. kNotFound; kVersionMismatch.
  void Delete(model::CiId id, std::optional<std::int64_t> if_match, const model::WriteContext& ctx);

  // Versions newest first, at most `limit`, older than `before_version` when given.
  // kNotFound when the CI never existed.
  std::vector<model::HistoryEntry> History(model::CiId id, int limit,
                                           std::optional<std::int64_t> before_version);

 private:
  DbSession& db_;
};

}  // namespace cmdb::store
