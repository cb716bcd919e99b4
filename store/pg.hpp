#pragma once
// libpq, for what SOCI cannot do (internal to store/; see docs/architecture.md, "libpq"):
// COPY in and out (bulk writes of an import or a discovery run, streamed reads of the whole
// graph), bytea values in binary form (run and import payloads, the stored graph, which would
// double as hex text), SQL scripts run verbatim (SOCI rewrites every ":word" of a statement
// into a placeholder, comments and quoted text included), and the connection's status.
// LISTEN/NOTIFY lives in graph_cache.cpp.
// Not thread-safe: one session, one thread.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/db_pool.hpp"

extern "C" {
typedef struct pg_conn PGconn;  // NOLINT(modernize-use-using): libpq's declaration
}

namespace soci {
class session;
}

namespace cmdb::store::pg {

// The libpq connection behind a SOCI PostgreSQL session.
PGconn* Native(soci::session& session);
// Whether the connection is up (false once an operation found it lost).
bool IsConnected(soci::session& session);
// Whether the session is inside a transaction block (or a failed one).
bool InTransaction(soci::session& session);

// Runs `script` (several statements separated by ';') exactly as written. Throws model::Error.
void ExecuteScript(DbSession& db, const std::string& script);

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

// Streams `buffer` into `copy_statement` ("COPY t (a, b) FROM STDIN"). Throws model::Error.
void CopyIn(DbSession& db, const std::string& copy_statement, const CopyBuffer& buffer);
// The same with the rows in `parts` buffers, asked for in order: `part(i)` may wait for the
// part to be encoded, so that encoding overlaps PostgreSQL's work. What `part` throws ends the
// COPY (nothing of it is written) and is rethrown.
void CopyIn(DbSession& db, const std::string& copy_statement, std::size_t parts,
            const std::function<const CopyBuffer&(std::size_t)>& part);

// One row's fields as text, nullopt for NULL; valid during the call that receives them.
using Fields = std::vector<std::optional<std::string_view>>;

// Streams the rows of `COPY (query) TO STDOUT` (text format) to `row`, one call per row with
// its fields unescaped (a NULL as nullopt: told apart from the text \N). Memory stays flat
// however many rows there are. Throws model::Error.
void CopyOut(DbSession& db, const std::string& query,
             const std::function<void(const Fields& fields)>& row);

// `text` as an SQL string literal for this connection (PQescapeLiteral), for statements that
// take no parameters (COPY). Throws model::Error.
std::string QuoteLiteral(DbSession& db, std::string_view text);

// Runs the statement prepared on this connection as `name` (from `query`, the first time;
// forgotten when the connection is reopened) with $1..$n bound to `params` as text, and gives
// each row to `row`. For the hottest read (the batched GET of one CI): SOCI's dynamic rows
// describe and copy every column of every execution, which cost 10-20% of the req/s there
// (docs/benchmarks.md). Throws model::Error.
void ForEachPreparedRow(DbSession& db, std::string_view name, const std::string& query,
                        const std::vector<std::string>& params,
                        const std::function<void(const Fields& fields)>& row);

// The columns of the first row of `query` in binary form (a bytea as its bytes; a text column
// as its text); nullopt when there is no row, "" for NULL. $1..$n are `params` as text.
std::optional<std::vector<std::string>> ReadBinaryRow(DbSession& db, const std::string& query,
                                                      const std::vector<std::string>& params);

// Runs `query` with $1..$n bound to `params`, parameter number `bytes_at` (0-based) sent as
// binary bytes (a bytea: NUL included, no hex) and nullopt as NULL; returns the first column
// of the first row as an integer (an id RETURNING gives), or nullopt without a row.
std::optional<std::int64_t> WriteWithBytes(DbSession& db, const std::string& query,
                                           const std::vector<std::optional<std::string>>& params,
                                           std::size_t bytes_at);

// Decodes PostgreSQL's hex output of a bytea ("\\x4869"); other text is returned as is.
std::string DecodeBytea(std::string_view hex);

}  // namespace cmdb::store::pg
