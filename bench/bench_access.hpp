#pragma once
// Access for the benchmarks: the servers they start make user admin with this token
// (CMDB_BOOTSTRAP_TOKEN), and every request of the benchmark carries it.

#include <string>
#include <vector>

#include "server/app.hpp"
#include "tests/integration/http_client.hpp"

namespace cmdb::bench {

inline constexpr const char* kBenchToken = "bench-admin-token_0123456789abcdefghijklmnop";
inline constexpr const char* kBenchPepper = "bench-pepper-0123456789abcdefghijklmnopqrstuvwxyz";

// Makes `config`'s server bootstrap the benchmark's admin, and this process's requests use it.
inline void WithBenchAccess(server::ServeConfig& config) {
  config.bootstrap_token = kBenchToken;
  config.token_pepper = kBenchPepper;
  testing::SetDefaultAuthorization(std::string("Bearer ") + kBenchToken);
}

// The same for a `cmdb serve` child process: its environment.
inline std::vector<std::string> BenchAccessEnvironment() {
  testing::SetDefaultAuthorization(std::string("Bearer ") + kBenchToken);
  return {std::string("CMDB_BOOTSTRAP_TOKEN=") + kBenchToken,
          std::string("CMDB_TOKEN_PEPPER=") + kBenchPepper};
}

}  // namespace cmdb::bench
