#include "model/csv.hpp"

#include "model/error.hpp"

namespace cmdb::model {

std::vector<CsvRecord> ParseCsv(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  int line = 1;
  record.line = 1;
  bool in_quotes = false;
  bool field_was_quoted = false;
  bool record_has_content = false;
  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    field_was_quoted = false;
  };
  auto end_record = [&] {
    end_field();
    if (record_has_content || record.fields.size() > 1 || !record.fields[0].empty()) {
      records.push_back(std::move(record));
    }
    record = CsvRecord{};
    record_has_content = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        if (!field.empty() || field_was_quoted) {
          throw Error(ErrorCode::kInvalidArgument,
                      "CSV line " + std::to_string(line) +
                          ": a quote inside an unquoted field; quote the whole field and double "
                          "the quote");
        }
        in_quotes = true;
        field_was_quoted = true;
        record_has_content = true;
        break;
      case ',':
        end_field();
        record_has_content = true;
        break;
      case '\r':
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        [[fallthrough]];
      case '\n':
        end_record();
        ++line;
        record.line = line;
        break;
      default:
        if (field_was_quoted) {
          throw Error(ErrorCode::kInvalidArgument,
                      "CSV line " + std::to_string(line) + ": text after a closing quote");
        }
        field += c;
    }
  }
  if (in_quotes) {
    throw Error(ErrorCode::kInvalidArgument,
                "CSV line " + std::to_string(record.line) + ": a quoted field is never closed");
  }
  if (!field.empty() || !record.fields.empty() || record_has_content) end_record();
  return records;
}

}  // namespace cmdb::model
