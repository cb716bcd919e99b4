// The machine cmdb runs on, read from the files the kernel and the distribution provide.

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include "discovery/collector.hpp"
#include "model/error.hpp"

namespace cmdb::discovery {

namespace json = boost::json;

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return std::string(s);
}

// KEY=value lines, values optionally quoted (os-release(5)).
std::string OsReleaseValue(const std::string& text, std::string_view key) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 ||
        line[key.size()] != '=') {
      continue;
    }
    std::string value = Trim(std::string_view(line).substr(key.size() + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return {};
}

// Listening TCP ports from /proc/net/tcp{,6}: state 0A is LISTEN; the local address ends in
// ":PORT" in hexadecimal.
void ListeningPorts(const std::string& path, std::set<std::int64_t>& ports) {
  std::istringstream lines(ReadFile(path));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string local;
    std::string remote;
    std::string state;
    if (!(fields >> slot >> local >> remote >> state)) continue;
    if (state != "0A") continue;
    std::size_t colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    char* end = nullptr;
    long port = std::strtol(local.c_str() + colon + 1, &end, 16);
    if (end != nullptr && *end == '\0' && port > 0 && port <= 65535) ports.insert(port);
  }
}

}  // namespace

Observation CollectLocalHost(const LocalHostPaths& paths) {
  Observation obs;
  json::object& a = obs.attributes;
  std::string hostname = Trim(ReadFile(paths.proc + "/sys/kernel/hostname"));
  if (hostname.empty()) {
    throw model::Error(model::ErrorCode::kInvalidArgument,
                       "cannot read the host name from " + paths.proc);
  }
  if (std::size_t dot = hostname.find('.'); dot != std::string::npos && dot > 0) {
    a["fqdn"] = hostname;
    a["domain"] = hostname.substr(dot + 1);
    hostname = hostname.substr(0, dot);
  }
  a["hostname"] = hostname;
  const std::string os_release = ReadFile(paths.os_release);
  if (std::string os = OsReleaseValue(os_release, "NAME"); !os.empty()) a["os"] = os;
  if (std::string v = OsReleaseValue(os_release, "VERSION_ID"); !v.empty()) a["os_version"] = v;
  if (std::string k = Trim(ReadFile(paths.proc + "/sys/kernel/osrelease")); !k.empty()) {
    a["kernel"] = k;
  }
  {
    std::istringstream lines(ReadFile(paths.proc + "/cpuinfo"));
    std::string line;
    std::int64_t cpus = 0;
    while (std::getline(lines, line)) {
      if (line.rfind("processor", 0) == 0 && line.find(':') != std::string::npos) ++cpus;
    }
    if (cpus > 0) a["cpu_count"] = cpus;
  }
  {
    std::istringstream lines(ReadFile(paths.proc + "/meminfo"));
    std::string key;
    std::int64_t kb = 0;
    std::string unit;
    while (lines >> key >> kb >> unit) {
      if (key == "MemTotal:") {
        a["memory_mb"] = kb / 1024;
        break;
      }
    }
  }
  if (std::string id = Trim(ReadFile(paths.machine_id)); !id.empty()) a["machine_id"] = id;
  if (std::string serial = Trim(ReadFile(paths.product_serial)); !serial.empty()) {
    a["serial"] = serial;
  }
  {
    std::set<std::string> macs;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(paths.sys_class_net, ec)) {
      std::string mac = Trim(ReadFile(entry.path().string() + "/address"));
      std::transform(mac.begin(), mac.end(), mac.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (mac.size() == 17 && mac != "00:00:00:00:00:00") macs.insert(mac);
    }
    if (!macs.empty()) {
      json::array list;
      for (const auto& m : macs) list.emplace_back(m);
      a["mac_addresses"] = std::move(list);
    }
  }
  if (paths.proc == "/proc") {  // interface addresses come from the kernel, not from files
    std::vector<std::string> v4;
    std::vector<std::string> v6;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
      for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
        std::array<char, INET6_ADDRSTRLEN> text{};
        if (i->ifa_addr->sa_family == AF_INET) {
          const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
          if (inet_ntop(AF_INET, &sin->sin_addr, text.data(), text.size()) != nullptr) {
            v4.emplace_back(text.data());
          }
        } else if (i->ifa_addr->sa_family == AF_INET6) {
          const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
          if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) continue;
          if (inet_ntop(AF_INET6, &sin6->sin6_addr, text.data(), text.size()) != nullptr) {
            v6.emplace_back(text.data());
          }
        }
      }
      freeifaddrs(list);
    }
    if (!v4.empty()) a["ip"] = v4.front();
    json::array ips;
    for (const auto& v : v4) ips.emplace_back(v);
    for (const auto& v : v6) ips.emplace_back(v);
    if (!ips.empty()) a["ip_addresses"] = std::move(ips);
  }
  std::set<std::int64_t> ports;
  ListeningPorts(paths.proc + "/net/tcp", ports);
  ListeningPorts(paths.proc + "/net/tcp6", ports);
  json::array open;
  for (auto p : ports) open.emplace_back(p);
  a["open_ports"] = std::move(open);
  obs.label = "this host (" + hostname + ")";
  if (const json::value* fqdn = a.if_contains("fqdn")) obs.name = std::string(fqdn->get_string());
  return obs;
}

}  // namespace cmdb::discovery
