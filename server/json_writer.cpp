#include "server/json_writer.hpp"

#include <array>
#include <charconv>
#include <cstring>

namespace cmdb::server {

namespace {

// 1 for the bytes a JSON string cannot hold as they are: control characters, '"' and '\\'.
constexpr std::array<std::uint8_t, 256> kNeedsEscape = [] {
  std::array<std::uint8_t, 256> table{};
  for (std::size_t c = 0; c < 0x20; ++c) table[c] = 1;
  table[static_cast<unsigned char>('"')] = 1;
  table[static_cast<unsigned char>('\\')] = 1;
  return table;
}();

}  // namespace

void JsonWriter::Grow(std::size_t n) { out_.resize(std::max(out_.size() * 2, size_ + n)); }

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  Escaped(key);
  Put(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  Separate();
  Escaped(value);
  return *this;
}

JsonWriter& JsonWriter::Int(std::int64_t value) {
  Separate();
  constexpr std::size_t kLongest = 20;  // -9223372036854775808
  char* at = Room(kLongest);
  auto [end, ec] = std::to_chars(at, at + kLongest, value);
  size_ += static_cast<std::size_t>(end - at);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  const std::string_view text = value ? "true" : "false";
  std::memcpy(Room(text.size()), text.data(), text.size());
  size_ += text.size();
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  std::memcpy(Room(4), "null", 4);
  size_ += 4;
  return *this;
}

void JsonWriter::Escaped(std::string_view text) {
  // Every character takes at most six bytes (\u001f); most strings need no escape at all.
  char* p = Room(text.size() * 6 + 2);
  char* const start = p;
  *p++ = '"';
  std::size_t plain = 0;  // start of the run of characters copied as they are
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (kNeedsEscape[c] == 0) continue;
    if (i > plain) std::memcpy(p, text.data() + plain, i - plain);
    p += i - plain;
    plain = i + 1;
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      case '\b':
        *p++ = 'b';
        break;
      case '\f':
        *p++ = 'f';
        break;
      default: {
        constexpr std::string_view kHex = "0123456789abcdef";
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4U];
        *p++ = kHex[c & 0xFU];
      }
    }
  }
  if (text.size() > plain) std::memcpy(p, text.data() + plain, text.size() - plain);
  p += text.size() - plain;
  *p++ = '"';
  size_ += static_cast<std::size_t>(p - start);
}

}  // namespace cmdb::server
