#pragma once
// `cmdb serve` as a child process, for the tests and benchmarks that kill or restart it: started
// with its stdout on a pipe that is read until it prints its URL (and kept open, so that its
// later output never meets a closed pipe), stopped with a signal.

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cmdb::testing {

struct CmdbProcess {
  pid_t pid = 0;
  std::uint16_t port = 0;  // 0: it did not print its URL
  FILE* out = nullptr;
};

// Runs `binary serve <args>` with `env` ("NAME=value", taking precedence) added to this
// process's environment; `ignore_sigint`: as a shell starts a background job.
CmdbProcess StartCmdb(const std::string& binary, const std::vector<std::string>& args,
                      bool ignore_sigint = false, const std::vector<std::string>& env = {});

// Sends `sig`, waits for the process and closes its output; returns its wait status.
int StopCmdb(CmdbProcess& process, int sig = SIGTERM);

}  // namespace cmdb::testing
