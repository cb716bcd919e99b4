#include "server/cli.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include <boost/json.hpp>
#include <unistd.h>

#include "auth/accounts.hpp"
#include "auth/token.hpp"
#include "model/access.hpp"
#include "model/error.hpp"
#include "store/audit_log_repository.hpp"
#include "store/backup.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "store/user_repository.hpp"

namespace cmdb::server {

namespace {

using model::Error;
using model::ErrorCode;

constexpr const char* kUserUsage =
    R"(usage: cmdb user add NAME --role ROLE [--role ROLE ...] [--tier 1|2|3]
                     [--source-id ID] [--display-name TEXT]
                     [--data-dir DIR | --database URL]

Creates a user in the database of the data folder (or --database), with or without a server
running on it. Roles: viewer, asset_admin, change_reviewer, incident_handler, group_lead,
quality_auditor, auditor, admin, discovery_agent.
)";

constexpr const char* kBackupUsage =
    R"(usage: cmdb backup --out FILE [--data-dir DIR | --database URL]

Saves everything in the database of the data folder (or --database) to FILE, while the server
keeps running: CIs, relations and their history, discovery runs, findings and decisions,
changes, incidents, knowledge, users, tokens and the audit log, as one consistent snapshot
(pg_dump), with the token pepper of the data folder (or CMDB_TOKEN_PEPPER) so that the tokens
work after a restore. FILE is mode 0600 and appears only once complete; keep it as safe as
the data itself.
)";

constexpr const char* kRestoreUsage =
    R"(usage: cmdb restore --in FILE [--data-dir DIR | --database URL]

Brings back a backup made by `cmdb backup` into an empty data folder (created when missing) or
an empty database, in one transaction: all of it or nothing. The backup's token pepper is
written to <data-dir>/token-pepper (unless CMDB_TOKEN_PEPPER is set, which must then be the
same). Start `cmdb serve` on it afterwards; the old tokens work.
)";

constexpr const char* kTokenUsage =
    R"(usage: cmdb token create --user NAME [--name TEXT] [--expires-in-days N]
                         [--role ROLE ...] [--data-dir DIR | --database URL]

Issues a token for an active user and prints it (only it) on standard output, e.g.
  TOKEN=$(cmdb token create --user admin --data-dir ./cmdb-data)
The token hash uses CMDB_TOKEN_PEPPER, or the data folder's token-pepper file.
)";

std::string Env(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): single-threaded
  return value != nullptr ? value : "";
}

struct Target {
  std::string data_dir = "./cmdb-data";
  std::string database;
};

// The database of `target` for the length of a command: --database as given; the data
// folder's cluster as it is when a server runs on it, else started (created, for a new
// folder) and stopped again. `migrate`: brought to the current schema first.
class CommandDatabase {
 public:
  explicit CommandDatabase(const Target& target, bool migrate = true) : dsn_(target.database) {
    if (dsn_.empty()) {
      postgres_ = std::make_unique<store::EmbeddedPostgres>(
          store::EmbeddedPostgresOptions{target.data_dir, true, ""});
      if (!postgres_->Running()) {
        postgres_->Start();
        started_ = true;
      }
      dsn_ = postgres_->ConnectionString();
    }
    session_.emplace(store::DbSession::Connect(dsn_));
    if (migrate) store::ApplyMigrations(*session_);
  }
  ~CommandDatabase() {
    session_.reset();
    if (started_) postgres_->Stop();
  }
  CommandDatabase(const CommandDatabase&) = delete;
  CommandDatabase& operator=(const CommandDatabase&) = delete;
  store::DbSession& session() { return *session_; }
  const std::string& dsn() const { return dsn_; }
  // Where pg_dump and pg_restore are: beside the embedded cluster's server, else the newest
  // installed (they work with servers of their major version and older).
  std::string bin_dir() const {
    return store::PostgresBinDir(postgres_ ? postgres_->bin_dir() : "");
  }

 private:
  std::string dsn_;
  std::unique_ptr<store::EmbeddedPostgres> postgres_;
  bool started_ = false;
  std::optional<store::DbSession> session_;
};

// What the command did, in the audit log like a write over HTTP.
void Audit(store::DbSession& db, const std::string& command, const std::string& target) {
  model::AuditEntry entry;
  entry.actor = "cli";
  entry.method = "CLI";
  entry.route = command;
  entry.path = command;
  entry.target_ids = {target};
  entry.status = 201;
  entry.request_id = "cli-" + std::to_string(getpid());
  entry.client_address = "local";
  store::AuditLogRepository(db).Append(entry);
}

// Parses "--flag value" pairs after position `first`; the handler gets each flag and its value.
void ParseFlags(const std::vector<std::string>& args, std::size_t first,
                const std::function<void(const std::string&, const std::string&)>& take) {
  for (std::size_t i = first; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0 || i + 1 >= args.size()) {
      throw Error(ErrorCode::kInvalidArgument, "expected --flag value, not '" + args[i] + "'" +
                                                   (i + 1 >= args.size() ? " (no value)" : ""));
    }
    take(args[i], args[i + 1]);
    ++i;
  }
}

model::Role ParseRole(const std::string& name) {
  std::optional<model::Role> role = model::RoleFromName(name);
  if (!role) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + name + "' is not a role; roles are " + model::NamesIn(model::kRoleNames));
  }
  return *role;
}

int ParseNumber(const std::string& flag, const std::string& value, int min, int max) {
  try {
    std::size_t used = 0;
    const int n = std::stoi(value, &used);
    if (used == value.size() && n >= min && n <= max) return n;
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
  }
  throw Error(ErrorCode::kInvalidArgument,
              flag + " takes a number from " + std::to_string(min) + " to " + std::to_string(max));
}

int Report(const Error& e) {
  std::cerr << "cmdb: " << e.what() << "\n";
  for (const auto& field : e.field_errors()) {
    std::cerr << "  " << field.field << ": " << field.message << "\n";
  }
  return e.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

// --data-dir and --database, shared by the commands; false for any other flag.
bool TakeTargetFlag(const std::string& flag, const std::string& value, Target& target) {
  if (flag == "--data-dir") {
    target.data_dir = value;
  } else if (flag == "--database") {
    target.database = value;
  } else {
    return false;
  }
  return true;
}

// Runs a command, reporting what it throws on stderr: the exit status.
int Guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const Error& e) {
    return Report(e);
  } catch (const std::exception& e) {
    std::cerr << "cmdb: " << e.what() << "\n";
    return 1;
  }
}

// The value of `file_flag` (required) among `args`, the others being --data-dir/--database.
std::string FileAndTarget(const std::vector<std::string>& args, const std::string& file_flag,
                          Target& target) {
  std::string file;
  ParseFlags(args, 0, [&](const std::string& flag, const std::string& value) {
    if (flag == file_flag) {
      file = value;
    } else if (!TakeTargetFlag(flag, value, target)) {
      throw Error(ErrorCode::kInvalidArgument, "unknown option " + flag);
    }
  });
  if (file.empty()) throw Error(ErrorCode::kInvalidArgument, file_flag + " FILE is required");
  return file;
}

// Whether `args` asks for help (--help, -h); prints `usage` when it does.
bool AskedForHelp(const std::vector<std::string>& args, const char* usage) {
  if (args.empty() || (args[0] != "--help" && args[0] != "-h")) return false;
  std::cout << usage;
  return true;
}

Target DefaultTarget() {
  Target target;
  if (auto v = Env("CMDB_DATA_DIR"); !v.empty()) target.data_dir = v;
  if (auto v = Env("CMDB_DATABASE_URL"); !v.empty()) target.database = v;
  return target;
}

}  // namespace

int RunUserCommand(const std::vector<std::string>& args) {
  if (AskedForHelp(args, kUserUsage)) return 0;
  if (args.size() < 2 || args[0] != "add" || args[1].rfind("--", 0) == 0) {
    std::cerr << kUserUsage;
    return 2;
  }
  return Guarded([&] {
    Target target = DefaultTarget();
    model::User user;
    user.name = args[1];
    if (std::string why = model::CheckUserName(user.name); !why.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "user name '" + user.name + "': " + why);
    }
    ParseFlags(args, 2, [&](const std::string& flag, const std::string& value) {
      if (flag == "--role") {
        user.roles.Add(ParseRole(value));
      } else if (flag == "--tier") {
        user.tier = ParseNumber(flag, value, 1, 3);
      } else if (flag == "--source-id") {
        user.source_id = ParseNumber(flag, value, 1, 2'000'000'000);
      } else if (flag == "--display-name") {
        user.display_name = value;
      } else if (!TakeTargetFlag(flag, value, target)) {
        throw Error(ErrorCode::kInvalidArgument, "unknown option " + flag);
      }
    });
    if (user.roles.empty()) throw Error(ErrorCode::kInvalidArgument, "give at least one --role");
    model::FieldErrors errors;
    model::CheckUser(user, errors);
    errors.ThrowIfAny("the user is invalid");
    CommandDatabase db(target);
    const model::User created = store::UserRepository(db.session()).Create(user);
    Audit(db.session(), "cmdb user add", created.name);
    std::cout << boost::json::serialize(model::UserToJson(created)) << "\n";
    return 0;
  });
}

int RunTokenCommand(const std::vector<std::string>& args) {
  if (AskedForHelp(args, kTokenUsage)) return 0;
  if (args.empty() || args[0] != "create") {
    std::cerr << kTokenUsage;
    return 2;
  }
  return Guarded([&] {
    Target target = DefaultTarget();
    std::string name;
    std::string token_name = "cli";
    int days = auth::kDefaultTokenDays;
    std::optional<model::RoleSet> roles;
    ParseFlags(args, 1, [&](const std::string& flag, const std::string& value) {
      if (flag == "--user") {
        name = value;
      } else if (flag == "--name") {
        token_name = value;
      } else if (flag == "--expires-in-days") {
        days = ParseNumber(flag, value, 1, 3650);
      } else if (flag == "--role") {
        if (!roles) roles = model::RoleSet{};
        roles->Add(ParseRole(value));
      } else if (!TakeTargetFlag(flag, value, target)) {
        throw Error(ErrorCode::kInvalidArgument, "unknown option " + flag);
      }
    });
    if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "--user NAME is required");
    const std::string pepper = auth::LoadPepper(Env("CMDB_TOKEN_PEPPER"), target.data_dir);
    CommandDatabase db(target);
    auth::CheckPepper(db.session(), pepper);
    std::optional<model::User> user = store::UserRepository(db.session()).Find(name);
    if (!user) throw Error(ErrorCode::kNotFound, "user '" + name + "' does not exist");
    if (!user->active) {
      throw Error(ErrorCode::kConflict, "user '" + name + "' is deactivated");
    }
    const model::Timestamp expires{model::Timestamp::Now().micros +
                                   std::int64_t{days} * 86'400'000'000};
    const auth::IssuedToken issued =
        auth::IssueToken(db.session(), pepper, *user, token_name, roles, expires, "cli");
    Audit(db.session(), "cmdb token create", std::to_string(issued.token.id));
    std::cout << issued.text << "\n";
    return 0;
  });
}

int RunBackupCommand(const std::vector<std::string>& args) {
  if (AskedForHelp(args, kBackupUsage)) return 0;
  return Guarded([&] {
    Target target = DefaultTarget();
    const std::string out = FileAndTarget(args, "--out", target);
    if (target.database.empty() && !std::filesystem::exists(std::filesystem::path(target.data_dir) /
                                                            "pgdata" / "PG_VERSION")) {
      // Not a new, empty cluster made for the occasion and backed up.
      throw Error(ErrorCode::kNotFound,
                  "no cmdb data folder at " + target.data_dir + " (give --data-dir or --database)");
    }
    CommandDatabase db(target, /*migrate=*/false);
    boost::json::object header{{"format", "cmdb-backup"},
                               {"version", 1},
                               {"created_at", model::FormatTimestamp(model::Timestamp::Now())}};
    if (std::string pepper = auth::ReadPepper(Env("CMDB_TOKEN_PEPPER"), target.data_dir);
        !pepper.empty()) {
      header["token_pepper"] = pepper;
    }
    const std::uint64_t size =
        store::WriteBackup(db.dsn(), db.bin_dir(), out, boost::json::serialize(header));
    std::cerr << "cmdb: backed up the database to " << out << " (" << size << " bytes)\n";
    return 0;
  });
}

int RunRestoreCommand(const std::vector<std::string>& args) {
  if (AskedForHelp(args, kRestoreUsage)) return 0;
  return Guarded([&] {
    Target target = DefaultTarget();
    const std::string in = FileAndTarget(args, "--in", target);
    boost::system::error_code ec;
    const boost::json::value header = boost::json::parse(store::ReadBackupHeader(in), ec);
    if (ec || !header.is_object() || !header.as_object().contains("format") ||
        header.at("format") != "cmdb-backup") {
      throw Error(ErrorCode::kInvalidArgument, in + " has no readable cmdb backup header");
    }
    const boost::json::object& fields = header.as_object();
    if (const auto* pepper = fields.if_contains("token_pepper"); pepper && pepper->is_string()) {
      auth::InstallPepper(Env("CMDB_TOKEN_PEPPER"), target.data_dir,
                          std::string(pepper->get_string()));
    }
    CommandDatabase db(target, /*migrate=*/false);
    store::RestoreBackup(db.session(), db.dsn(), db.bin_dir(), in);
    // A backup of an older cmdb is brought to this one's schema.
    store::ApplyMigrations(db.session());
    Audit(db.session(), "cmdb restore", in);
    std::cerr << "cmdb: restored " << in << " (taken "
              << (fields.contains("created_at") && fields.at("created_at").is_string()
                      ? std::string(fields.at("created_at").get_string())
                      : std::string("at an unknown time"))
              << ")\n";
    return 0;
  });
}

}  // namespace cmdb::server
