#include "import/csv.hpp"

#include <algorithm>
#include <set>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "model/error.hpp"

namespace cmdb::import {

using model::Error;
using model::ErrorCode;
namespace json = boost::json;

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

void CheckCsvHeader(const model::CiType& type, const std::vector<std::string>& header) {
  model::FieldErrors errors;
  std::set<std::string> seen;
  for (const std::string& column : header) {
    if (!seen.insert(column).second) errors.Add("header." + column, "appears twice");
    if (column == "name" || column == "status" || column == "owner" || column == "tags") continue;
    if (!type.attributes.contains(column)) {
      errors.Add("header." + column,
                 "is neither name, status, owner, tags nor an attribute of '" + type.name + "'");
    }
  }
  if (!seen.contains("name")) errors.Add("header", "a name column is required");
  errors.ThrowIfAny("the CSV header is invalid");
}

std::optional<json::value> CiFromCsvRecord(const model::CiType& type,
                                           const std::vector<std::string>& header,
                                           const CsvRecord& record, std::string& field,
                                           std::string& message) {
  json::object row{{"type", type.name}};
  json::object attrs;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string& column = header[c];
    const std::string& cell = record.fields[c];
    if (cell.empty()) continue;
    if (column == "name" || column == "status" || column == "owner") {
      row[column] = cell;
    } else if (column == "tags") {
      json::array tags;
      std::size_t start = 0;
      while (start <= cell.size()) {
        const std::size_t end = std::min(cell.find(';', start), cell.size());
        std::string tag = cell.substr(start, end - start);
        if (!tag.empty()) tags.emplace_back(tag);
        start = end + 1;
      }
      row["tags"] = std::move(tags);
    } else {
      std::optional<json::value> v =
          model::AttributeFromText(type.attributes.at(column), cell, message);
      if (!v) {
        field = "attributes." + column;
        return std::nullopt;
      }
      attrs[column] = std::move(*v);
    }
  }
  row["attributes"] = std::move(attrs);
  return row;
}

}  // namespace cmdb::import
