#pragma once
// CSV imports: an RFC 4180 reader (quoted fields with "" escapes and line breaks, CRLF or LF
// line ends, a UTF-8 byte-order mark tolerated) and the mapping of a file's columns onto a CI
// type. Stateless; thread-safe.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "model/ci_type.hpp"

namespace cmdb::import {

struct CsvRecord {
  int line = 0;  // 1-based line on which the record starts
  std::vector<std::string> fields;
};

// Splits `text` into records; blank lines are skipped. Throws Error{kInvalidArgument} naming
// the line of an unterminated quote, a quote in the middle of an unquoted field or a record
// longer than kMaxCsvRecordBytes.
std::vector<CsvRecord> ParseCsv(std::string_view text);

// The longest record a reader holds: past it, the text is refused (a field without an end
// would otherwise be held whole, however long).
inline constexpr std::size_t kMaxCsvRecordBytes = std::size_t{16} << 20;

// The same reader fed in parts (a background import's stored chunks): records are handed out
// as they complete, whatever the parts split (a quoted field, a "" escape, a CRLF). A record
// longer than `max_record_bytes` throws Error{kInvalidArgument} naming its line as soon as the
// reader has read that much of it.
class CsvReader {
 public:
  explicit CsvReader(std::size_t max_record_bytes = kMaxCsvRecordBytes)
      : max_record_bytes_(max_record_bytes) {}
  void Write(std::string_view part);
  // The end of the text: throws as ParseCsv does for an unterminated quote.
  void Finish();
  // The records completed since the last call.
  std::vector<CsvRecord> Take();
  std::size_t pending() const { return records_.size(); }

 private:
  void Start();
  void Put(char c);
  void EndField();
  void EndRecord();
  [[noreturn]] void ThrowTooLong() const;

  std::size_t max_record_bytes_;
  std::size_t record_bytes_ = 0;  // bytes read of the record in progress
  std::vector<CsvRecord> records_;
  CsvRecord record_{1, {}};
  std::string field_;
  int line_ = 1;
  bool started_ = false;  // the byte-order mark is looked for at the very start
  std::string head_;      // the first bytes, until there are three
  bool in_quotes_ = false;
  bool quote_in_quotes_ = false;  // a quote inside quotes: closes the field unless doubled
  bool skip_lf_ = false;          // a CR ended the record: an LF right after it belongs to it
  bool field_was_quoted_ = false;
  bool record_has_content_ = false;
};

// The columns of a CSV import of CI type `type`: name, status, owner, tags and the type's
// attributes, each once, name among them. Throws Error{kValidationFailed} naming each bad
// column ("header.<column>").
void CheckCsvHeader(const model::CiType& type, const std::vector<std::string>& header);

// One record of such a file as a CI document {"type", "name", ..., "attributes"}: an empty
// cell leaves its field unset, tags are separated by ';', attribute cells are converted to
// the attribute's type. nullopt, with `field` and `message` set, when a cell does not fit.
std::optional<boost::json::value> CiFromCsvRecord(const model::CiType& type,
                                                  const std::vector<std::string>& header,
                                                  const CsvRecord& record, std::string& field,
                                                  std::string& message);

}  // namespace cmdb::import
