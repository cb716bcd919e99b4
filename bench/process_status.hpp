#pragma once
// What /proc says of a process the benchmarks started: its memory, for the benchmarks that
// show a server's footprint beside what it served.

#include <fstream>
#include <string>

#include <sys/types.h>

namespace cmdb::bench {

// `field` of /proc/<pid>/status ("VmRSS", "VmHWM") in MiB; 0 when absent.
inline double StatusMiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return 0;
}

}  // namespace cmdb::bench
