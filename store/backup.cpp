#include "store/backup.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
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

constexpr std::string_view kMagic = "CMDB-BACKUP 1 ";
constexpr std::size_t kMaxHeader = 64 * 1024;

[[noreturn]] void Fail(const std::string& what) {
  throw Error(ErrorCode::kUnavailable, what + ": " + std::strerror(errno));
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Starts `argv` with `child_in` as its standard input and `child_out` as its standard output
// (-1: /dev/null); its standard error is ours, so that what it reports reaches the operator.
pid_t Spawn(std::vector<std::string> argv, int child_in, int child_out) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) Fail("cannot start " + argv[0]);
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(child_in >= 0 ? child_in : null_fd, STDIN_FILENO);
    dup2(child_out >= 0 ? child_out : null_fd, STDOUT_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid`; throws naming `tool` unless it exited with status 0.
void Reap(pid_t pid, const std::string& tool) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Fail("waiting for " + tool);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error(ErrorCode::kUnavailable,
                tool + " failed (" +
                    (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                       : "killed by signal " + std::to_string(WTERMSIG(status))) +
                    "); its message is above");
  }
}

// A write to a pipe whose reader has gone returns EPIPE instead of killing the process.
struct IgnoreSigpipe {
  struct sigaction old {};
  IgnoreSigpipe() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &old);
  }
  ~IgnoreSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;
};

}  // namespace

std::uint64_t WriteBackup(const std::string& dsn, const std::string& bin_dir,
                          const std::string& path, const std::string& header_json) {
  if (header_json.find('\n') != std::string::npos || header_json.size() > kMaxHeader) {
    throw Error(ErrorCode::kInvalidArgument, "a backup header is one line of at most 64 KiB");
  }
  const std::string partial = path + ".partial";
  Fd file(open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (file.fd < 0) Fail("cannot create " + partial);
  bool done = false;
  struct RemovePartial {
    const std::string& name;
    const bool& done;
    ~RemovePartial() {
      if (!done) unlink(name.c_str());
    }
  } remove_partial{partial, done};
  const std::string header = std::string(kMagic) + header_json + "\n";
  if (!WriteAll(file.fd, header.data(), header.size())) Fail("cannot write " + partial);
  // Through a pipe, not into the file directly: an archive written to a pipe records no file
  // offsets, so the restore reads it front to back whatever comes before it in the file.
  std::array<int, 2> pipe_fds{};
  if (pipe2(pipe_fds.data(), O_CLOEXEC) != 0) Fail("cannot make a pipe");
  Fd from_dump(pipe_fds[0]);
  Fd to_us(pipe_fds[1]);
  // --no-owner/--no-privileges: the restore may run as another role than the backup.
  const pid_t dump = Spawn(
      {bin_dir + "/pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--dbname=" + dsn},
      -1, to_us.fd);
  to_us.Close();
  std::uint64_t size = header.size();
  std::array<char, 1 << 16> buffer{};
  bool write_failed = false;
  while (true) {
    const ssize_t n = read(from_dump.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!write_failed && !WriteAll(file.fd, buffer.data(), static_cast<std::size_t>(n))) {
      write_failed = true;  // keep reading, so that pg_dump ends and can be reaped
    }
    size += static_cast<std::uint64_t>(n);
  }
  Reap(dump, "pg_dump");
  if (write_failed) Fail("cannot write " + partial);
  if (fsync(file.fd) != 0) Fail("cannot flush " + partial);
  file.Close();
  if (rename(partial.c_str(), path.c_str()) != 0) Fail("cannot rename " + partial);
  done = true;
  // The rename itself is durable once the folder is flushed.
  const fs::path folder = fs::absolute(path).parent_path();
  if (Fd dir(open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir.fd >= 0) {
    fsync(dir.fd);
  }
  return size;
}

namespace {

// Reads the header line of the backup open as `fd`, leaving the descriptor just after it.
std::string ReadHeaderLine(int fd, const std::string& path) {
  std::string line;
  char c = 0;
  while (line.size() <= kMaxHeader + kMagic.size()) {
    const ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  if (c != '\n' || line.rfind(kMagic, 0) != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                path + " is not a cmdb backup (made by `cmdb backup --out FILE`)");
  }
  return line.substr(kMagic.size());
}

}  // namespace

std::string ReadBackupHeader(const std::string& path) {
  Fd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.fd < 0) {
    throw Error(ErrorCode::kInvalidArgument, "cannot read " + path + ": " + std::strerror(errno));
  }
  return ReadHeaderLine(file.fd, path);
}

void RestoreBackup(DbSession& target, const std::string& dsn, const std::string& bin_dir,
                   const std::string& path) {
  std::int64_t tables = 0;
  sql::Run(target,
           "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
           "'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
           soci::into(tables));
  if (tables > 0) {
    throw Error(ErrorCode::kFailedPrecondition,
                "the database holds " + std::to_string(tables) +
                    " tables already; restore into an empty data folder or an empty database");
  }
  Fd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.fd < 0) {
    throw Error(ErrorCode::kInvalidArgument, "cannot read " + path + ": " + std::strerror(errno));
  }
  ReadHeaderLine(file.fd, path);
  std::array<int, 2> pipe_fds{};
  if (pipe2(pipe_fds.data(), O_CLOEXEC) != 0) Fail("cannot make a pipe");
  Fd to_restore(pipe_fds[1]);
  Fd from_us(pipe_fds[0]);
  const pid_t restore = Spawn({bin_dir + "/pg_restore", "--single-transaction", "--exit-on-error",
                               "--no-owner", "--no-privileges", "--dbname=" + dsn},
                              from_us.fd, -1);
  from_us.Close();
  IgnoreSigpipe ignore;
  std::array<char, 1 << 16> buffer{};
  while (true) {
    const ssize_t n = read(file.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // pg_restore stopped reading (it failed): its exit status says why.
    if (!WriteAll(to_restore.fd, buffer.data(), static_cast<std::size_t>(n))) break;
  }
  to_restore.Close();
  Reap(restore, "pg_restore");
}

}  // namespace cmdb::store
