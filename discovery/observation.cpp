#include "discovery/observation.hpp"

#include <string>
#include <utility>

#include "model/error.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

std::vector<Observation> ParseAgentPayload(json::value payload) {
  json::object* root = payload.if_object();
  json::value* items = root != nullptr ? root->if_contains("items") : nullptr;
  if (items == nullptr || !items->is_array()) {
    throw Error(ErrorCode::kInvalidArgument,
                R"(agent observations are {"items": [{"type", "identity", "attributes"}]})");
  }
  for (const auto& [key, value] : *root) {
    if (key != "items") {
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown field '" + std::string(key) + "' in agent observations");
    }
  }
  std::vector<Observation> out;
  out.reserve(items->get_array().size());
  std::size_t index = 0;
  for (json::value& item : items->get_array()) {
    const std::string where = "items[" + std::to_string(index++) + "]";
    json::object* o = item.if_object();
    if (o == nullptr) throw Error(ErrorCode::kInvalidArgument, where + " is not an object");
    Observation obs;
    obs.label = where;
    for (auto& [key, value] : *o) {
      if (key == "type" || key == "name") {
        if (!value.is_string()) {
          throw Error(ErrorCode::kInvalidArgument,
                      where + "." + std::string(key) + " must be a string");
        }
        (key == "type" ? obs.type : obs.name) = std::string(value.get_string());
      } else if (key == "identity" || key == "attributes") {
        if (!value.is_object()) {
          throw Error(ErrorCode::kInvalidArgument,
                      where + "." + std::string(key) + " must be an object");
        }
        (key == "identity" ? obs.identity : obs.attributes) = std::move(value.get_object());
      } else {
        throw Error(ErrorCode::kInvalidArgument,
                    where + " has an unknown field '" + std::string(key) + "'");
      }
    }
    if (obs.identity.empty() && obs.attributes.empty()) {
      throw Error(ErrorCode::kInvalidArgument, where + " has neither identity nor attributes");
    }
    if (!obs.name.empty()) obs.label += " (" + obs.name + ")";
    out.push_back(std::move(obs));
  }
  return out;
}

}  // namespace cmdb::discovery
