#include "import/demo_estate.hpp"

#include <string_view>
#include <utility>
#include <vector>

#include "import/importer.hpp"
#include "model/json.hpp"
#include "store/ci_repository.hpp"

namespace cmdb::demo {
std::vector<std::pair<std::string_view, std::string_view>> DemoFiles();
}

namespace cmdb::import {

boost::json::value DemoEstateDocument() {
  for (const auto& [name, text] : cmdb::demo::DemoFiles()) {
    if (name == "demo_estate.json") return model::ParseJson(text);
  }
  throw model::Error(model::ErrorCode::kInternal, "the demo estate is not in this binary");
}

int LoadDemoEstate(store::DbSession& db) {
  if (store::CiRepository(db).Count() > 0) return 0;
  ImportOptions options;
  options.ctx = {"demo", "import"};
  return ImportDocument(db, DemoEstateDocument(), options).cis.created;
}

}  // namespace cmdb::import
