#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "discovery/collector.hpp"
#include "model/error.hpp"

namespace cmdb::discovery {
namespace {

namespace json = boost::json;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(CMDB_FIXTURES_DIR) + "/discovery/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const model::Error& e) {
    EXPECT_EQ(e.code(), model::ErrorCode::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(Collectors, EveryKindOfSourceHasItsCollector) {
  for (const model::SourceKindTraits& kind : model::kSourceKinds) {
    EXPECT_NO_THROW(CollectorFor(kind.kind)) << kind.name;
  }
}

TEST(NmapCollector, ReadsEveryHostOfARecordedNetworkScan) {
  std::vector<Observation> hosts = ParseNmapXml(Fixture("nmap_network.xml"));
  ASSERT_EQ(hosts.size(), 4U);
  const json::object& db = hosts[0].attributes;
  EXPECT_TRUE(hosts[0].skip_reason.empty());
  EXPECT_EQ(db.at("ip"), "10.20.0.2");
  EXPECT_EQ(db.at("hostname"), "db-01");
  EXPECT_EQ(db.at("fqdn"), "db-01.corp.example");
  EXPECT_EQ(db.at("domain"), "corp.example");
  EXPECT_EQ(db.at("mac_addresses"), json::array({"52:54:00:ab:cd:02"}));  // lower-cased
  EXPECT_EQ(db.at("open_ports"), json::array({22, 5432}));  // the filtered 8080 is not open
  const json::array& services = db.at("services").as_array();
  ASSERT_EQ(services.size(), 2U);
  EXPECT_EQ(services[0].at("name"), "ssh");
  EXPECT_EQ(services[0].at("product"), "OpenSSH");
  EXPECT_EQ(services[0].at("version"), "9.2p1 Debian 2+deb12u3");
  EXPECT_EQ(services[1].at("port"), 5432);

  // A user-given name wins over the PTR record; UDP services are listed, open_ports is TCP.
  EXPECT_EQ(hosts[1].attributes.at("hostname"), "web-01");
  EXPECT_EQ(hosts[1].attributes.at("open_ports"), json::array({80, 443}));
  EXPECT_EQ(hosts[1].attributes.at("services").as_array().size(), 3U);

  EXPECT_EQ(hosts[2].attributes.at("ip"), "10.20.0.4");
  EXPECT_EQ(hosts[2].skip_reason, "nmap reports the host as down");

  EXPECT_FALSE(hosts[3].attributes.contains("hostname"));
  EXPECT_EQ(hosts[3].attributes.at("open_ports"), json::array());
  EXPECT_EQ(hosts[3].label, "host 10.20.0.5");
}

TEST(NmapCollector, ReadsARealScanOfThisMachine) {
  // Recorded from `nmap -oX - -p 22,5432,18080 -sV 127.0.0.1` with a server on 18080.
  std::vector<Observation> hosts = ParseNmapXml(Fixture("nmap_localhost.xml"));
  ASSERT_EQ(hosts.size(), 1U);
  EXPECT_EQ(hosts[0].attributes.at("ip"), "127.0.0.1");
  EXPECT_EQ(hosts[0].attributes.at("hostname"), "localhost");
  EXPECT_EQ(hosts[0].attributes.at("open_ports"), json::array({18080}));
}

TEST(NmapCollector, RefusesEntityTricksAndBrokenReports) {
  const std::string laughs = R"(<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<nmaprun><host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/>
<hostnames><hostname name="&d;" type="PTR"/></hostnames></host></nmaprun>)";
  EXPECT_NE(ErrorOf([&] { ParseNmapXml(laughs); }).find("entity"), std::string::npos);

  const std::string external = R"(<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<nmaprun><host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/>
<hostnames><hostname name="&x;" type="PTR"/></hostnames></host></nmaprun>)";
  EXPECT_NE(ErrorOf([&] { ParseNmapXml(external); }).find("entity"), std::string::npos);

  const std::string report = Fixture("nmap_network.xml");
  std::string truncated = ErrorOf([&] { ParseNmapXml(report.substr(0, report.size() / 2)); });
  EXPECT_NE(truncated.find("malformed XML"), std::string::npos) << truncated;
  EXPECT_NE(ErrorOf([&] { ParseNmapXml("<html><body/></html>"); }).find("not an nmap"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { ParseNmapXml(""); }).find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { ParseNmapXml("{\"items\": []}"); }).find("malformed"), std::string::npos);
  EXPECT_NE(
      ErrorOf([&] {
        ParseNmapXml(R"(<nmaprun><host><port protocol="tcp" portid="99999"/></host></nmaprun>)");
      }).find("portid"),
      std::string::npos);
}

TEST(AnsibleCollector, MapsTheFactsOfARealSetupRun) {
  // Recorded from `ansible all -i localhost, -c local -m setup --tree DIR` on a Debian 12 VM.
  Observation host = ParseAnsibleFacts(Fixture("ansible_localhost.json"), "localhost");
  const json::object& a = host.attributes;
  EXPECT_EQ(a.at("hostname"), "vm");
  EXPECT_EQ(a.at("os"), "Debian");
  EXPECT_EQ(a.at("os_version"), "12.11");
  EXPECT_EQ(a.at("cpu_count"), 2);
  EXPECT_EQ(a.at("memory_mb"), 24105);
  EXPECT_EQ(a.at("machine_id"), "3d1219c7c4c5404aaa1f6d2a48adfda4");
  EXPECT_EQ(a.at("serial"), "NA");  // junk, but junk is reconciliation's call
  EXPECT_EQ(a.at("ip"), "192.0.2.2");
  // Every interface's MAC but lo's zeros, sorted.
  EXPECT_EQ(a.at("mac_addresses"),
            json::array({"02:fc:00:00:00:01", "26:fe:6e:4c:00:7e", "82:b7:41:40:42:1d"}));
  EXPECT_FALSE(a.contains("domain"));  // empty in the facts
  EXPECT_TRUE(a.at("kernel").is_string());
  EXPECT_EQ(host.label, "host localhost");
}

TEST(AnsibleCollector, RefusesUnreachableHostsAndOtherShapes) {
  std::string unreachable =
      ErrorOf([] { ParseAnsibleFacts(Fixture("ansible_unreachable.json"), "db-09"); });
  EXPECT_NE(unreachable.find("No route to host"), std::string::npos) << unreachable;
  EXPECT_NE(ErrorOf([] { ParseAnsibleFacts("[1, 2]"); }).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseAnsibleFacts(R"({"items": []})"); }).find("setup module"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseAnsibleFacts(R"({"ansible_facts": "x"})"); }).find("not an object"),
            std::string::npos);
  const std::string facts = Fixture("ansible_localhost.json");
  EXPECT_FALSE(ErrorOf([&] { ParseAnsibleFacts(facts.substr(0, 500)); }).empty());
  EXPECT_NE(
      ErrorOf([] {
        ParseAnsibleFacts(
            R"({"ansible_facts": {"ansible_hostname": "a", "ansible_all_ipv4_addresses": "10.0.0.1"}})");
      }).find("not a list"),
      std::string::npos);
}

// A --tree folder is read only when it stays within the limits: file count, file size and
// the whole tree's size, each named in the refusal, checked before anything is read.
TEST(AnsibleCollector, TreeReaderRefusesFoldersOverItsLimits) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("cmdb-tree-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string facts = Fixture("ansible_localhost.json");
  for (const char* host : {"web-01", "web-02", "web-03"}) {
    std::ofstream(dir / host, std::ios::binary) << facts;
  }
  fs::create_directory(dir / "subfolder");  // not a file: ignored
  EXPECT_EQ(ReadAnsibleTree(dir.string()).size(), 3U);
  const std::uintmax_t size = facts.size();
  EXPECT_NE(ErrorOf([&] {
              ReadAnsibleTree(dir.string(), {2, size, 10 * size});
            }).find("more than 2 files"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              ReadAnsibleTree(dir.string(), {10, size - 1, 10 * size});
            }).find("is larger than"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              ReadAnsibleTree(dir.string(), {10, size, 2 * size + 1});
            }).find("hold more than"),
            std::string::npos);
  EXPECT_EQ(ReadAnsibleTree(dir.string(), {3, size, 3 * size}).size(), 3U);  // at the limits
  fs::remove_all(dir);
}

TEST(LocalHostCollector, ReadsTheKernelAndDistributionFiles) {
  const std::string root = std::string(CMDB_FIXTURES_DIR) + "/discovery/local_host";
  LocalHostPaths paths;
  paths.os_release = root + "/os-release";
  paths.proc = root + "/proc";
  paths.sys_class_net = root + "/sys_class_net";
  paths.machine_id = root + "/machine-id";
  paths.product_serial = root + "/missing";
  Observation host = CollectLocalHost(paths);
  const json::object& a = host.attributes;
  EXPECT_EQ(a.at("hostname"), "app-07");
  EXPECT_EQ(a.at("fqdn"), "app-07.corp.example");
  EXPECT_EQ(a.at("domain"), "corp.example");
  EXPECT_EQ(a.at("os"), "Debian GNU/Linux");
  EXPECT_EQ(a.at("os_version"), "12");
  EXPECT_EQ(a.at("kernel"), "6.1.0-27-amd64");
  EXPECT_EQ(a.at("cpu_count"), 4);
  EXPECT_EQ(a.at("memory_mb"), 7976);
  EXPECT_EQ(a.at("machine_id"), "4c1d9a6e3f2b4e0c9d8a7b6c5d4e3f2a");
  EXPECT_FALSE(a.contains("serial"));
  EXPECT_EQ(a.at("mac_addresses"), json::array({"52:54:00:aa:bb:07"}));
  // LISTEN sockets only (state 0A), IPv4 and IPv6, each port once.
  EXPECT_EQ(a.at("open_ports"), json::array({22, 443, 8080}));
}

TEST(LocalHostCollector, SeesThisMachine) {
  Observation host = CollectLocalHost();
  EXPECT_FALSE(host.attributes.at("hostname").as_string().empty());
  EXPECT_GT(host.attributes.at("cpu_count").as_int64(), 0);
  EXPECT_GT(host.attributes.at("memory_mb").as_int64(), 0);
  EXPECT_TRUE(host.attributes.at("open_ports").is_array());
}

TEST(AgentPayload, NamesTheItemOfTheWrongShape) {
  auto error = [](const char* text) {
    return ErrorOf([&] { ParseAgentPayload(json::parse(text)); });
  };
  EXPECT_NE(error(R"([])").find("items"), std::string::npos);
  EXPECT_NE(error(R"({"items": [{"identity": {"a": 1}}, 3]})").find("items[1]"), std::string::npos);
  EXPECT_NE(error(R"({"items": [{"identity": []}]})").find("items[0].identity"), std::string::npos);
  EXPECT_NE(error(R"({"items": [{"identity": {}, "extra": 1}]})").find("extra"), std::string::npos);
  EXPECT_NE(error(R"({"items": [{}]})").find("neither"), std::string::npos);
  EXPECT_NE(error(R"({"items": [], "more": 1})").find("more"), std::string::npos);
  auto items = ParseAgentPayload(json::parse(
      R"({"items": [{"type": "vm", "name": "vm-1", "identity": {"instance_id": "i-1"}, "attributes": {"os": "Debian"}}]})"));
  ASSERT_EQ(items.size(), 1U);
  EXPECT_EQ(items[0].type, "vm");
  EXPECT_EQ(items[0].label, "items[0] (vm-1)");
}

}  // namespace
}  // namespace cmdb::discovery
