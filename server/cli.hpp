#pragma once
// The operator's commands that work without a running server, against the data folder's
// embedded PostgreSQL (used as it is when a server runs on it, else started for the command)
// or --database: `cmdb user add` and `cmdb token create`, the way to recover a lost admin
// token; `cmdb backup` and `cmdb restore`.

#include <string>
#include <vector>

namespace cmdb::server {

// `cmdb user ...` with the arguments after "user"; the exit status.
int RunUserCommand(const std::vector<std::string>& args);
// `cmdb token ...` with the arguments after "token"; the exit status.
int RunTokenCommand(const std::vector<std::string>& args);
// `cmdb backup --out FILE ...` with the arguments after "backup"; the exit status.
int RunBackupCommand(const std::vector<std::string>& args);
// `cmdb restore --in FILE ...` with the arguments after "restore"; the exit status.
int RunRestoreCommand(const std::vector<std::string>& args);

}  // namespace cmdb::server
