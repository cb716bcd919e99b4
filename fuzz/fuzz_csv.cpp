// CSV imports (RFC 4180 with the relaxations the importer documents): any input is read into
// records or refused with model::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "import/csv.hpp"
#include "model/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto records = cmdb::import::ParseCsv(text);
    std::size_t cells = 0;
    for (const auto& record : records) cells += record.fields.size();
    // Every cell holds at least its separator or line, so there cannot be more than bytes + 1.
    CMDB_FUZZ_CHECK(cells <= size + records.size());
  } catch (const cmdb::model::Error&) {
  }
  return 0;
}
