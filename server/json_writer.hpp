#pragma once
// Writes JSON text straight into a string, for responses too large to build as a DOM first
// (a 1,000-CI impact is some 10,000 values: building and then serialising a boost::json tree
// took longer than computing the impact). Strings are escaped as RFC 8259 requires: quotation
// mark, reverse solidus and control characters; other characters, UTF-8 included, pass
// through. The caller keeps the nesting right; commas are placed here.

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace cmdb::server {

class JsonWriter {
 public:
  // `reserve`: the expected size; the buffer grows beyond it when needed.
  explicit JsonWriter(std::size_t reserve = 0) { out_.resize(std::max<std::size_t>(reserve, 64)); }

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
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
  std::string& str() {
    out_.resize(size_);
    return out_;
  }

 private:
  // Room for `n` more bytes at the end of the text; returns where they go. Written bytes are
  // counted by the caller (size_), so the buffer is sized once and filled by pointer rather
  // than grown by an append per token.
  [[gnu::always_inline]] char* Room(std::size_t n) {
    if (out_.size() - size_ < n) [[unlikely]] {
      Grow(n);
    }
    return out_.data() + size_;
  }
  void Grow(std::size_t n);
  void Put(char c) {
    *Room(1) = c;
    ++size_;
  }
  // A comma before every value but the first of its container.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    const std::uint64_t bit = std::uint64_t{1} << ((depth_ - 1) & 63U);
    if ((has_value_ & bit) != 0) Put(',');
    has_value_ |= bit;
  }
  JsonWriter& Open(char bracket) {
    Separate();
    Put(bracket);
    ++depth_;
    has_value_ &= ~(std::uint64_t{1} << ((depth_ - 1) & 63U));
    return *this;
  }
  JsonWriter& Close(char bracket) {
    Put(bracket);
    if (depth_ > 0) --depth_;
    return *this;
  }
  void Escaped(std::string_view text);

  std::string out_;       // the text, then unused room
  std::size_t size_ = 0;  // bytes of text in out_
  // Per open container, whether something was written into it: one bit per level (the
  // writer's callers nest a handful of levels; past 64 the bits are shared, which only the
  // comma placement of absurdly deep documents would notice).
  std::uint64_t has_value_ = 0;
  unsigned depth_ = 0;
  bool after_key_ = false;
};

}  // namespace cmdb::server
