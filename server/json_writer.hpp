#pragma once
// Writes JSON text straight into a string, for responses too large to build as a DOM first
// (a 1,000-CI impact is some 10,000 values: building and then serialising a boost::json tree
// took longer than computing the impact). Strings are escaped as RFC 8259 requires: quotation
// mark, reverse solidus and control characters; other characters, UTF-8 included, pass
// through. The caller keeps the nesting right; commas are placed here.

#include <cstdint>
#include <string>
#include <string_view>

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
  // A comma before every value but the first of its container.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    const std::uint64_t bit = std::uint64_t{1} << ((depth_ - 1) & 63U);
    if ((has_value_ & bit) != 0) out_ += ',';
    has_value_ |= bit;
  }
  void Open(char bracket);
  void Close(char bracket);
  void Escaped(std::string_view text);
  void Quoted(std::string_view text);  // "text", for text that needs no escape

  std::string out_;
  // Per open container, whether something was written into it: one bit per level (the
  // writer's callers nest a handful of levels; past 64 the bits are shared, which only the
  // comma placement of absurdly deep documents would notice).
  std::uint64_t has_value_ = 0;
  unsigned depth_ = 0;
  bool after_key_ = false;
};

}  // namespace cmdb::server
