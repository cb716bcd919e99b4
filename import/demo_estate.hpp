#pragma once
// The sample estate `cmdb serve --demo` loads into an empty database: two business services,
// their applications, databases, VMs, hypervisors, two k-of-n clusters and the network, so a
// new user's first impact query shows something meaningful. The estate is data, an import
// document (import/demo_estate.json) compiled into the binary.

#include <boost/json/value.hpp>

#include "store/db_pool.hpp"

namespace cmdb::import {

// The estate as an import document ({"cis": [...], "relations": [...]}).
boost::json::value DemoEstateDocument();

// Imports the estate when the database holds no CI yet. Returns the number of CIs loaded
// (0 when the database was not empty).
int LoadDemoEstate(store::DbSession& db);

}  // namespace cmdb::import
