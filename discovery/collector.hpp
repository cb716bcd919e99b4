#pragma once
// Collectors: real parsers for the outputs of real tools, each producing observations of CI
// type `server`-shaped attributes (hostname, fqdn, ip, ip_addresses, mac_addresses, os, ...).
// One Collector per kind of source (model::SourceKind), registered in collector.cpp: a new
// kind is its row in model::kSourceKinds and its collector there. They throw
// model::Error{kInvalidArgument} with a message that says what is wrong with the input; none
// of them touches the database. Thread-safe (no shared state).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "discovery/observation.hpp"
#include "model/discovery_source.hpp"

namespace cmdb::discovery {

// What a run gives its source's collector: the source, and the run's body with its type.
struct CollectInput {
  const model::DiscoverySource& source;
  std::string_view content_type;  // "" when the run has no body
  std::string_view payload;       // the run's body; "" for none
};

class Collector {
 public:
  virtual ~Collector() = default;
  // Turns the input (a run's body, else what the source's config points at) into
  // observations. Throws model::Error{kInvalidArgument} saying what is wrong with the input.
  virtual std::vector<Observation> Collect(const CollectInput& input) const = 0;
};

// The collector of `kind`; every kind has one.
const Collector& CollectorFor(model::SourceKind kind);

// CollectorFor(source.kind).Collect(...): a run's observations.
std::vector<Observation> Collect(const model::DiscoverySource& source,
                                 std::string_view content_type, std::string_view payload);

}  // namespace cmdb::discovery

namespace cmdb::discovery {

// `nmap -oX` reports, parsed with expat: document type declarations may name the DTD but may
// not declare entities (no external entities, no entity expansion bombs), and nothing is
// fetched. Every host becomes one observation (hosts not "up" carry a skip_reason).
std::vector<Observation> ParseNmapXml(std::string_view xml);

// One file written by `ansible -m setup --tree DIR`: {"ansible_facts": {...}, ...}.
// `fallback_name` (the file name, which is the inventory host) labels it.
Observation ParseAnsibleFacts(std::string_view json_text, std::string_view fallback_name = {});

// What reading a `--tree` directory may take: a facts file is some 100 KB, a tree one per host.
struct AnsibleTreeLimits {
  std::size_t max_files = 100000;
  std::uintmax_t max_file_bytes = std::uintmax_t{16} * 1024 * 1024;
  std::uintmax_t max_total_bytes = std::uintmax_t{256} * 1024 * 1024;
};

// Every regular file in a `--tree` directory, in name order. Throws
// model::Error{kInvalidArgument} naming the limit a tree exceeds (too many files, a file or the
// whole tree too large) before reading it.
std::vector<Observation> ReadAnsibleTree(const std::string& directory,
                                         const AnsibleTreeLimits& limits = {});

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
