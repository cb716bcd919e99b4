#pragma once
// An RFC 4180 CSV reader: quoted fields with "" escapes and line breaks, CRLF or LF line
// ends, a UTF-8 byte-order mark tolerated. Stateless; thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace cmdb::model {

struct CsvRecord {
  int line = 0;  // 1-based line on which the record starts
  std::vector<std::string> fields;
};

// Splits `text` into records; blank lines are skipped. Throws Error{kInvalidArgument} naming
// the line of an unterminated quote or a quote in the middle of an unquoted field.
std::vector<CsvRecord> ParseCsv(std::string_view text);

}  // namespace cmdb::model
