#include "store/pg.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <memory>
#include <set>

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "model/error.hpp"
#include "store/connection_state.hpp"
#include "store/sqlstate.hpp"

namespace cmdb::store::pg {

using model::Error;
using model::ErrorCode;

namespace {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Throws the error of a failed result (or of the connection when there is none).
[[noreturn]] void ThrowResultError(PGconn* conn, PGresult* result) {
  // Both copied before the result is freed.
  const char* field = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string state = field != nullptr ? field : "";
  const std::string message =
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  if (result != nullptr) PQclear(result);
  ThrowDbError(state, message);
}

Result Check(PGconn* conn, PGresult* result, ExecStatusType expected) {
  if (PQresultStatus(result) != expected) ThrowResultError(conn, result);
  return {result, &PQclear};
}

}  // namespace

PGconn* Native(soci::session& session) {
  auto* backend = static_cast<soci::postgresql_session_backend*>(session.get_backend());
  return backend != nullptr ? backend->conn_ : nullptr;
}

bool IsConnected(soci::session& session) {
  PGconn* conn = Native(session);
  return conn != nullptr && PQstatus(conn) == CONNECTION_OK;
}

bool InTransaction(soci::session& session) {
  return PQtransactionStatus(Native(session)) != PQTRANS_IDLE;
}

void ExecuteScript(DbSession& db, const std::string& script) {
  PGconn* conn = Native(db.sql());
  PGresult* result = PQexec(conn, script.c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) ThrowResultError(conn, result);
  PQclear(result);
}

void CopyBuffer::Field(std::string_view value) {
  if (!first_in_row_) data_ += '\t';
  first_in_row_ = false;
  // Runs without a character to escape are appended whole: a decision-log block or a CI's
  // attributes are long runs of plain text.
  std::size_t run = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '\t' && c != '\n' && c != '\r') [[likely]] {
      continue;
    }
    data_.append(value.data() + run, i - run);
    data_ += '\\';
    data_ += c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
    run = i + 1;
  }
  data_.append(value.data() + run, value.size() - run);
}

void CopyBuffer::Bytea(std::string_view bytes) {
  constexpr std::string_view kHex = "0123456789abcdef";
  if (!first_in_row_) data_ += '\t';
  first_in_row_ = false;
  // "\x" introduces the hex form; COPY's text format doubles the backslash.
  const std::size_t at = data_.size();
  data_.resize(at + 3 + 2 * bytes.size());
  char* out = data_.data() + at;
  *out++ = '\\';
  *out++ = '\\';
  *out++ = 'x';
  for (unsigned char c : bytes) {
    *out++ = kHex[c >> 4U];
    *out++ = kHex[c & 15U];
  }
}

void CopyBuffer::Null() {
  if (!first_in_row_) data_ += '\t';
  first_in_row_ = false;
  data_ += "\\N";
}

void CopyBuffer::Int(std::int64_t value) {
  if (!first_in_row_) data_ += '\t';
  first_in_row_ = false;
  data_ += std::to_string(value);
}

void CopyBuffer::EndRow() {
  data_ += '\n';
  first_in_row_ = true;
  ++rows_;
}

void CopyIn(DbSession& db, const std::string& copy_statement, const CopyBuffer& buffer) {
  CopyIn(db, copy_statement, 1, [&buffer](std::size_t) -> const CopyBuffer& { return buffer; });
}

void CopyIn(DbSession& db, const std::string& copy_statement, std::size_t parts,
            const std::function<const CopyBuffer&(std::size_t)>& part) {
  PGconn* conn = Native(db.sql());
  Check(conn, PQexec(conn, copy_statement.c_str()), PGRES_COPY_IN);
  auto finish = [conn](const char* error) {
    const int ended = PQputCopyEnd(conn, error);
    PGresult* result = PQgetResult(conn);
    while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
    return std::make_pair(ended, result);
  };
  constexpr std::size_t kChunk = 1 << 20;
  try {
    for (std::size_t p = 0; p < parts; ++p) {
      const std::string& data = part(p).data();
      for (std::size_t offset = 0; offset < data.size(); offset += kChunk) {
        const std::size_t n = std::min(kChunk, data.size() - offset);
        if (PQputCopyData(conn, data.data() + offset, static_cast<int>(n)) != 1) {
          ThrowDbError("08000", PQerrorMessage(conn));
        }
      }
    }
  } catch (...) {
    // Ends the COPY as failed, so the connection is usable (and the transaction aborted).
    PQclear(finish("the data could not be prepared").second);
    throw;
  }
  auto [ended, result] = finish(nullptr);
  if (ended != 1) {
    PQclear(result);
    ThrowDbError("08000", PQerrorMessage(conn));
  }
  Check(conn, result, PGRES_COMMAND_OK);
}

std::string QuoteLiteral(DbSession& db, std::string_view text) {
  PGconn* conn = Native(db.sql());
  char* quoted = PQescapeLiteral(conn, text.data(), text.size());
  if (quoted == nullptr) ThrowDbError("22000", PQerrorMessage(conn));
  std::unique_ptr<char, decltype(&PQfreemem)> owned(quoted, &PQfreemem);
  return std::string(quoted);
}

void CopyOut(DbSession& db, const std::string& query,
             const std::function<void(const Fields& fields)>& row) {
  PGconn* conn = Native(db.sql());
  const std::string statement = "COPY (" + query + ") TO STDOUT";
  Check(conn, PQexec(conn, statement.c_str()), PGRES_COPY_OUT);
  Fields fields;
  std::vector<std::string> unescaped;  // storage for fields that held escapes
  for (;;) {
    char* line = nullptr;
    const int length = PQgetCopyData(conn, &line, 0);
    if (length == -1) break;  // done
    if (length < 0) ThrowDbError("08000", PQerrorMessage(conn));
    std::unique_ptr<char, decltype(&PQfreemem)> owned(line, &PQfreemem);
    std::string_view text(line, static_cast<std::size_t>(length));
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    fields.clear();
    unescaped.clear();
    // Views into `unescaped` must survive its growth: reserve a slot per field up front.
    unescaped.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\t')) + 1);
    std::size_t start_at = 0;
    for (;;) {
      const std::size_t tab = text.find('\t', start_at);
      std::string_view field = text.substr(
          start_at, tab == std::string_view::npos ? std::string_view::npos : tab - start_at);
      if (field == "\\N") {  // NULL (a text \N arrives escaped, as \\N)
        fields.emplace_back(std::nullopt);
        if (tab == std::string_view::npos) break;
        start_at = tab + 1;
        continue;
      }
      if (field.find('\\') != std::string_view::npos) {
        // Text-format escapes: every single-letter escape is honoured.
        std::string out;
        for (std::size_t i = 0; i < field.size(); ++i) {
          if (field[i] != '\\' || i + 1 == field.size()) {
            out += field[i];
            continue;
          }
          const char c = field[++i];
          out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        }
        unescaped.push_back(std::move(out));
        field = unescaped.back();
      }
      fields.push_back(field);
      if (tab == std::string_view::npos) break;
      start_at = tab + 1;
    }
    row(fields);
  }
  Check(conn, PQgetResult(conn), PGRES_COMMAND_OK);
  while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
}

void ForEachPreparedRow(DbSession& db, std::string_view name, const std::string& query,
                        const std::vector<std::string>& params,
                        const std::function<void(const Fields& fields)>& row) {
  PGconn* conn = Native(db.sql());
  const std::string statement(name);
  std::set<std::string, std::less<>>& prepared = db.state().native_prepared;
  if (!prepared.contains(name)) {
    Check(
        conn,
        PQprepare(conn, statement.c_str(), query.c_str(), static_cast<int>(params.size()), nullptr),
        PGRES_COMMAND_OK);
    prepared.insert(statement);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) {
    if (p.find('\0') != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument,
                  "text values cannot contain the NUL character (\\u0000)");
    }
    values.push_back(p.c_str());
  }
  Result r = Check(conn,
                   PQexecPrepared(conn, statement.c_str(), static_cast<int>(params.size()),
                                  values.data(), nullptr, nullptr, 0),
                   PGRES_TUPLES_OK);
  const int columns = PQnfields(r.get());
  Fields fields(static_cast<std::size_t>(columns));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    for (int c = 0; c < columns; ++c) {
      fields[static_cast<std::size_t>(c)] =
          PQgetisnull(r.get(), i, c) != 0
              ? std::nullopt
              : std::optional<std::string_view>(
                    std::in_place, PQgetvalue(r.get(), i, c),
                    static_cast<std::size_t>(PQgetlength(r.get(), i, c)));
    }
    row(fields);
  }
}

std::optional<std::vector<std::string>> ReadBinaryRow(DbSession& db, const std::string& query,
                                                      const std::vector<std::string>& params) {
  PGconn* conn = Native(db.sql());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  Result r = Check(conn,
                   PQexecParams(conn, query.c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), nullptr, nullptr, /*resultFormat=*/1),
                   PGRES_TUPLES_OK);
  if (PQntuples(r.get()) == 0) return std::nullopt;
  const int count = PQnfields(r.get());
  std::vector<std::string> columns;
  columns.reserve(static_cast<std::size_t>(count));
  for (int c = 0; c < count; ++c) {
    columns.emplace_back(PQgetvalue(r.get(), 0, c),
                         static_cast<std::size_t>(PQgetlength(r.get(), 0, c)));
  }
  return columns;
}

std::optional<std::int64_t> WriteWithBytes(DbSession& db, const std::string& query,
                                           const std::vector<std::optional<std::string>>& params,
                                           std::size_t bytes_at) {
  PGconn* conn = Native(db.sql());
  std::vector<const char*> values;
  std::vector<int> lengths(params.size(), 0);
  std::vector<int> formats(params.size(), 0);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    // libpq would cut a text value at a NUL and store the rest silently; refuse it instead.
    if (p && i != bytes_at && p->find('\0') != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument,
                  "text values cannot contain the NUL character (\\u0000)");
    }
    values.push_back(p ? p->data() : nullptr);
  }
  if (bytes_at < params.size() && params[bytes_at]) {
    if (params[bytes_at]->size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw Error(ErrorCode::kPayloadTooLarge, "a value over 2 GiB cannot be stored");
    }
    lengths[bytes_at] = static_cast<int>(params[bytes_at]->size());
    formats[bytes_at] = 1;
  }
  PGresult* raw = PQexecParams(conn, query.c_str(), static_cast<int>(params.size()), nullptr,
                               values.data(), lengths.data(), formats.data(), 0);
  const ExecStatusType status = PQresultStatus(raw);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) ThrowResultError(conn, raw);
  Result r(raw, &PQclear);
  if (PQntuples(r.get()) == 0 || PQnfields(r.get()) == 0) return std::nullopt;
  std::int64_t id = 0;
  const char* text = PQgetvalue(r.get(), 0, 0);
  std::from_chars(text, text + PQgetlength(r.get(), 0, 0), id);
  return id;
}

std::string DecodeBytea(std::string_view hex) {
  if (hex.size() < 2 || hex.substr(0, 2) != "\\x") return std::string(hex);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  out.reserve((hex.size() - 2) / 2);
  for (std::size_t i = 2; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1]));
  }
  return out;
}

}  // namespace cmdb::store::pg
