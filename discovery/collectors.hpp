#pragma once
// Collectors: real parsers for the outputs of real tools, each producing observations of CI
// type `server`-shaped attributes (hostname, fqdn, ip, ip_addresses, mac_addresses, os, ...).
// They throw model::Error{kInvalidArgument} with a message that says what is wrong with the
// input; none of them touches the database. Thread-safe (no shared state).

#include <string>
#include <string_view>
#include <vector>

#include "discovery/observation.hpp"

namespace cmdb::discovery {

// `nmap -oX` reports, parsed with expat: document type declarations may name the DTD but may
// not declare entities (no external entities, no entity expansion bombs), and nothing is
// fetched. Every host becomes one observation (hosts not "up" carry a skip_reason).
std::vector<Observation> ParseNmapXml(std::string_view xml);

// One file written by `ansible -m setup --tree DIR`: {"ansible_facts": {...}, ...}.
// `fallback_name` (the file name, which is the inventory host) labels it.
Observation ParseAnsibleFacts(std::string_view json_text, std::string_view fallback_name = {});

// Every regular file in a `--tree` directory, in name order.
std::vector<Observation> ReadAnsibleTree(const std::string& directory);

// Where CollectLocalHost reads; tests point these at fixtures.
struct LocalHostPaths {
  std::string os_release = "/etc/os-release";
  std::string proc = "/proc";
  std::string sys_class_net = "/sys/class/net";
  std::string machine_id = "/etc/machine-id";
  std::string product_serial = "/sys/class/dmi/id/product_serial";
};

// The machine cmdb runs on: hostname, fqdn, domain, os, os_version, kernel, cpu_count,
// memory_mb, machine_id, serial (when readable), ip_addresses, mac_addresses and the
// listening TCP ports from the kernel's socket tables (open_ports).
Observation CollectLocalHost(const LocalHostPaths& paths = {});

}  // namespace cmdb::discovery
