// nmap -oX reports, as discovery runs of kind nmap_xml read them (expat): any input yields
// observations or a model::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "discovery/collector.hpp"
#include "model/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    cmdb::discovery::ParseNmapXml(text);
  } catch (const cmdb::model::Error&) {
  }
  return 0;
}
