// nmap -oX reports through expat's streaming parser. The report is untrusted: entity
// declarations abort the parse (no expansion bombs, no external entities), and expat never
// fetches anything because no external-entity handler is installed.

#include <algorithm>
#include <set>
#include <string>

#include <expat.h>

#include "discovery/collector.hpp"
#include "model/error.hpp"

namespace cmdb::discovery {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

struct HostState {
  std::string state;
  std::vector<std::string> ipv4;
  std::vector<std::string> ipv6;
  std::vector<std::string> macs;
  std::vector<std::string> hostnames;  // user-given first, then PTR
  std::set<std::int64_t> open_ports;
  json::array services;
  // The port being read.
  std::string port_protocol;
  std::int64_t port_id = -1;
  std::string port_state;
  json::object port_service;
};

struct NmapParser {
  XML_Parser parser = nullptr;
  std::vector<Observation> out;
  std::string error;
  bool saw_root = false;
  int depth = 0;
  bool in_host = false;
  bool in_port = false;
  HostState host;

  static const char* Attr(const XML_Char** attrs, const char* name) {
    for (int i = 0; attrs[i] != nullptr; i += 2) {
      if (std::string_view(attrs[i]) == name) return attrs[i + 1];
    }
    return nullptr;
  }

  void Fail(std::string message) {
    if (error.empty()) {
      error =
          std::move(message) + " (line " + std::to_string(XML_GetCurrentLineNumber(parser)) + ")";
    }
    XML_StopParser(parser, XML_FALSE);
  }

  void Start(std::string_view name, const XML_Char** attrs) {
    ++depth;
    if (depth == 1) {
      if (name != "nmaprun") {
        Fail("not an nmap -oX report: the root element is <" + std::string(name) +
             ">, not <nmaprun>");
        return;
      }
      saw_root = true;
      return;
    }
    if (name == "host" && depth == 2) {
      in_host = true;
      host = HostState{};
      return;
    }
    if (!in_host) return;
    if (name == "status") {
      if (const char* s = Attr(attrs, "state")) host.state = s;
    } else if (name == "address") {
      const char* addr = Attr(attrs, "addr");
      const char* type = Attr(attrs, "addrtype");
      if (addr == nullptr || type == nullptr) {
        Fail("<address> without addr or addrtype");
        return;
      }
      std::string_view t(type);
      if (t == "ipv4") {
        host.ipv4.emplace_back(addr);
      } else if (t == "ipv6") {
        host.ipv6.emplace_back(addr);
      } else if (t == "mac") {
        std::string mac(addr);
        std::transform(mac.begin(), mac.end(), mac.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        host.macs.push_back(std::move(mac));
      }
    } else if (name == "hostname") {
      const char* n = Attr(attrs, "name");
      const char* type = Attr(attrs, "type");
      if (n != nullptr && *n != '\0') {
        if (type != nullptr && std::string_view(type) == "user") {
          host.hostnames.insert(host.hostnames.begin(), n);
        } else {
          host.hostnames.emplace_back(n);
        }
      }
    } else if (name == "port") {
      in_port = true;
      host.port_protocol = Attr(attrs, "protocol") != nullptr ? Attr(attrs, "protocol") : "";
      host.port_id = -1;
      host.port_state.clear();
      host.port_service = {};
      if (const char* id = Attr(attrs, "portid")) {
        char* end = nullptr;
        long v = std::strtol(id, &end, 10);
        if (end != nullptr && *end == '\0' && v >= 0 && v <= 65535) host.port_id = v;
      }
      if (host.port_id < 0) Fail("<port> with a missing or invalid portid");
    } else if (in_port && name == "state") {
      if (const char* s = Attr(attrs, "state")) host.port_state = s;
    } else if (in_port && name == "service") {
      for (const char* key : {"name", "product", "version", "extrainfo"}) {
        if (const char* v = Attr(attrs, key)) host.port_service[key] = v;
      }
    }
  }

  void End(std::string_view name) {
    --depth;
    if (!in_host) return;
    if (name == "port" && in_port) {
      in_port = false;
      if (host.port_state == "open") {
        if (host.port_protocol == "tcp") host.open_ports.insert(host.port_id);
        json::object service{{"port", host.port_id}, {"protocol", host.port_protocol}};
        for (auto& [k, v] : host.port_service) service[k] = v;
        host.services.push_back(std::move(service));
      }
    } else if (name == "host" && depth == 1) {
      in_host = false;
      Finish();
    }
  }

  void Finish() {
    Observation obs;
    json::object& a = obs.attributes;
    const std::string ip = !host.ipv4.empty()   ? host.ipv4.front()
                           : !host.ipv6.empty() ? host.ipv6.front()
                                                : std::string();
    if (ip.empty() && host.macs.empty()) {
      Fail("a <host> without any <address>");
      return;
    }
    if (!ip.empty()) a["ip"] = ip;
    json::array ips;
    for (const auto& v : host.ipv4) ips.emplace_back(v);
    for (const auto& v : host.ipv6) ips.emplace_back(v);
    if (!ips.empty()) a["ip_addresses"] = std::move(ips);
    if (!host.macs.empty()) {
      json::array macs;
      for (const auto& v : host.macs) macs.emplace_back(v);
      a["mac_addresses"] = std::move(macs);
    }
    if (!host.hostnames.empty()) {
      const std::string& n = host.hostnames.front();
      std::size_t dot = n.find('.');
      if (dot != std::string::npos && dot > 0 && dot + 1 < n.size()) {
        a["fqdn"] = n;
        a["hostname"] = n.substr(0, dot);
        a["domain"] = n.substr(dot + 1);
      } else {
        a["hostname"] = n;
      }
    }
    if (host.state == "up") {
      json::array ports;
      for (auto p : host.open_ports) ports.emplace_back(p);
      a["open_ports"] = std::move(ports);
      a["services"] = std::move(host.services);
    } else {
      obs.skip_reason = "nmap reports the host " +
                        (host.state.empty() ? std::string("without a state") : "as " + host.state);
    }
    obs.label = "host " + (ip.empty() ? host.macs.front() : ip);
    if (!host.hostnames.empty()) obs.label += " (" + host.hostnames.front() + ")";
    out.push_back(std::move(obs));
  }
};

void XMLCALL OnStart(void* data, const XML_Char* name, const XML_Char** attrs) {
  static_cast<NmapParser*>(data)->Start(name, attrs);
}
void XMLCALL OnEnd(void* data, const XML_Char* name) { static_cast<NmapParser*>(data)->End(name); }
void XMLCALL OnEntityDecl(void* data, const XML_Char* name, int, const XML_Char*, int,
                          const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*) {
  static_cast<NmapParser*>(data)->Fail("the report declares entity '" + std::string(name) +
                                       "'; entity declarations are refused");
}

}  // namespace

std::vector<Observation> ParseNmapXml(std::string_view xml) {
  if (xml.empty()) throw Error(ErrorCode::kInvalidArgument, "the nmap report is empty");
  XML_Parser parser = XML_ParserCreate(nullptr);
  if (parser == nullptr) throw Error(ErrorCode::kInternal, "cannot create an XML parser");
  NmapParser state;
  state.parser = parser;
  XML_SetUserData(parser, &state);
  XML_SetElementHandler(parser, OnStart, OnEnd);
  XML_SetEntityDeclHandler(parser, OnEntityDecl);
  XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
  const XML_Status status = XML_Parse(parser, xml.data(), static_cast<int>(xml.size()), XML_TRUE);
  std::string message;
  if (!state.error.empty()) {
    message = state.error;
  } else if (status != XML_STATUS_OK) {
    message = std::string("malformed XML: ") + XML_ErrorString(XML_GetErrorCode(parser)) +
              " (line " + std::to_string(XML_GetCurrentLineNumber(parser)) + ")";
  } else if (!state.saw_root) {
    message = "not an nmap -oX report";
  }
  XML_ParserFree(parser);
  if (!message.empty()) throw Error(ErrorCode::kInvalidArgument, "nmap report: " + message);
  return std::move(state.out);
}

}  // namespace cmdb::discovery
