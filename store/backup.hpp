#pragma once
// Backups of a cmdb database, taken online: one file holding a header line (what the caller
// wants kept beside the data, as JSON) and then pg_dump's custom-format archive, which is
// consistent (one snapshot) while the server keeps writing. A restore replays the archive
// into an empty database in one transaction: all of it or nothing.

#include <cstdint>
#include <string>

namespace cmdb::store {

class DbSession;

// Dumps the database at `dsn` into `path` with `bin_dir`/pg_dump, `header_json` first. The file
// appears under its name only once complete and flushed (written beside it, then renamed), with
// mode 0600. Throws Error{kUnavailable} naming what failed. Returns the file's size.
std::uint64_t WriteBackup(const std::string& dsn, const std::string& bin_dir,
                          const std::string& path, const std::string& header_json);

// The header of the backup at `path`. Throws Error{kInvalidArgument} when it is not a backup
// written by WriteBackup.
std::string ReadBackupHeader(const std::string& path);

// Restores the backup at `path` into the database at `dsn` with `bin_dir`/pg_restore, in one
// transaction. Throws Error{kFailedPrecondition} when the database holds tables already,
// Error{kUnavailable} when pg_restore fails (nothing is left restored then).
void RestoreBackup(DbSession& target, const std::string& dsn, const std::string& bin_dir,
                   const std::string& path);

}  // namespace cmdb::store
