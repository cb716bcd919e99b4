#include "model/sighting_blocks.hpp"

#include <stdexcept>

namespace cmdb::model {

std::string BitsText(const SightingBits& bits) {
  std::string text(bits.size(), '0');
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits.test(i)) text[i] = '1';
  }
  return text;
}

SightingBits ParseBits(std::string_view text) {
  SightingBits bits;
  if (text.size() != bits.size()) {
    throw std::invalid_argument("a sighting block has " + std::to_string(text.size()) +
                                " bits, not " + std::to_string(bits.size()));
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '1') {
      bits.set(i);
    } else if (text[i] != '0') {
      throw std::invalid_argument("a sighting block is not a bit string");
    }
  }
  return bits;
}

}  // namespace cmdb::model
