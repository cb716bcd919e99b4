#include "import/csv.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "model/error.hpp"

namespace cmdb::import {

using model::Error;
using model::ErrorCode;
namespace json = boost::json;

std::vector<CsvRecord> ParseCsv(std::string_view text) {
  CsvReader reader;
  reader.Write(text);
  reader.Finish();
  return reader.Take();
}

void CsvReader::EndField() {
  record_.fields.push_back(std::move(field_));
  field_.clear();
  field_was_quoted_ = false;
}

void CsvReader::EndRecord() {
  EndField();
  if (record_has_content_ || record_.fields.size() > 1 || !record_.fields[0].empty()) {
    records_.push_back(std::move(record_));
  }
  record_ = CsvRecord{};
  record_has_content_ = false;
  record_bytes_ = 0;
}

void CsvReader::ThrowTooLong() const {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  const std::string limit = max_record_bytes_ % kMiB == 0
                                ? std::to_string(max_record_bytes_ / kMiB) + " MiB"
                                : std::to_string(max_record_bytes_) + " bytes";
  throw Error(ErrorCode::kInvalidArgument,
              "CSV line " + std::to_string(record_.line) + ": a record is longer than " + limit);
}

void CsvReader::Put(char c) {
  if (++record_bytes_ > max_record_bytes_) ThrowTooLong();
  if (skip_lf_) {
    skip_lf_ = false;
    if (c == '\n') return;
  }
  if (quote_in_quotes_) {
    quote_in_quotes_ = false;
    if (c == '"') {  // a doubled quote: one quote in the field
      field_ += '"';
      return;
    }
    in_quotes_ = false;  // the closing quote; `c` is read after it
  }
  if (in_quotes_) {
    if (c == '"') {
      quote_in_quotes_ = true;
    } else {
      if (c == '\n') ++line_;
      field_ += c;
    }
    return;
  }
  switch (c) {
    case '"':
      if (!field_.empty() || field_was_quoted_) {
        throw Error(ErrorCode::kInvalidArgument,
                    "CSV line " + std::to_string(line_) +
                        ": a quote inside an unquoted field; quote the whole field and double "
                        "the quote");
      }
      in_quotes_ = true;
      field_was_quoted_ = true;
      record_has_content_ = true;
      break;
    case ',':
      EndField();
      record_has_content_ = true;
      break;
    case '\r':
      skip_lf_ = true;
      [[fallthrough]];
    case '\n':
      EndRecord();
      ++line_;
      record_.line = line_;
      break;
    default:
      if (field_was_quoted_) {
        throw Error(ErrorCode::kInvalidArgument,
                    "CSV line " + std::to_string(line_) + ": text after a closing quote");
      }
      field_ += c;
  }
}

void CsvReader::Write(std::string_view part) {
  if (!started_) {
    // The first three bytes decide whether there is a byte-order mark, however they arrive.
    const std::size_t take = std::min(part.size(), 3 - head_.size());
    head_.append(part.substr(0, take));
    part.remove_prefix(take);
    if (head_.size() < 3) return;
    Start();
  }
  for (char c : part) Put(c);
}

void CsvReader::Start() {
  started_ = true;
  std::string_view head = head_;
  if (head == "\xEF\xBB\xBF") head.remove_prefix(3);
  for (char c : head) Put(c);
  head_.clear();
}

void CsvReader::Finish() {
  if (!started_) Start();
  if (quote_in_quotes_) {  // the text ends right after a closing quote
    quote_in_quotes_ = false;
    in_quotes_ = false;
  }
  if (in_quotes_) {
    throw Error(ErrorCode::kInvalidArgument,
                "CSV line " + std::to_string(record_.line) + ": a quoted field is never closed");
  }
  if (!field_.empty() || !record_.fields.empty() || record_has_content_) EndRecord();
}

std::vector<CsvRecord> CsvReader::Take() { return std::exchange(records_, {}); }

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
