#include "store/embedded_postgres.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <pwd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/error.hpp"
#include "store/db_pool.hpp"
#include "store/sql.hpp"

namespace cmdb::store {

using model::Error;
using model::ErrorCode;
namespace fs = std::filesystem;
namespace {

constexpr int kPort = 5432;
constexpr std::size_t kMaxSocketPath = 100;  // sun_path is 108 bytes with the terminator

bool IsRoot() { return geteuid() == 0; }

struct ClusterOwner {
  uid_t uid;
  gid_t gid;
};

ClusterOwner PostgresUser() {
  struct passwd entry {};
  struct passwd* pw = nullptr;
  std::array<char, 4096> buffer{};
  if (getpwnam_r("postgres", &entry, buffer.data(), buffer.size(), &pw) != 0 || pw == nullptr) {
    throw Error(ErrorCode::kUnavailable,
                "running as root, but there is no 'postgres' user to run the embedded "
                "PostgreSQL; install the postgresql package or run cmdb as another user");
  }
  return {pw->pw_uid, pw->pw_gid};
}

void ChownTree(const fs::path& path, ClusterOwner owner) {
  if (chown(path.c_str(), owner.uid, owner.gid) != 0) {
    throw Error(ErrorCode::kUnavailable,
                "cannot hand " + path.string() +
                    " to the postgres user: " + std::generic_category().message(errno));
  }
}

std::string ReadFirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The pid in `pid_text` when it is a live postgres process (not a zombie), else 0.
long LivePostgres(const std::string& pid_text) {
  const long pid = std::atol(pid_text.c_str());
  if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return 0;
  // A live PID might have been reused by an unrelated process; only a postgres process is the
  // server of this folder (the pid file is ours, so is the postgres it names).
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string comm = ReadFirstLine(proc + "/comm");
  if (comm != "postgres" && comm != "postmaster") return 0;
  // A killed postmaster stays a zombie until its parent reaps it: dead all the same.
  const std::string stat = ReadFirstLine(proc + "/stat");
  const std::size_t after_name = stat.rfind(')');
  if (after_name != std::string::npos && after_name + 2 < stat.size() &&
      stat[after_name + 2] == 'Z') {
    return 0;
  }
  return pid;
}

// The last line of the server's log that says something went wrong, for an error message.
std::string LastLogLine(const fs::path& path) {
  std::ifstream in(path);
  // Its tail is enough: the log of a long-lived cluster grows.
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > 65536) in.seekg(static_cast<std::streamoff>(size - 65536));
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (line.find("FATAL") != std::string::npos || line.find("ERROR") != std::string::npos ||
        line.find("PANIC") != std::string::npos) {
      last = line;
    }
  }
  return last.empty() ? "no error in its log" : last;
}

}  // namespace

std::string PostgresBinDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (!fs::exists(entry.path() / "bin" / "initdb")) continue;
    int version = std::atoi(name.c_str());
    if (version > best_version) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) {
    throw Error(ErrorCode::kUnavailable,
                "no PostgreSQL server binaries found under /usr/lib/postgresql; install the "
                "postgresql package or pass --database");
  }
  return best;
}

EmbeddedPostgres::EmbeddedPostgres(EmbeddedPostgresOptions options) : options_(std::move(options)) {
  fs::path root = fs::absolute(options_.data_dir).lexically_normal();
  options_.data_dir = root.string();
  pgdata_ = (root / "pgdata").string();
  log_path_ = (root / "postgresql.log").string();
  socket_dir_ = (root / "run").string();
  if (socket_dir_.size() + std::strlen("/.s.PGSQL.5432") > kMaxSocketPath) {
    // The socket path would be too long for sun_path: fall back to a private folder in /tmp
    // named after the data folder, so the same data folder always finds the same socket.
    socket_dir_ = "/tmp/cmdb-pg-" + std::to_string(std::hash<std::string>{}(root.string()));
  }
}

EmbeddedPostgres::~EmbeddedPostgres() {
  try {
    Stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

int EmbeddedPostgres::Run(const std::vector<std::string>& argv, bool as_cluster_owner) const {
  std::vector<std::string> full;
  if (as_cluster_owner && IsRoot()) {
    full = {"runuser", "-u", "postgres", "--"};
  }
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  args.reserve(full.size() + 1);
  for (auto& a : full) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    // The child: postgres must be able to enter its working directory; output goes to the
    // cluster's log so the terminal stays readable. Only async-signal-safe calls until exec.
    if (chdir("/") != 0) _exit(126);
    int fd = open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long EmbeddedPostgres::PostmasterPid() const {
  return LivePostgres(ReadFirstLine(fs::path(pgdata_) / "postmaster.pid"));
}

void EmbeddedPostgres::KillLeftovers(long pid) {
  // A postmaster that does not obey pg_ctl (stopped, hung in the kernel) is killed; its
  // backends notice and exit, and the restart replays the WAL as after any crash.
  if (kill(static_cast<pid_t>(pid), SIGKILL) != 0) return;
  for (int i = 0; i < 100 && PostmasterPid() == pid; ++i) usleep(100 * 1000);
}

void EmbeddedPostgres::WaitForOrphanedBackends() const {
  // Line 7 of the pid file: the key and id of the System V segment every server process of the
  // cluster stays attached to. PostgreSQL refuses to start while any is attached (backends of a
  // killed postmaster take a moment to notice and exit).
  std::ifstream in(fs::path(pgdata_) / "postmaster.pid");
  std::string line;
  for (int i = 0; i < 7 && std::getline(in, line); ++i) {
  }
  std::istringstream fields(line);
  long key = 0;
  int shmid = -1;
  if (!(fields >> key >> shmid) || shmid < 0) return;
  for (int i = 0; i < 100; ++i) {
    struct shmid_ds info {};
    if (shmctl(shmid, IPC_STAT, &info) != 0 || info.shm_nattch == 0) return;
    usleep(100 * 1000);
  }
}

void EmbeddedPostgres::RecoverFromCrash() {
  const fs::path pid_file = fs::path(pgdata_) / "postmaster.pid";
  if (!fs::exists(pid_file)) return;
  const std::string& bin = options_.bin_dir;
  const long pid = PostmasterPid();
  if (pid > 0) {
    if (Run({bin + "/pg_ctl", "-D", pgdata_, "-m", "fast", "-w", "-t", "30", "stop"}, true) != 0 &&
        Run({bin + "/pg_ctl", "-D", pgdata_, "-m", "immediate", "-w", "-t", "10", "stop"}, true) !=
            0) {
      KillLeftovers(pid);
    }
  }
  WaitForOrphanedBackends();
  if (fs::exists(pid_file) && PostmasterPid() == 0) {
    // The server is gone; its lock files are stale. PostgreSQL would refuse to start if the PID
    // in them now belongs to another process (or to the unreaped zombie of the killed
    // postmaster: the reaper of a container may be slow), so remove them.
    fs::remove(pid_file);
    const fs::path socket_lock =
        fs::path(socket_dir_) / (".s.PGSQL." + std::to_string(kPort) + ".lock");
    std::error_code ec;
    if (LivePostgres(ReadFirstLine(socket_lock)) == 0) fs::remove(socket_lock, ec);
  }
}

void EmbeddedPostgres::Restart() {
  if (!fs::exists(fs::path(pgdata_) / "PG_VERSION")) {
    // Start() would make a new, empty cluster: never in place of one that vanished.
    throw Error(ErrorCode::kUnavailable,
                "the cluster in " + pgdata_ + " is gone; not creating an empty one in its place");
  }
  const long pid = PostmasterPid();
  if (pid > 0) {
    // Alive but not answering (else no one would restart it): no fast shutdown to wait for.
    if (Run({options_.bin_dir + "/pg_ctl", "-D", pgdata_, "-m", "immediate", "-w", "-t", "5",
             "stop"},
            true) != 0) {
      KillLeftovers(pid);
    }
  }
  running_ = false;
  Start();
}

void EmbeddedPostgres::Start() {
  if (running_) return;
  // Resolved once: RecoverFromCrash and Stop use the same binaries.
  options_.bin_dir = PostgresBinDir(options_.bin_dir);
  const std::string& bin = options_.bin_dir;
  const fs::path root(options_.data_dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    throw Error(ErrorCode::kUnavailable,
                "cannot create data folder " + root.string() + ": " + ec.message());
  }
  fs::create_directories(socket_dir_, ec);
  chmod(socket_dir_.c_str(), 0700);
  if (IsRoot()) {
    ClusterOwner owner = PostgresUser();
    ChownTree(root, owner);
    ChownTree(socket_dir_, owner);
    { std::ofstream touch(log_path_, std::ios::app); }
    ChownTree(log_path_, owner);
    if (Run({"test", "-w", root.string()}, true) != 0) {
      throw Error(ErrorCode::kUnavailable,
                  "the postgres user cannot reach the data folder " + root.string() +
                      " (a parent folder such as /root is closed to other users); choose "
                      "--data-dir under a folder it can enter, e.g. /var/lib/cmdb");
    }
  } else {
    chmod(root.c_str(), 0700);
  }
  if (!fs::exists(fs::path(pgdata_) / "PG_VERSION")) {
    if (fs::exists(pgdata_)) fs::remove_all(pgdata_);  // a half-finished initdb
    std::vector<std::string> initdb = {
        bin + "/initdb", "-D", pgdata_, "-U",          "postgres",         "-A",
        "trust",         "-E", "UTF8",  "--no-locale", "--no-instructions"};
    if (!options_.durable) initdb.emplace_back("--no-sync");
    int rc = Run(initdb, true);
    if (rc != 0 || !fs::exists(fs::path(pgdata_) / "PG_VERSION")) {
      throw Error(ErrorCode::kUnavailable, "initdb failed for " + pgdata_ + "; see " + log_path_);
    }
  }
  RecoverFromCrash();
  std::string server_options = "-c listen_addresses='' -k " + socket_dir_ + " -p " +
                               std::to_string(kPort) +
                               " -c max_connections=200 -c shared_buffers=256MB";
  if (!options_.durable) {
    server_options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  }
  int rc = Run({bin + "/pg_ctl", "-D", pgdata_, "-l", log_path_, "-w", "-t", "60", "-o",
                server_options, "start"},
               true);
  if (rc != 0) {
    throw Error(ErrorCode::kUnavailable, "the embedded PostgreSQL did not start (" +
                                             LastLogLine(log_path_) + "); see " + log_path_);
  }
  running_ = true;
  // Create the application database on first start.
  DbSession admin = DbSession::Connect(ConnectionString("postgres"));
  bool exists = false;
  sql::Run(admin, "SELECT true FROM pg_database WHERE datname = 'cmdb'", soci::into(exists));
  if (!exists) sql::Execute(admin, "CREATE DATABASE cmdb");
}

bool EmbeddedPostgres::Running() const {
  if (!fs::exists(fs::path(pgdata_) / "postmaster.pid")) return false;
  try {
    DbSession probe = DbSession::Connect(ConnectionString("cmdb"));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void EmbeddedPostgres::Stop() {
  if (!running_) return;
  running_ = false;
  const std::string& bin = options_.bin_dir;
  if (Run({bin + "/pg_ctl", "-D", pgdata_, "-m", "fast", "-w", "-t", "60", "stop"}, true) != 0) {
    Run({bin + "/pg_ctl", "-D", pgdata_, "-m", "immediate", "-w", "-t", "30", "stop"}, true);
  }
}

std::string EmbeddedPostgres::ConnectionString(const std::string& database) const {
  return "host=" + socket_dir_ + " port=" + std::to_string(kPort) +
         " user=postgres dbname=" + database;
}

}  // namespace cmdb::store
