#pragma once
// Relations between CIs and the relation types that say how failure propagates along them.
// Value types and their JSON mapping; thread-safe.

#include <cstdint>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "model/configuration_item.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

namespace cmdb::model {

using RelationId = std::int64_t;

// How a failure travels along a relation `from -> to`.
enum class Propagation {
  kToFrom,  // failure of `to` impacts `from` (depends_on, runs_on, hosted_on)
  kFromTo,  // failure of `from` impacts `to` (contains, member_of)
  kBoth,    // connected_to
  kNone,    // documents, owned_by
};

std::string_view PropagationName(Propagation p);
std::optional<Propagation> PropagationFromName(std::string_view name);

struct RelationType {
  std::string name;
  std::string description;
  Propagation propagation = Propagation::kToFrom;
  bool builtin = false;
  Timestamp created_at;
};

struct Relation {
  RelationId id = 0;
  std::string type;
  CiId from = 0;
  CiId to = 0;
  boost::json::object attributes;
  std::int64_t version = 0;
  Timestamp created_at;
  Timestamp updated_at;
};

// Parses a relation type definition; throws kValidationFailed listing every bad field.
RelationType ParseRelationType(const boost::json::value& body);
boost::json::object RelationTypeToJson(const RelationType& type);

// Parses `{"type", "from", "to", "attributes"}` with CI ids; problems go to `errors`.
Relation RelationFromJson(const boost::json::value& body, FieldErrors& errors);
boost::json::object RelationToJson(const Relation& relation);

}  // namespace cmdb::model
