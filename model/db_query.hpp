#pragma once
// Parameterised queries through the libpq connection under a SOCI session. SOCI owns the
// sessions, the pool and transactions; queries whose shape is built at run time (filters)
// or that run on every request (prepared) go through these thin wrappers, which bind every
// value as a parameter, never by string concatenation. Not thread-safe: one session, one
// thread, as SOCI.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "model/timestamp.hpp"

extern "C" {
typedef struct pg_result PGresult;  // NOLINT(modernize-use-using): libpq's declaration
}

namespace soci {
class session;
}

namespace cmdb::model {

using PgParam = std::optional<std::string>;  // nullopt binds SQL NULL
using PgParams = std::vector<PgParam>;

// A query result; columns are read as text.
class PgResult {
 public:
  explicit PgResult(PGresult* result);
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  bool IsNull(int row, int col) const;
  std::string_view Text(int row, int col) const;
  std::int64_t Int(int row, int col) const;
  std::optional<std::int64_t> OptionalInt(int row, int col) const;
  std::optional<std::string> OptionalText(int row, int col) const;
  bool Bool(int row, int col) const;
  // A column of microseconds since the epoch (cmdb_us()) as a timestamp; nullopt for NULL.
  std::optional<Timestamp> OptionalTimestamp(int row, int col) const;
  // A column of JSON text (a jsonb or json column cast to text) parsed; null for NULL.
  boost::json::value Json(int row, int col) const;
  std::int64_t affected() const;  // rows changed by INSERT/UPDATE/DELETE

 private:
  PGresult* result_;
};

// Runs `query` with $1..$n bound to `params`. Throws through ThrowDbError.
PgResult Query(soci::session& sql, const std::string& query, const PgParams& params = {});

// Like Query, but every result column comes in PostgreSQL's binary format; for a bytea
// column Text() is then the bytes themselves, not twice as many hex digits to decode.
PgResult QueryBinary(soci::session& sql, const std::string& query, const PgParams& params = {});

// The first column of `query`'s first row as bytes (through QueryBinary; the result is freed
// once they are copied): a payload. "" when there is no row or the value is NULL.
std::string QueryBytes(soci::session& sql, const std::string& query, const PgParams& params = {});

// Like Query, but parameter number `bytes_at` (0-based) goes in binary format: for a bytea
// parameter, the bytes themselves (NUL included) rather than twice as many hex digits.
PgResult QueryWithBytes(soci::session& sql, const std::string& query, const PgParams& params,
                        std::size_t bytes_at);

// Like Query, but prepares the statement once per connection under `name` and reuses it.
PgResult QueryPrepared(soci::session& sql, const char* name, const std::string& query,
                       const PgParams& params = {});

// Formats an integer parameter.
inline PgParam P(std::int64_t v) { return std::to_string(v); }
inline PgParam P(std::string_view v) { return std::string(v); }
inline PgParam P(const std::string& v) { return v; }
inline PgParam P(const char* v) { return std::string(v); }
inline PgParam P(const std::optional<std::string>& v) { return v; }

}  // namespace cmdb::model

namespace cmdb::model {

// Builds the text of a COPY ... FROM STDIN (text format) one row at a time.
class CopyBuffer {
 public:
  void Field(std::string_view value);  // escaped
  void Bytea(std::string_view bytes);  // a bytea value: its hex form, escaped
  void Null();
  void Int(std::int64_t value);
  void EndRow();
  const std::string& data() const { return data_; }
  std::size_t rows() const { return rows_; }

 private:
  std::string data_;
  bool first_in_row_ = true;
  std::size_t rows_ = 0;
};

// Formats a PostgreSQL array literal of text values: {"a","b \"c\""}.
std::string TextArrayLiteral(const std::vector<std::string>& values);
// Formats a PostgreSQL array literal of integers, for a $n::bigint[] parameter: {1,2,3}.
std::string IdArrayLiteral(const std::vector<std::int64_t>& ids);
// Ids as runs of consecutive values: `first` and `last` array literals ({1,7}, {4,7} for
// 1 2 3 4 7), for joining a table with unnest($1::bigint[], $2::bigint[]) on id BETWEEN
// the two: one index range scan per run instead of a probe per id. Any order, duplicates
// allowed.
struct IdRunLiterals {
  std::string first;
  std::string last;
  std::size_t runs = 0;
};
IdRunLiterals IdRuns(std::vector<std::int64_t> ids);
// Parses PostgreSQL's text output of a bigint[] ("{1,2,3}", "{}"). Cheaper than asking the
// server for JSON when thousands of rows carry one. Throws Error{kInternal} on anything else.
std::vector<std::int64_t> IdsFromArrayText(std::string_view text);

// The query that draws $1 ids from the sequence behind `table`.id, one per row: ids needed
// before a COPY (history rows, decision logs name them). `table` must be a trusted name.
std::string NextIdsQuery(std::string_view table);

// Decodes PostgreSQL's hex output of a bytea ("\\x4869"); other text is returned as is.
std::string DecodeBytea(std::string_view hex);

// Streams `buffer` into `copy_statement` ("COPY t (a, b) FROM STDIN"). Throws via ThrowDbError.
void CopyIn(soci::session& sql, const std::string& copy_statement, const CopyBuffer& buffer);
// The same with the rows in `parts` buffers, asked for in order: `part(i)` may wait for the
// part to be encoded, so that encoding overlaps PostgreSQL's work. What `part` throws ends the
// COPY (nothing of it is written) and is rethrown.
void CopyIn(soci::session& sql, const std::string& copy_statement, std::size_t parts,
            const std::function<const CopyBuffer&(std::size_t)>& part);

}  // namespace cmdb::model

namespace cmdb::model {

// Streams the rows of `COPY (query) TO STDOUT` (text format) to `row`, one call per row with
// its fields unescaped. Memory stays flat however many rows there are. Throws via
// ThrowDbError.
void CopyOut(soci::session& sql, const std::string& query,
             const std::function<void(const std::vector<std::string_view>& fields)>& row);

}  // namespace cmdb::model

namespace cmdb::model {

// A transaction on `sql`, or, when the session is already inside one, a savepoint in it, so
// the repositories' own transactions compose into a caller's (a discovery run writes its CIs,
// findings and decisions atomically). Rolls back unless Commit() was called. Do not mix with
// soci::transaction on the same session.
class Transaction {
 public:
  explicit Transaction(soci::session& sql);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit();
  bool nested() const { return nested_; }
  // Makes the transaction just begun read-only REPEATABLE READ, so that every query in it sees
  // one instant (a resource read in two queries cannot straddle another's commit). Call first,
  // before any query; not for a nested transaction.
  void ReadOnlySnapshot();

 private:
  soci::session& sql_;
  bool nested_ = false;
  bool done_ = false;
};

}  // namespace cmdb::model
