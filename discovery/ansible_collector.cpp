// Files written by `ansible -m setup --tree DIR`: one JSON document per inventory host,
// {"ansible_facts": {...}, "changed": false}, or {"unreachable": true, "msg": ...}.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "discovery/collector.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

const json::value* Fact(const json::object& facts, std::string_view name) {
  const json::value* v = facts.if_contains(name);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

void CopyString(const json::object& facts, std::string_view fact, json::object& out,
                std::string_view attribute) {
  if (const json::value* v = Fact(facts, fact);
      v != nullptr && v->is_string() && !v->get_string().empty()) {
    out[attribute] = v->get_string();
  }
}

void CopyInteger(const json::object& facts, std::string_view fact, json::object& out,
                 std::string_view attribute) {
  if (const json::value* v = Fact(facts, fact); v != nullptr && v->is_number()) {
    std::error_code ec;
    auto n = v->to_number<std::int64_t>(ec);
    if (!ec && n >= 0) out[attribute] = n;
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

Observation ParseAnsibleFacts(std::string_view json_text, std::string_view fallback_name) {
  const std::string where = fallback_name.empty()
                                ? std::string("ansible facts")
                                : "ansible facts for '" + std::string(fallback_name) + "'";
  json::value doc;
  try {
    doc = model::ParseJson(json_text);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, where + ": " + e.what());
  }
  const json::object* root = doc.if_object();
  if (root == nullptr) throw Error(ErrorCode::kInvalidArgument, where + " are not a JSON object");
  const json::value* unreachable = root->if_contains("unreachable");
  const json::value* failed = root->if_contains("failed");
  if ((unreachable != nullptr && unreachable->is_bool() && unreachable->get_bool()) ||
      (failed != nullptr && failed->is_bool() && failed->get_bool())) {
    const json::value* msg = root->if_contains("msg");
    throw Error(ErrorCode::kInvalidArgument,
                where + ": ansible could not gather facts" +
                    (msg != nullptr && msg->is_string() ? ": " + std::string(msg->get_string())
                                                        : std::string()));
  }
  const json::object* facts = root;
  if (const json::value* f = root->if_contains("ansible_facts")) {
    facts = f->if_object();
    if (facts == nullptr) {
      throw Error(ErrorCode::kInvalidArgument, where + ": ansible_facts is not an object");
    }
  }
  if (Fact(*facts, "ansible_hostname") == nullptr &&
      Fact(*facts, "ansible_machine_id") == nullptr) {
    throw Error(ErrorCode::kInvalidArgument,
                where +
                    " are not the output of the setup module (no ansible_facts with "
                    "ansible_hostname)");
  }
  Observation obs;
  json::object& a = obs.attributes;
  CopyString(*facts, "ansible_hostname", a, "hostname");
  CopyString(*facts, "ansible_fqdn", a, "fqdn");
  CopyString(*facts, "ansible_domain", a, "domain");
  CopyString(*facts, "ansible_distribution", a, "os");
  CopyString(*facts, "ansible_distribution_version", a, "os_version");
  CopyString(*facts, "ansible_kernel", a, "kernel");
  CopyString(*facts, "ansible_product_serial", a, "serial");
  CopyString(*facts, "ansible_machine_id", a, "machine_id");
  CopyInteger(*facts, "ansible_processor_vcpus", a, "cpu_count");
  CopyInteger(*facts, "ansible_memtotal_mb", a, "memory_mb");
  if (const json::value* d = Fact(*facts, "ansible_default_ipv4"); d != nullptr && d->is_object()) {
    if (const json::value* addr = d->get_object().if_contains("address");
        addr != nullptr && addr->is_string()) {
      a["ip"] = addr->get_string();
    }
  }
  json::array ips;
  for (const char* key : {"ansible_all_ipv4_addresses", "ansible_all_ipv6_addresses"}) {
    const json::value* list = Fact(*facts, key);
    if (list == nullptr) continue;
    if (!list->is_array())
      throw Error(ErrorCode::kInvalidArgument, where + ": " + key + " is not a list");
    for (const auto& ip : list->get_array()) {
      if (!ip.is_string()) continue;
      std::string text = Lower(std::string(ip.get_string()));
      if (text.rfind("fe80:", 0) == 0) continue;  // link-local: on every interface, says nothing
      ips.emplace_back(text);
    }
  }
  if (!ips.empty()) a["ip_addresses"] = std::move(ips);
  if (const json::value* ifaces = Fact(*facts, "ansible_interfaces");
      ifaces != nullptr && ifaces->is_array()) {
    std::vector<std::string> macs;
    for (const auto& iface : ifaces->get_array()) {
      if (!iface.is_string()) continue;
      std::string key = "ansible_" + std::string(iface.get_string());
      std::replace(key.begin(), key.end(), '-', '_');
      const json::value* details = Fact(*facts, key);
      if (details == nullptr || !details->is_object()) continue;
      const json::value* mac = details->get_object().if_contains("macaddress");
      if (mac == nullptr || !mac->is_string()) continue;
      std::string text = Lower(std::string(mac->get_string()));
      if (text == "00:00:00:00:00:00") continue;
      if (std::find(macs.begin(), macs.end(), text) == macs.end()) macs.push_back(text);
    }
    std::sort(macs.begin(), macs.end());
    if (!macs.empty()) {
      json::array list;
      for (auto& m : macs) list.emplace_back(m);
      a["mac_addresses"] = std::move(list);
    }
  }
  const json::value* fqdn = a.if_contains("fqdn");
  const json::value* hostname = a.if_contains("hostname");
  obs.label = "host " + (!fallback_name.empty() ? std::string(fallback_name)
                         : hostname != nullptr  ? std::string(hostname->get_string())
                                                : std::string("?"));
  if (fqdn != nullptr) obs.name = std::string(fqdn->get_string());
  return obs;
}

std::vector<Observation> ReadAnsibleTree(const std::string& directory,
                                         const AnsibleTreeLimits& limits) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    throw Error(ErrorCode::kInvalidArgument,
                "the ansible facts directory '" + directory + "' does not exist");
  }
  // Every file is sized before any is read: a tree over the limits is refused whole.
  std::vector<std::pair<fs::path, std::uintmax_t>> files;
  std::uintmax_t total = 0;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (!entry.is_regular_file()) continue;
    if (files.size() == limits.max_files) {
      throw Error(ErrorCode::kInvalidArgument, "'" + directory + "' holds more than " +
                                                   std::to_string(limits.max_files) + " files");
    }
    const std::uintmax_t size = entry.file_size();
    if (size > limits.max_file_bytes) {
      throw Error(ErrorCode::kInvalidArgument, "'" + entry.path().string() + "' is larger than " +
                                                   std::to_string(limits.max_file_bytes) +
                                                   " bytes");
    }
    total += size;
    if (total > limits.max_total_bytes) {
      throw Error(ErrorCode::kInvalidArgument, "the files of '" + directory + "' hold more than " +
                                                   std::to_string(limits.max_total_bytes) +
                                                   " bytes");
    }
    files.emplace_back(entry.path(), size);
  }
  if (ec)
    throw Error(ErrorCode::kInvalidArgument, "cannot read '" + directory + "': " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<Observation> out;
  out.reserve(files.size());
  for (const auto& [file, size] : files) {
    // At most the size it had when counted (a file still being written is cut there).
    std::string text(static_cast<std::size_t>(size), '\0');
    std::ifstream in(file, std::ios::binary);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    out.push_back(ParseAnsibleFacts(text, file.filename().string()));
  }
  return out;
}

}  // namespace cmdb::discovery
