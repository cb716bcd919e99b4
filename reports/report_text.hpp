#pragma once
// Small pieces every report builder uses: the text of a label in the reader's language, and a
// share as JSON (null when there is nothing to divide). Header-only; thread-safe.

#include <cstdint>
#include <string>

#include <boost/json/value.hpp>

#include "reports/report_document.hpp"

namespace cmdb::reports {

// `en` or `zh` as `lang` reads.
inline std::string T(Lang lang, const char* en, const char* zh) {
  return lang == Lang::kZh ? zh : en;
}

// part / total, or null when total is 0 (no data, not zero).
inline boost::json::value Ratio(std::int64_t part, std::int64_t total) {
  if (total == 0) return nullptr;
  return static_cast<double>(part) / static_cast<double>(total);
}

}  // namespace cmdb::reports
