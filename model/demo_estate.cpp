#include "model/demo_estate.hpp"

#include <map>
#include <string>
#include <vector>

#include "model/db_query.hpp"
#include "model/importer.hpp"
#include "model/json.hpp"

namespace cmdb::model {
namespace {

class EstateBuilder {
 public:
  void Ci(const std::string& type, const std::string& name, json::object attributes,
          const std::string& owner, const std::vector<std::string>& tags = {"prod"},
          std::int64_t min_healthy = 0, const std::string& status = "active") {
    json::object ci{{"type", type}, {"name", name}, {"status", status}, {"owner", owner}};
    json::array t;
    for (auto& tag : tags) t.emplace_back(tag);
    ci["tags"] = std::move(t);
    ci["attributes"] = std::move(attributes);
    if (min_healthy > 0) ci["redundancy"] = json::object{{"min_healthy", min_healthy}};
    cis_.emplace_back(std::move(ci));
    types_[name] = type;
  }

  void Rel(const std::string& type, const std::string& from, const std::string& to) {
    relations_.emplace_back(json::object{{"type", type},
                                         {"from", {{"type", types_.at(from)}, {"name", from}}},
                                         {"to", {{"type", types_.at(to)}, {"name", to}}}});
  }

  json::value Build() { return json::object{{"cis", cis_}, {"relations", relations_}}; }

 private:
  json::array cis_;
  json::array relations_;
  std::map<std::string, std::string> types_;
};

json::object Host(const std::string& name, const std::string& ip, const std::string& os,
                  std::int64_t cpus, std::int64_t memory_mb, const std::string& serial = "") {
  json::object a{{"hostname", name},
                 {"fqdn", name + ".example.net"},
                 {"domain", "example.net"},
                 {"ip", ip},
                 {"os", os},
                 {"cpu_count", cpus},
                 {"memory_mb", memory_mb},
                 {"env", "prod"}};
  if (!serial.empty()) a["serial"] = serial;
  return a;
}

json::object Vm(const std::string& name, const std::string& ip, std::int64_t cpus,
                std::int64_t memory_mb) {
  return {{"hostname", name},
          {"fqdn", name + ".example.net"},
          {"ip", ip},
          {"os", "Debian GNU/Linux"},
          {"os_version", "12"},
          {"cpu_count", cpus},
          {"memory_mb", memory_mb},
          {"instance_id", "vm-" + name},
          {"hypervisor", "kvm"},
          {"env", "prod"}};
}

}  // namespace

json::value DemoEstateDocument() {
  EstateBuilder e;
  // Business services.
  e.Ci("business_service", "Online Shop",
       {{"service_code", "SHOP"}, {"criticality", "critical"}, {"sla", "99.9%"}, {"hours", "24x7"}},
       "ecommerce");
  e.Ci("business_service", "Payroll",
       {{"service_code", "PAY"},
        {"criticality", "high"},
        {"sla", "99.5%"},
        {"hours", "Mon-Fri 07:00-19:00"}},
       "hr-it");
  // Applications.
  struct App {
    const char* name;
    const char* code;
    const char* version;
    const char* criticality;
    const char* owner;
  };
  for (const App& app : {App{"shop-web", "SHOPWEB", "4.2.1", "critical", "ecommerce"},
                         App{"shop-api", "SHOPAPI", "4.2.0", "critical", "ecommerce"},
                         App{"shop-checkout", "CHECKOUT", "2.8.3", "critical", "payments"},
                         App{"shop-search", "SEARCH", "1.9.0", "high", "ecommerce"},
                         App{"auth-service", "AUTH", "3.1.4", "critical", "identity"},
                         App{"payroll-app", "PAYAPP", "2024.2", "high", "hr-it"},
                         App{"payroll-batch", "PAYBATCH", "2024.2", "medium", "hr-it"},
                         App{"reporting", "REPORT", "1.4.0", "low", "bi-team"}}) {
    e.Ci("application", app.name,
         {{"app_code", app.code},
          {"version", app.version},
          {"criticality", app.criticality},
          {"repository", std::string("git.example.net/") + app.name}},
         app.owner);
  }
  // Databases.
  e.Ci("database", "shop-db",
       {{"engine", "postgresql"},
        {"engine_version", "15.8"},
        {"host", "db-srv-01"},
        {"port", 5432},
        {"db_name", "shop"},
        {"size_gb", 420.5}},
       "dba-team");
  e.Ci("database", "shop-db-replica",
       {{"engine", "postgresql"},
        {"engine_version", "15.8"},
        {"host", "db-srv-02"},
        {"port", 5432},
        {"db_name", "shop"},
        {"size_gb", 420.5}},
       "dba-team");
  e.Ci("database", "auth-db",
       {{"engine", "postgresql"},
        {"engine_version", "15.8"},
        {"host", "db-srv-02"},
        {"port", 5433},
        {"db_name", "auth"},
        {"size_gb", 12}},
       "dba-team");
  e.Ci("database", "payroll-db",
       {{"engine", "oracle"},
        {"engine_version", "19c"},
        {"host", "db-srv-03"},
        {"port", 1521},
        {"db_name", "PAYPRD"},
        {"size_gb", 880}},
       "dba-team");
  e.Ci("database", "search-index",
       {{"engine", "opensearch"},
        {"engine_version", "2.11"},
        {"host", "search-vm-01"},
        {"port", 9200},
        {"db_name", "products"},
        {"size_gb", 64}},
       "ecommerce");
  e.Ci("database", "reporting-dw",
       {{"engine", "postgresql"},
        {"engine_version", "16.2"},
        {"host", "db-srv-03"},
        {"port", 5432},
        {"db_name", "dw"},
        {"size_gb", 2100}},
       "bi-team", {"prod", "analytics"});
  // Clusters (k-of-n).
  e.Ci("cluster", "web-pool", {{"technology", "nginx"}, {"members_expected", 4}}, "ecommerce",
       {"prod"}, 2);
  e.Ci("cluster", "api-pool", {{"technology", "kubernetes deployment"}, {"members_expected", 3}},
       "ecommerce", {"prod"}, 2);
  // Physical servers.
  for (int i = 1; i <= 4; ++i) {
    std::string n = "esx-0" + std::to_string(i);
    e.Ci("server", n,
         Host(n, "10.10.1." + std::to_string(10 + i), "VMware ESXi", 64, 524288,
              "CZJ9" + std::to_string(1000 + i)),
         "platform-team", {"prod", "hypervisor"});
  }
  for (int i = 1; i <= 3; ++i) {
    std::string n = "db-srv-0" + std::to_string(i);
    e.Ci("server", n,
         Host(n, "10.10.2." + std::to_string(10 + i), "Red Hat Enterprise Linux", 32, 262144,
              "MXQ7" + std::to_string(2000 + i)),
         "dba-team", {"prod", "database"});
  }
  e.Ci("server", "backup-srv-01",
       Host("backup-srv-01", "10.10.3.10", "Debian GNU/Linux", 16, 65536, "CZJ95001"),
       "platform-team", {"prod", "backup"});
  e.Ci("server", "old-db-srv", Host("old-db-srv", "10.10.2.99", "CentOS", 8, 32768, "OLD0001"),
       "dba-team", {"legacy"}, 0, "retired");
  // VMs, with the hypervisor each runs on.
  struct VmSpec {
    std::string name;
    std::string ip;
    std::int64_t cpus;
    std::int64_t mem;
    std::string esx;
  };
  std::vector<VmSpec> vms;
  for (int i = 1; i <= 4; ++i) {
    vms.push_back({"web-vm-0" + std::to_string(i), "10.20.1." + std::to_string(10 + i), 4, 8192,
                   "esx-0" + std::to_string((i - 1) % 4 + 1)});
  }
  for (int i = 1; i <= 3; ++i) {
    vms.push_back({"api-vm-0" + std::to_string(i), "10.20.2." + std::to_string(10 + i), 8, 16384,
                   "esx-0" + std::to_string(i % 4 + 1)});
  }
  for (int i = 1; i <= 2; ++i) {
    vms.push_back({"checkout-vm-0" + std::to_string(i), "10.20.3." + std::to_string(10 + i), 4,
                   8192, "esx-0" + std::to_string(i)});
    vms.push_back({"auth-vm-0" + std::to_string(i), "10.20.4." + std::to_string(10 + i), 2, 4096,
                   "esx-0" + std::to_string(i + 2)});
    vms.push_back({"payroll-vm-0" + std::to_string(i), "10.20.5." + std::to_string(10 + i), 8,
                   32768, "esx-0" + std::to_string(i + 1)});
  }
  vms.push_back({"search-vm-01", "10.20.6.11", 8, 32768, "esx-03"});
  vms.push_back({"batch-vm-01", "10.20.5.20", 4, 16384, "esx-04"});
  vms.push_back({"report-vm-01", "10.20.7.11", 4, 16384, "esx-04"});
  for (const VmSpec& vm : vms)
    e.Ci("vm", vm.name, Vm(vm.name, vm.ip, vm.cpus, vm.mem), "platform-team");
  // Network.
  struct Net {
    const char* name;
    const char* ip;
    const char* role;
    const char* vendor;
    const char* model;
  };
  for (const Net& n : {Net{"core-sw-01", "10.0.0.2", "switch", "Arista", "7280R3"},
                       Net{"core-sw-02", "10.0.0.3", "switch", "Arista", "7280R3"},
                       Net{"tor-sw-01", "10.0.1.2", "switch", "Arista", "7050X3"},
                       Net{"tor-sw-02", "10.0.1.3", "switch", "Arista", "7050X3"},
                       Net{"fw-01", "10.0.0.1", "firewall", "Palo Alto", "PA-3410"},
                       Net{"lb-01", "10.0.0.10", "load_balancer", "F5", "BIG-IP i5800"},
                       Net{"edge-router-01", "192.0.2.1", "router", "Juniper", "MX204"}}) {
    e.Ci("network_device", n.name,
         {{"hostname", n.name},
          {"ip", n.ip},
          {"role", n.role},
          {"vendor", n.vendor},
          {"model", n.model},
          {"serial", std::string("NET-") + n.name},
          {"location", "DC1 row A"}},
         "network-team");
  }
  // Shared platform services that both business services lean on.
  for (const App& app : {App{"dns", "DNS", "9.18", "critical", "network-team"},
                         App{"monitoring", "MON", "2.51", "medium", "platform-team"},
                         App{"backup", "BACKUP", "11.2", "medium", "platform-team"},
                         App{"mail-relay", "MAIL", "3.7", "low", "platform-team"}}) {
    e.Ci("application", app.name,
         {{"app_code", app.code}, {"version", app.version}, {"criticality", app.criticality}},
         app.owner, {"prod", "platform"});
  }
  std::vector<VmSpec> platform_vms = {{"dns-vm-01", "10.20.8.11", 2, 2048, "esx-01"},
                                      {"dns-vm-02", "10.20.8.12", 2, 2048, "esx-03"},
                                      {"mon-vm-01", "10.20.8.21", 4, 16384, "esx-02"},
                                      {"mail-vm-01", "10.20.8.31", 2, 4096, "esx-04"}};
  for (const VmSpec& vm : platform_vms) {
    e.Ci("vm", vm.name, Vm(vm.name, vm.ip, vm.cpus, vm.mem), "platform-team");
    vms.push_back(vm);
  }
  // A staging copy of the shop, which must not show up in production impact.
  for (int i = 1; i <= 3; ++i) {
    std::string n = "shop-stg-vm-0" + std::to_string(i);
    json::object a = Vm(n, "10.30.1." + std::to_string(10 + i), 2, 4096);
    a["env"] = "staging";
    e.Ci("vm", n, std::move(a), "ecommerce", {"staging"});
    vms.push_back({n, "", 0, 0, "esx-04"});
  }
  e.Ci("application", "shop-web-staging",
       {{"app_code", "SHOPWEB-STG"}, {"version", "4.3.0-rc1"}, {"criticality", "low"}}, "ecommerce",
       {"staging"});
  e.Ci("network_device", "san-01",
       {{"hostname", "san-01"},
        {"ip", "10.0.5.10"},
        {"role", "other"},
        {"vendor", "NetApp"},
        {"model", "AFF A400"},
        {"serial", "NET-san-01"},
        {"location", "DC1 row B"}},
       "storage-team");
  e.Ci("network_device", "lb-02",
       {{"hostname", "lb-02"},
        {"ip", "10.0.0.11"},
        {"role", "load_balancer"},
        {"vendor", "F5"},
        {"model", "BIG-IP i5800"},
        {"serial", "NET-lb-02"},
        {"location", "DC1 row A"}},
       "network-team", {"prod"}, 0, "planned");
  // Who needs whom.
  e.Rel("depends_on", "Online Shop", "shop-web");
  e.Rel("depends_on", "Online Shop", "shop-checkout");
  e.Rel("depends_on", "Online Shop", "shop-search");
  e.Rel("depends_on", "Payroll", "payroll-app");
  e.Rel("depends_on", "Payroll", "payroll-batch");
  e.Rel("depends_on", "shop-web", "shop-api");
  e.Rel("depends_on", "shop-web", "lb-01");
  e.Rel("depends_on", "shop-checkout", "shop-api");
  e.Rel("depends_on", "shop-checkout", "auth-service");
  e.Rel("depends_on", "shop-checkout", "shop-db");
  e.Rel("depends_on", "shop-api", "shop-db");
  e.Rel("depends_on", "shop-api", "auth-service");
  e.Rel("depends_on", "shop-search", "search-index");
  e.Rel("depends_on", "auth-service", "auth-db");
  e.Rel("depends_on", "payroll-app", "payroll-db");
  e.Rel("depends_on", "payroll-app", "auth-service");
  e.Rel("depends_on", "payroll-batch", "payroll-db");
  e.Rel("depends_on", "reporting", "reporting-dw");
  e.Rel("depends_on", "reporting", "shop-db-replica");
  e.Rel("runs_on", "shop-web", "web-pool");
  e.Rel("runs_on", "shop-api", "api-pool");
  for (int i = 1; i <= 4; ++i) e.Rel("member_of", "web-vm-0" + std::to_string(i), "web-pool");
  for (int i = 1; i <= 3; ++i) e.Rel("member_of", "api-vm-0" + std::to_string(i), "api-pool");
  e.Rel("runs_on", "shop-checkout", "checkout-vm-01");
  e.Rel("runs_on", "shop-checkout", "checkout-vm-02");
  e.Rel("runs_on", "auth-service", "auth-vm-01");
  e.Rel("runs_on", "auth-service", "auth-vm-02");
  e.Rel("runs_on", "payroll-app", "payroll-vm-01");
  e.Rel("runs_on", "payroll-app", "payroll-vm-02");
  e.Rel("runs_on", "payroll-batch", "batch-vm-01");
  e.Rel("runs_on", "reporting", "report-vm-01");
  e.Rel("runs_on", "search-index", "search-vm-01");
  e.Rel("runs_on", "shop-db", "db-srv-01");
  e.Rel("runs_on", "shop-db-replica", "db-srv-02");
  e.Rel("runs_on", "auth-db", "db-srv-02");
  e.Rel("runs_on", "payroll-db", "db-srv-03");
  e.Rel("runs_on", "reporting-dw", "db-srv-03");
  e.Rel("depends_on", "shop-db-replica", "shop-db");
  for (const VmSpec& vm : vms) e.Rel("hosted_on", vm.name, vm.esx);
  // Uplinks: a host needs its switch, a switch its core, the core the firewall; a host's
  // failure does not take its switch down, so these are depends_on, not connected_to.
  for (int i = 1; i <= 4; ++i) {
    e.Rel("depends_on", "esx-0" + std::to_string(i), i <= 2 ? "tor-sw-01" : "tor-sw-02");
  }
  for (int i = 1; i <= 3; ++i) e.Rel("depends_on", "db-srv-0" + std::to_string(i), "tor-sw-02");
  e.Rel("depends_on", "backup-srv-01", "tor-sw-01");
  e.Rel("depends_on", "tor-sw-01", "core-sw-01");
  e.Rel("depends_on", "tor-sw-02", "core-sw-02");
  e.Rel("depends_on", "core-sw-01", "fw-01");
  e.Rel("depends_on", "core-sw-02", "fw-01");
  e.Rel("depends_on", "lb-01", "core-sw-01");
  // The firewall-to-router link: a fault on it cuts both ends off.
  e.Rel("connected_to", "fw-01", "edge-router-01");
  e.Rel("runs_on", "dns", "dns-vm-01");
  e.Rel("runs_on", "dns", "dns-vm-02");
  e.Rel("runs_on", "monitoring", "mon-vm-01");
  e.Rel("runs_on", "backup", "backup-srv-01");
  e.Rel("runs_on", "mail-relay", "mail-vm-01");
  e.Rel("depends_on", "shop-api", "dns");
  e.Rel("depends_on", "payroll-app", "dns");
  e.Rel("depends_on", "payroll-batch", "mail-relay");
  e.Rel("depends_on", "monitoring", "dns");
  for (int i = 1; i <= 3; ++i)
    e.Rel("runs_on", "shop-web-staging", "shop-stg-vm-0" + std::to_string(i));
  for (int i = 1; i <= 4; ++i) e.Rel("depends_on", "esx-0" + std::to_string(i), "san-01");
  e.Rel("depends_on", "san-01", "core-sw-02");
  e.Rel("documents", "monitoring", "Online Shop");
  return e.Build();
}

int LoadDemoEstate(soci::session& sql) {
  PgResult count = Query(sql, "SELECT count(*) FROM configuration_items");
  if (count.Int(0, 0) > 0) return 0;
  ImportOptions options;
  options.ctx = {"demo", "import"};
  ImportResult result = ImportDocument(sql, DemoEstateDocument(), options);
  return result.cis.created;
}

}  // namespace cmdb::model
