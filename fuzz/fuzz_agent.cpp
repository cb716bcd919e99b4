// Observations pushed by agents (POST /api/v1/discovery/runs of an agent source): the body is
// parsed as the handler parses it, then read as observations; anything else is a model::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "discovery/observation.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    cmdb::discovery::ParseAgentPayload(cmdb::model::ParseJson(text));
  } catch (const cmdb::model::Error&) {
  }
  return 0;
}
