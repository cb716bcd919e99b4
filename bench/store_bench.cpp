// Where the store uses libpq instead of SOCI, measured side by side on one embedded
// PostgreSQL (docs/architecture.md, "libpq"):
// - bulk writes: N rows shaped like CI versions (id, name, a jsonb document), through SOCI's
//   bulk binding (INSERT with vectors in `use`) and through COPY FROM STDIN (pg::CopyIn);
// - one large bytea value read back (a stored graph or a run's payload), through SOCI (the
//   PostgreSQL backend reads it as hex text, decoded here) and in binary (pg::ReadBinaryRow).
// Usage: store_bench [--rows N] [--megabytes M] [--reps R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/pg.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

int HexDigit(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

// SOCI hands a bytea over as PostgreSQL's text form, "\x" and two hex digits per byte.
std::string DecodeHex(const std::string& text) {
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
    out.push_back(static_cast<char>(HexDigit(text[i]) * 16 + HexDigit(text[i + 1])));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 100000;
  std::size_t megabytes = 128;
  int reps = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--rows") rows = std::stoul(argv[++i]);
    if (flag == "--megabytes") megabytes = std::stoul(argv[++i]);
    if (flag == "--reps") reps = std::stoi(argv[++i]);
  }
  std::string dir = "/tmp/cmdbstore-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    std::optional<cmdb::store::DbSession> db =
        cmdb::store::DbSession::Connect(cluster.ConnectionString("cmdb"));
    soci::session& sql = db->sql();
    sql << "CREATE TABLE bulk (id bigint PRIMARY KEY, name text NOT NULL, attributes jsonb "
           "NOT NULL)";

    std::vector<long long> ids(rows);
    std::vector<std::string> names(rows);
    std::vector<std::string> documents(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      ids[i] = static_cast<long long>(i + 1);
      names[i] = "srv-" + std::to_string(i);
      documents[i] = R"({"memory_mb": 8192, "os": "Debian 12", "ip": "10.)" +
                     std::to_string(i % 250) + "." + std::to_string(i / 250 % 250) + R"(.7"})";
    }
    std::printf("bulk write of %zu rows (id, name, jsonb), best of %d:\n", rows, reps);
    double soci_best = 1e18;
    double copy_best = 1e18;
    for (int rep = 0; rep < reps; ++rep) {
      sql << "TRUNCATE bulk";
      auto t = Clock::now();
      {
        soci::transaction tr(sql);
        sql << "INSERT INTO bulk (id, name, attributes) VALUES (:id, :name, :doc::jsonb)",
            soci::use(ids), soci::use(names), soci::use(documents);
        tr.commit();
      }
      soci_best = std::min(soci_best, Ms(t));
      sql << "TRUNCATE bulk";
      t = Clock::now();
      cmdb::store::pg::CopyBuffer buffer;
      for (std::size_t i = 0; i < rows; ++i) {
        buffer.Int(ids[i]);
        buffer.Field(names[i]);
        buffer.Field(documents[i]);
        buffer.EndRow();
      }
      cmdb::store::pg::CopyIn(*db, "COPY bulk (id, name, attributes) FROM STDIN", buffer);
      copy_best = std::min(copy_best, Ms(t));
    }
    std::printf("  SOCI bulk INSERT (vectors in use): %.0f ms\n", soci_best);
    std::printf("  COPY FROM STDIN (pg::CopyIn):      %.0f ms (%.1fx)\n", copy_best,
                soci_best / copy_best);

    std::string blob(megabytes << 20, '\0');
    std::mt19937_64 random(42);
    for (char& c : blob) c = static_cast<char>(random() & 0xFF);
    sql << "CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)";
    sql << "ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL";
    cmdb::store::pg::WriteWithBytes(*db, "INSERT INTO blobs VALUES (1, $1) RETURNING id", {blob},
                                    0);
    std::printf("read of one %zu MB bytea, best of %d:\n", megabytes, reps);
    double soci_read = 1e18;
    double binary_read = 1e18;
    for (int rep = 0; rep < reps; ++rep) {
      auto t = Clock::now();
      std::string text;
      sql << "SELECT data FROM blobs WHERE id = 1", soci::into(text);
      const std::string decoded = DecodeHex(text);
      soci_read = std::min(soci_read, Ms(t));
      if (decoded != blob) std::printf("  SOCI read differs\n");
      t = Clock::now();
      std::optional<std::vector<std::string>> row =
          cmdb::store::pg::ReadBinaryRow(*db, "SELECT data FROM blobs WHERE id = 1", {});
      binary_read = std::min(binary_read, Ms(t));
      if (!row || (*row)[0] != blob) std::printf("  binary read differs\n");
    }
    std::printf("  SOCI (hex text, %zu MB on the wire, decoded): %.0f ms\n", megabytes * 2,
                soci_read);
    std::printf("  binary (pg::ReadBinaryRow, %zu MB):           %.0f ms (%.1fx)\n", megabytes,
                binary_read, soci_read / binary_read);
    db.reset();
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
