#pragma once
// How the store runs SQL through SOCI (internal to store/; nothing else includes SOCI).
//
// - Statements run once: `sql::Run(db, "... WHERE id = $1", soci::into(x), soci::use(id))`.
//   A one-time statement is one round trip (PQexecParams); SOCI's `sql.prepare` and `rowset`
//   would PREPARE, EXECUTE and DEALLOCATE, three. Placeholders are PostgreSQL's ($1, $2, ...,
//   reusable), bound in the order of the `use` elements: the helpers write them as SOCI's named
//   placeholders (:p1, :p2, ...) and bind each `use` by that name, since SOCI 4.0 cannot name
//   a positional parameter in an error and throws std::out_of_range instead of the error.
// - Rows of any width: `sql::ForEachRow(db, query, each, uses...)` with a soci::row per row,
//   read through the accessors below (NULLs as std::optional).
// - Queries built at run time (list filters) bind a `sql::Params`.
// - Hot reads prepare once per connection: `sql::Prepared(db, name, query, n)`.
// - Every SOCI failure leaves the store as a model::Error mapped from its SQLSTATE
//   (sqlstate.hpp), so callers see one error type.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>
#include <soci/soci.h>

#include "model/timestamp.hpp"
#include "store/db_pool.hpp"

// std::optional<T> as a SOCI value: nullopt is NULL (SOCI 4.0 knows boost::optional only);
// bool as the integer SOCI's PostgreSQL backend reads a boolean column as (sent as 1 or 0,
// which PostgreSQL's boolean input takes).
namespace soci {
template <>
struct type_conversion<bool> {
  using base_type = int;
  static void from_base(int in, indicator /*ind*/, bool& out) { out = in != 0; }
  static void to_base(bool in, int& out, indicator& ind) {
    out = in ? 1 : 0;
    ind = i_ok;
  }
};

template <typename T>
struct type_conversion<std::optional<T>> {
  // T must be a type SOCI exchanges itself (conversions do not nest: no std::optional<bool>).
  static_assert(!std::is_same_v<T, bool>, "bind std::optional<int> instead");
  using base_type = T;
  static void from_base(const T& in, indicator ind, std::optional<T>& out) {
    if (ind == i_null) {
      out.reset();
    } else {
      out = in;
    }
  }
  static void to_base(const std::optional<T>& in, T& out, indicator& ind) {
    if (in) {
      out = *in;
      ind = i_ok;
    } else {
      ind = i_null;
    }
  }
};
}  // namespace soci

namespace cmdb::store::sql {

namespace detail {
// `query` with $1..$n written as :p1..:pn, quoted text left as it is.
std::string NamedPlaceholders(const std::string& query);

// The names p1, p2, ... given to the `use` elements of one statement, in order; they must
// outlive the statement.
class UseNames {
 public:
  const std::string& Next() { return names_.emplace_back("p" + std::to_string(names_.size() + 1)); }

 private:
  std::deque<std::string> names_;
};

// Whether an element is a `use` element, and with an indicator.
template <typename Element>
struct UseKind {
  static constexpr bool kUse = false;
};
template <typename T>
struct UseKind<soci::details::use_container<T, soci::details::no_indicator>> {
  static constexpr bool kUse = true;
  static constexpr bool kIndicator = false;
};
template <typename T>
struct UseKind<soci::details::use_container<T, soci::indicator>> {
  static constexpr bool kUse = true;
  static constexpr bool kIndicator = true;
};

// Adds an element to `statement`: an into element as it is, a use element bound by its name.
template <typename Element>
void Exchange(soci::statement& statement, Element&& element, UseNames& names) {
  using Kind = UseKind<std::remove_cv_t<std::remove_reference_t<Element>>>;
  if constexpr (!Kind::kUse) {
    statement.exchange(std::forward<Element>(element));
  } else if constexpr (Kind::kIndicator) {
    statement.exchange(soci::use(element.t, element.ind, names.Next()));
  } else {
    statement.exchange(soci::use(element.t, names.Next()));
  }
}

// libpq would cut a text parameter at a NUL and store the rest silently; the store refuses
// such a value instead (Error{kInvalidArgument}).
void RefuseNul(const std::string& text);
template <typename Element>
void RefuseNulIn(const Element& /*element*/) {}  // into elements, numbers
template <typename T, typename Indicator>
void RefuseNulIn(const soci::details::use_container<T, Indicator>& use) {
  using Value = std::remove_const_t<T>;
  if constexpr (std::is_same_v<Value, std::string>) {
    RefuseNul(use.t);
  } else if constexpr (std::is_same_v<Value, std::optional<std::string>>) {
    if (use.t) RefuseNul(*use.t);
  }
}
}  // namespace detail

// Rethrows a SOCI failure on `session` as model::Error by its SQLSTATE; one without a SQLSTATE
// is kUnavailable when the connection is lost, else kInternal (a bug of the store's).
[[noreturn]] void Rethrow(soci::session& session, const soci::soci_error& error);

// Parameters of a query built at run time, bound by position: Add returns the placeholder
// ("$3") to write into the query. Values are text, cast by PostgreSQL where the query says
// so ($3::bigint); nullopt binds NULL.
class Params {
 public:
  std::string Add(std::optional<std::string> value);
  std::string Add(std::int64_t value) { return Add(std::to_string(value)); }
  void BindTo(soci::statement& statement);

 private:
  std::deque<std::string> values_;  // deques: elements stay put while SOCI refers to them
  std::deque<soci::indicator> indicators_;
  detail::UseNames names_;
};

// Runs `query` once with `elements`: soci::use for $1..$n in order, soci::into for the
// columns of the first row. Returns whether a row came back. Throws model::Error.
template <typename... Elements>
bool Run(DbSession& db, const std::string& query, Elements&&... elements) {
  (detail::RefuseNulIn(elements), ...);
  try {
    soci::statement statement(db.sql());
    detail::UseNames names;
    (detail::Exchange(statement, std::forward<Elements>(elements), names), ...);
    statement.alloc();
    statement.prepare(detail::NamedPlaceholders(query), soci::details::st_one_time_query);
    statement.define_and_bind();
    return statement.execute(true);
  } catch (const soci::soci_error& e) {
    Rethrow(db.sql(), e);
  }
}

// Runs a write once with `uses` bound to $1..$n; returns the rows it changed.
template <typename... Uses>
std::int64_t Execute(DbSession& db, const std::string& query, Uses&&... uses) {
  (detail::RefuseNulIn(uses), ...);
  try {
    soci::statement statement(db.sql());
    detail::UseNames names;
    (detail::Exchange(statement, std::forward<Uses>(uses), names), ...);
    statement.alloc();
    statement.prepare(detail::NamedPlaceholders(query), soci::details::st_one_time_query);
    statement.define_and_bind();
    statement.execute(true);
    return statement.get_affected_rows();
  } catch (const soci::soci_error& e) {
    Rethrow(db.sql(), e);
  }
}

using RowFunction = std::function<void(const soci::row&)>;

// Runs `query` once and calls `each` for every row, in order. The row is reused: copy what
// must outlive the call.
template <typename... Uses>
void ForEachRow(DbSession& db, const std::string& query, const RowFunction& each, Uses&&... uses) {
  (detail::RefuseNulIn(uses), ...);
  try {
    soci::row row;
    soci::statement statement(db.sql());
    statement.exchange(soci::into(row));
    detail::UseNames names;
    (detail::Exchange(statement, std::forward<Uses>(uses), names), ...);
    statement.alloc();
    statement.prepare(detail::NamedPlaceholders(query), soci::details::st_one_time_query);
    statement.define_and_bind();
    if (!statement.execute(true)) return;
    do {
      each(row);
    } while (statement.fetch());
  } catch (const soci::soci_error& e) {
    Rethrow(db.sql(), e);
  }
}

// The same for a query built at run time with `params`.
void ForEachRow(DbSession& db, const std::string& query, Params& params, const RowFunction& each);
// One row of `query` into `row`; false when there is none.
bool OneRow(DbSession& db, const std::string& query, Params& params, soci::row& row);

// A query prepared once per connection, on first use, and kept until the connection is
// reopened: for the reads on every request's path. Parameters are text, $1..$n.
class PreparedRows {
 public:
  PreparedRows(soci::session& session, const std::string& query, std::size_t params);
  void ForEach(const std::vector<std::string>& params, const RowFunction& each);

 private:
  soci::session& session_;
  std::vector<std::string> params_;  // bound by reference; set before each execution
  detail::UseNames names_;
  soci::row row_;
  std::unique_ptr<soci::statement> statement_;
};
// The statement `name` of this connection, prepared from `query` the first time.
PreparedRows& Prepared(DbSession& db, std::string_view name, const std::string& query,
                       std::size_t params);

// --- reading columns of a soci::row (NULL-safe where the name says Optional) ---
std::int64_t Int(const soci::row& row, std::size_t column);  // any integer column
std::optional<std::int64_t> OptionalInt(const soci::row& row, std::size_t column);
std::string Text(const soci::row& row, std::size_t column);
std::optional<std::string> OptionalText(const soci::row& row, std::size_t column);
bool Bool(const soci::row& row, std::size_t column);
bool IsNull(const soci::row& row, std::size_t column);
// A cmdb_us(...) column (microseconds since the epoch) as a timestamp.
model::Timestamp Time(const soci::row& row, std::size_t column);
std::optional<model::Timestamp> OptionalTime(const soci::row& row, std::size_t column);
// A json/jsonb column read as text, parsed; null for NULL.
boost::json::value Json(const soci::row& row, std::size_t column);
// A bigint[] column in PostgreSQL's text form ({1,2,3}).
std::vector<std::int64_t> Ids(const soci::row& row, std::size_t column);

// --- values written into queries ---
// A bigint[] parameter's text: {1,2,3}.
std::string IdArray(const std::vector<std::int64_t>& ids);
// A text[] parameter's text: {"a","b \"c\""}.
std::string TextArray(const std::vector<std::string>& values);
// Parses PostgreSQL's text output of a bigint[] ("{1,2,3}", "{}"). Throws Error{kInternal}
// on anything else.
std::vector<std::int64_t> IdsFromArrayText(std::string_view text);
// The query that draws $1 ids from the sequence behind `table`.id, one per row: ids needed
// before a COPY. `table` must be a trusted name.
std::string NextIdsQuery(std::string_view table);
// Draws `count` ids from the sequence behind `table`.id.
std::vector<std::int64_t> NextIds(DbSession& db, std::string_view table, std::size_t count);

}  // namespace cmdb::store::sql
