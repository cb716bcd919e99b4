#pragma once
// The one spelling of each value of an enum class on the wire and in the database
// ("in_progress" for ChangeState::kInProgress): a table per enum, looked up both ways.
// Each enum's header declares its table and its Name / FromName functions; this header
// supplies the look-ups. Stateless; thread-safe.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cmdb::model {

template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};

// The name of `value` in `table`; "" when the table lacks it (a missing row is a bug that the
// enum's unit test catches).
template <typename Enum, std::size_t N>
constexpr std::string_view NameIn(const std::array<EnumName<Enum>, N>& table, Enum value) {
  for (const auto& row : table) {
    if (row.value == value) return row.name;
  }
  return {};
}

// The value named `name` in `table`, nullopt for any other text.
template <typename Enum, std::size_t N>
constexpr std::optional<Enum> ValueIn(const std::array<EnumName<Enum>, N>& table,
                                      std::string_view name) {
  for (const auto& row : table) {
    if (row.name == name) return row.value;
  }
  return std::nullopt;
}

// The names of `table` separated by ", ": for messages that list what is allowed.
template <typename Enum, std::size_t N>
std::string NamesIn(const std::array<EnumName<Enum>, N>& table) {
  std::string out;
  for (const auto& row : table) {
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

}  // namespace cmdb::model
