// JSON merge patches (RFC 7386), as PATCH of a CI applies them to its attributes: the input is
// a target and a patch separated by a NUL byte. Applying the same patch twice changes nothing
// the second time, and a patch that is not an object replaces the target.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t split = text.find('\0');
  if (split == std::string_view::npos) return 0;
  boost::json::value target;
  boost::json::value patch;
  try {
    target = cmdb::model::ParseJson(text.substr(0, split));
    patch = cmdb::model::ParseJson(text.substr(split + 1));
  } catch (const cmdb::model::Error&) {
    return 0;
  }
  const boost::json::value once = cmdb::model::MergePatch(target, patch);
  CMDB_FUZZ_CHECK(cmdb::model::MergePatch(once, patch) == once);
  if (!patch.is_object()) CMDB_FUZZ_CHECK(once == patch);
  return 0;
}
