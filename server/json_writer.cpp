#include "server/json_writer.hpp"

#include <array>
#include <charconv>
#include <cstring>

namespace cmdb::server {

void JsonWriter::Open(char bracket) {
  Separate();
  out_ += bracket;
  ++depth_;
  has_value_ &= ~(std::uint64_t{1} << ((depth_ - 1) & 63U));
}

void JsonWriter::Close(char bracket) {
  out_ += bracket;
  if (depth_ > 0) --depth_;
}

JsonWriter& JsonWriter::BeginObject() {
  Open('{');
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  Close('}');
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Open('[');
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  Close(']');
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  Escaped(key);
  out_ += ':';
  after_key_ = true;
  return *this;
}

void JsonWriter::Quoted(std::string_view text) {
  const std::size_t at = out_.size();
  out_.resize(at + text.size() + 2);
  char* p = out_.data() + at;
  *p++ = '"';
  if (!text.empty()) std::memcpy(p, text.data(), text.size());
  p[text.size()] = '"';
}

JsonWriter& JsonWriter::String(std::string_view value) {
  Separate();
  Escaped(value);
  return *this;
}

JsonWriter& JsonWriter::Int(std::int64_t value) {
  Separate();
  const std::size_t at = out_.size();
  out_.resize(at + 20);  // the longest int64 is 20 characters
  auto [end, ec] = std::to_chars(out_.data() + at, out_.data() + out_.size(), value);
  out_.resize(static_cast<std::size_t>(end - out_.data()));
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_ += "null";
  return *this;
}

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

void JsonWriter::Escaped(std::string_view text) {
  // Almost every string (names, types, keys) needs no escape: one copy then.
  std::size_t first = 0;
  while (first < text.size() && kNeedsEscape[static_cast<unsigned char>(text[first])] == 0) {
    ++first;
  }
  if (first == text.size()) {
    Quoted(text);
    return;
  }
  constexpr std::string_view kHex = "0123456789abcdef";
  out_ += '"';
  std::size_t plain = 0;  // start of the run of characters copied as they are
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (kNeedsEscape[c] == 0) continue;
    out_.append(text.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\b':
        out_ += "\\b";
        break;
      case '\f':
        out_ += "\\f";
        break;
      default:
        out_ += "\\u00";
        out_ += kHex[c >> 4U];
        out_ += kHex[c & 0xFU];
    }
  }
  out_.append(text.data() + plain, text.size() - plain);
  out_ += '"';
}

}  // namespace cmdb::server
