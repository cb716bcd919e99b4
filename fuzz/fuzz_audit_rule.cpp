// Audit rules as an asset admin (or a hostile client) writes them: the body is parsed as JSON,
// read as a rule, compiled against the default catalogue and, when it compiles, evaluated on a
// small estate with a cycle, a retired CI, shared serials and drift. Refusing is fine (a
// model::Error, or errors naming JSON pointers); anything else — a crash, a hang, an outcome
// out of range, an explanation that does not start with a pointer — is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "audit/rule_engine.hpp"
#include "fuzz/fuzz_check.hpp"
#include "model/audit.hpp"
#include "model/error.hpp"
#include "model/json.hpp"

namespace {

using cmdb::audit::EstateCi;

const cmdb::audit::Catalogue& TheCatalogue() {
  static const cmdb::audit::Catalogue c = [] {
    cmdb::audit::Catalogue out;
    out.ci_types["server"] = {"hostname", "serial", "mac_addresses", "env", "cpu_count"};
    out.ci_types["vm"] = {"hostname", "env"};
    out.ci_types["application"] = {"app_code"};
    out.ci_types["business_service"] = {"service_code"};
    out.relation_types = {"depends_on", "runs_on", "hosted_on"};
    return out;
  }();
  return c;
}

const cmdb::audit::Estate& TheEstate() {
  static const cmdb::audit::Estate estate = [] {
    auto ci = [](std::int64_t id, const char* type, const char* status, const char* attrs) {
      EstateCi c;
      c.id = id;
      c.type = type;
      c.name = std::string(type) + "-" + std::to_string(id);
      c.status = status;
      if (id % 2 == 0) c.owner = "ops";
      c.attributes = cmdb::model::ParseJson(attrs).as_object();
      c.changed_at = cmdb::model::Timestamp{1'700'000'000'000'000};
      if (id % 3 == 0) c.seen_at = c.changed_at;
      return c;
    };
    std::vector<EstateCi> cis{
        ci(1, "business_service", "active", "{}"),
        ci(2, "application", "active", R"({"app_code": "A"})"),
        ci(3, "vm", "active", R"({"hostname": "vm-3", "env": "prod"})"),
        ci(4, "server", "active",
           R"({"serial": " SN1 ", "mac_addresses": ["00:11:22:33:44:55"], "cpu_count": 8})"),
        ci(5, "server", "retired", R"({"serial": "sn1", "mac_addresses": ["00-11-22-33-44-55"]})"),
        ci(6, "application", "maintenance", "{}"),
    };
    std::vector<cmdb::audit::EstateRelation> rels{{1, 2, "depends_on"}, {2, 3, "runs_on"},
                                                  {3, 4, "hosted_on"},  {3, 5, "hosted_on"},
                                                  {2, 6, "depends_on"}, {6, 2, "depends_on"}};
    std::vector<cmdb::audit::EstateDrift> drift{{4, "os", false, cmdb::model::Timestamp{0}}};
    std::vector<cmdb::audit::EstateSource> sources{{1, "nmap", 7, 10, 2}};
    return cmdb::audit::Estate(cmdb::model::Timestamp{1'700'000'100'000'000}, std::move(cis), rels,
                               std::move(drift), std::move(sources));
  }();
  return estate;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::json::value body;
  try {
    body = cmdb::model::ParseJson(text);
  } catch (const cmdb::model::Error&) {
    return 0;
  }
  cmdb::model::FieldErrors errors;
  cmdb::model::AuditRule rule;
  try {
    rule = cmdb::model::AuditRuleFromJson(body, std::string("fuzz"), errors);
  } catch (const cmdb::model::Error&) {
    return 0;
  }
  if (!errors.empty()) return 0;
  auto compiled = cmdb::audit::Compile(rule, TheCatalogue(), errors);
  if (compiled == nullptr) {
    CMDB_FUZZ_CHECK(!errors.empty());
    for (const auto& e : errors.items()) CMDB_FUZZ_CHECK(e.field.empty() || e.field[0] == '/');
    return 0;
  }
  CMDB_FUZZ_CHECK(errors.empty());
  cmdb::audit::EvaluatorOptions options;
  options.max_visits = 100;
  cmdb::audit::Evaluator evaluator(TheEstate(), {compiled}, options);
  for (std::uint32_t i = 0; i < TheEstate().size(); ++i) {
    std::vector<std::string> why;
    const auto outcome = evaluator.Evaluate(0, i, &why);
    CMDB_FUZZ_CHECK(static_cast<int>(outcome) >= 0 && static_cast<int>(outcome) <= 3);
    for (const std::string& w : why) CMDB_FUZZ_CHECK(!w.empty());
    (void)evaluator.Message(0, i);
  }
  for (std::size_t s = 0; s < TheEstate().sources().size(); ++s) evaluator.EvaluateSource(0, s);
  return 0;
}
