#pragma once
// The operator's commands that work without a running server, against the data folder's
// embedded PostgreSQL (used as it is when a server runs on it, else started for the command)
// or --database: `cmdb user add` and `cmdb token create`, the way to recover a lost admin
// token.

#include <string>
#include <vector>

namespace cmdb::server {

// `cmdb user ...` with the arguments after "user"; the exit status.
int RunUserCommand(const std::vector<std::string>& args);
// `cmdb token ...` with the arguments after "token"; the exit status.
int RunTokenCommand(const std::vector<std::string>& args);

}  // namespace cmdb::server
