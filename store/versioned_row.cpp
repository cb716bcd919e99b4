#include "store/versioned_row.hpp"

namespace cmdb::store {

void CheckIfMatch(std::optional<std::int64_t> if_match, std::int64_t current,
                  const std::string& what) {
  if (if_match && *if_match != current) {
    throw model::Error(model::ErrorCode::kVersionMismatch,
                       what + " is at version " + std::to_string(current) + ", not " +
                           std::to_string(*if_match) + "; reload it and retry");
  }
}

}  // namespace cmdb::store
