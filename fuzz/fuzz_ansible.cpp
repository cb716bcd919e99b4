// Ansible facts (setup module JSON), as discovery runs of kind ansible_facts read them: any
// input yields one observation or a model::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "discovery/collector.hpp"
#include "model/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    cmdb::discovery::ParseAnsibleFacts(text, "fallback-host");
  } catch (const cmdb::model::Error&) {
  }
  return 0;
}
