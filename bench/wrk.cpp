#include "bench/wrk.hpp"

#include <array>
#include <cstdio>
#include <regex>

namespace cmdb::bench {

namespace {

std::string Run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  pclose(p);
  return out;
}

double ToMs(const std::string& value, const std::string& unit) {
  const double v = std::stod(value);
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

}  // namespace

WrkResult Wrk(std::uint16_t port, int seconds, int connections, const std::string& script) {
  WrkResult r;
  r.raw = Run("wrk -t1 -c" + std::to_string(connections) + " -d" + std::to_string(seconds) +
              "s --latency -s " + script + " http://127.0.0.1:" + std::to_string(port) + "/ 2>&1");
  std::smatch m;
  if (std::regex_search(r.raw, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    r.requests_per_second = std::stod(m[1]);
  }
  if (std::regex_search(r.raw, m, std::regex(R"(50%\s+([0-9.]+)(us|ms|s))"))) {
    r.p50_ms = ToMs(m[1], m[2]);
  }
  if (std::regex_search(r.raw, m, std::regex(R"(99%\s+([0-9.]+)(us|ms|s))"))) {
    r.p99_ms = ToMs(m[1], m[2]);
  }
  if (std::regex_search(r.raw, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) {
    r.non_2xx = std::stol(m[1]);
  }
  return r;
}

}  // namespace cmdb::bench
