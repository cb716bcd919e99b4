#include "model/relation.hpp"

#include "model/ci_type.hpp"

namespace cmdb::model {

std::string_view PropagationName(Propagation p) {
  switch (p) {
    case Propagation::kToFrom:
      return "to_from";
    case Propagation::kFromTo:
      return "from_to";
    case Propagation::kBoth:
      return "both";
    case Propagation::kNone:
      return "none";
  }
  return "none";
}

std::optional<Propagation> PropagationFromName(std::string_view name) {
  for (Propagation p :
       {Propagation::kToFrom, Propagation::kFromTo, Propagation::kBoth, Propagation::kNone}) {
    if (PropagationName(p) == name) return p;
  }
  return std::nullopt;
}

RelationType ParseRelationType(const boost::json::value& body) {
  if (!body.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "a relation type must be a JSON object");
  }
  FieldErrors errors;
  RelationType type;
  const auto& o = body.get_object();
  for (const auto& [key, unused] : o) {
    if (key != "name" && key != "description" && key != "propagation") {
      errors.Add(std::string(key), "is not a field of a relation type");
    }
  }
  const auto* name = o.if_contains("name");
  if (name == nullptr || !name->is_string() || !IsValidIdentifier(name->get_string())) {
    errors.Add("name", "is required: a lowercase identifier ([a-z][a-z0-9_]*, at most 63 bytes)");
  } else {
    type.name = name->get_string();
  }
  if (const auto* d = o.if_contains("description")) {
    if (!d->is_string() || d->get_string().size() > 10000) {
      errors.Add("description", "must be a string of at most 10000 bytes");
    } else {
      type.description = d->get_string();
    }
  }
  const auto* prop = o.if_contains("propagation");
  std::optional<Propagation> p;
  if (prop != nullptr && prop->is_string()) p = PropagationFromName(prop->get_string());
  if (!p) {
    errors.Add("propagation", "is required: one of to_from, from_to, both, none");
  } else {
    type.propagation = *p;
  }
  errors.ThrowIfAny("the relation type definition is invalid");
  return type;
}

boost::json::object RelationTypeToJson(const RelationType& type) {
  return {{"name", type.name},
          {"description", type.description},
          {"propagation", PropagationName(type.propagation)},
          {"builtin", type.builtin},
          {"created_at", FormatTimestamp(type.created_at)}};
}

Relation RelationFromJson(const boost::json::value& body, FieldErrors& errors) {
  Relation r;
  if (!body.is_object()) {
    errors.Add("body", "a relation must be a JSON object");
    return r;
  }
  const auto& o = body.get_object();
  for (const auto& [key, unused] : o) {
    if (key != "type" && key != "from" && key != "to" && key != "attributes") {
      errors.Add(std::string(key), "is not a field of a relation");
    }
  }
  const auto* type = o.if_contains("type");
  if (type == nullptr || !type->is_string() || type->get_string().empty()) {
    errors.Add("type", "is required: the name of a relation type");
  } else {
    r.type = type->get_string();
  }
  for (const char* end : {"from", "to"}) {
    const auto* v = o.if_contains(end);
    if (v == nullptr || !v->is_int64() || v->get_int64() <= 0) {
      errors.Add(end, "is required: the id of a CI (a positive integer)");
    } else {
      (std::string_view(end) == "from" ? r.from : r.to) = v->get_int64();
    }
  }
  if (r.from != 0 && r.from == r.to) errors.Add("to", "a CI cannot relate to itself");
  if (const auto* attrs = o.if_contains("attributes"); attrs != nullptr && !attrs->is_null()) {
    if (!attrs->is_object()) {
      errors.Add("attributes", "must be an object");
    } else if (ContainsNul(*attrs)) {
      errors.Add("attributes", "must not contain the NUL character (\\u0000)");
    } else {
      r.attributes = attrs->get_object();
    }
  }
  return r;
}

boost::json::object RelationToJson(const Relation& relation) {
  return {{"id", relation.id},
          {"type", relation.type},
          {"from", relation.from},
          {"to", relation.to},
          {"attributes", relation.attributes},
          {"version", relation.version},
          {"created_at", FormatTimestamp(relation.created_at)},
          {"updated_at", FormatTimestamp(relation.updated_at)}};
}

}  // namespace cmdb::model
