#pragma once
// Writes JSON text straight into a string, for responses too large to build as a DOM first
// (a 1,000-CI impact is some 10,000 values: building and then serialising a boost::json tree
// took longer than computing the impact). Strings are escaped as RFC 8259 requires: quotation
// mark, reverse solidus and control characters; other characters, UTF-8 included, pass
// through. The caller keeps the nesting right; commas are placed here.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cmdb::server {

class JsonWriter {
 public:
  explicit JsonWriter(std::size_t reserve = 0) { out_.reserve(reserve); }

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(std::int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // Key(k) followed by the value.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, std::int64_t value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, int value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, bool value) { return Key(key).Bool(value); }

  // The text written so far; complete once every object and array is closed.
  std::string& str() { return out_; }

 private:
  void Separate();  // a comma before every value but the first of its container
  void Escaped(std::string_view text);

  std::string out_;
  std::vector<bool> has_value_;  // per open container: something was written into it
  bool after_key_ = false;
};

}  // namespace cmdb::server
