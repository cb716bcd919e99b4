#pragma once
// Page sizes of every list endpoint (product contract: default 100, at most 1000). Lists are
// keyset-paged on id: a page asks for `limit + 1` rows and the extra one says more follow.

namespace cmdb::model {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

}  // namespace cmdb::model
