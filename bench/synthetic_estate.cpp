#include "bench/synthetic_estate.hpp"

#include <algorithm>
#include <random>
#include <string>

#include "store/pg.hpp"

namespace cmdb::bench {

using cmdb::model::CiId;

Estate Generate(std::size_t total) {
  Estate e;
  std::mt19937_64 rng(42);
  auto add = [&](const char* type, std::size_t count, std::int32_t min_healthy = 0) {
    CiId first = static_cast<CiId>(e.nodes.size()) + 1;
    for (std::size_t i = 0; i < count; ++i) {
      CiId id = static_cast<CiId>(e.nodes.size()) + 1;
      e.nodes.push_back(
          {id, type, std::string(type) + "-" + std::to_string(i), "active", min_healthy});
    }
    return first;
  };
  auto pick = [&](CiId first, std::size_t count) {
    return first + static_cast<CiId>(rng() % count);
  };
  std::int64_t rel = 0;
  auto link = [&](CiId from, CiId to, const char* type) {
    e.edges.push_back({++rel, from, to, type});
  };
  const double f = static_cast<double>(total) / 1000000.0;
  auto n = [&](double count) {
    return std::max<std::size_t>(1, static_cast<std::size_t>(count * f));
  };
  std::size_t services = n(200), apps = n(20000), dbs = n(40000), clusters = n(20000), hubs = 4,
              cores = n(100), tors = n(9680), hvs = n(300000);
  CiId svc = add("business_service", services);
  CiId app = add("application", apps);
  CiId db = add("database", dbs);
  CiId cl = add("cluster", clusters, 2);
  CiId hub = add("network_device", hubs);  // DNS and storage: everything leans on them
  CiId core = add("network_device", cores);
  CiId tor = add("network_device", tors);
  CiId hv = add("server", hvs);
  std::size_t vms = total > e.nodes.size() ? total - e.nodes.size() : 1;
  CiId vm = add("vm", vms);
  e.first_core = core;
  e.first_tor = tor;
  e.first_hv = hv;
  e.first_vm = vm;
  e.storage_hub = hub;
  e.first_service = svc;
  e.first_app = app;
  e.first_db = db;
  e.first_cluster = cl;
  e.apps = apps;
  e.dbs = dbs;
  e.vms = vms;
  for (std::size_t i = 0; i < apps; ++i) {
    CiId a = app + static_cast<CiId>(i);
    link(pick(svc, services), a, "depends_on");
    const CiId db1 = pick(db, dbs);
    CiId db2 = pick(db, dbs);
    if (db2 == db1 && dbs > 1) db2 = db + static_cast<CiId>((db1 - db + 1) % dbs);  // unique
    link(a, db1, "depends_on");
    if (db2 != db1) link(a, db2, "depends_on");
    CiId other = pick(app, apps);
    if (other == a) other = app + static_cast<CiId>((i + 1) % apps);  // no self-relations
    if (other != a) link(a, other, "depends_on");
    link(a, pick(cl, clusters), "runs_on");
    link(a, hub + 1, "depends_on");  // DNS
  }
  for (std::size_t i = 0; i < dbs; ++i) link(db + static_cast<CiId>(i), pick(vm, vms), "runs_on");
  for (std::size_t i = 0; i < vms; ++i) {
    CiId v = vm + static_cast<CiId>(i);
    link(v, pick(hv, hvs), "hosted_on");
    link(v, pick(cl, clusters), "member_of");
    link(v, hub, "depends_on");      // storage
    link(v, hub + 1, "depends_on");  // DNS: name resolution
    link(v, hub + 2, "documents");
  }
  for (std::size_t i = 0; i < hvs; ++i) {
    CiId h = hv + static_cast<CiId>(i);
    CiId t = tor + static_cast<CiId>(i % tors);
    link(h, t, "depends_on");
    link(h, tor + static_cast<CiId>((i + 1) % tors), "depends_on");
    link(h, hub, "depends_on");
  }
  for (std::size_t i = 0; i < tors; ++i) {
    link(tor + static_cast<CiId>(i), core + static_cast<CiId>(i % cores), "depends_on");
  }
  for (std::size_t i = 0; i + 1 < cores; i += 2) {
    link(core + static_cast<CiId>(i), core + static_cast<CiId>(i + 1), "connected_to");
  }
  return e;
}

std::vector<cmdb::model::RelationType> EstateRelationTypes() {
  return {{"depends_on", "", cmdb::model::Propagation::kToFrom, true, {}},
          {"runs_on", "", cmdb::model::Propagation::kToFrom, true, {}},
          {"hosted_on", "", cmdb::model::Propagation::kToFrom, true, {}},
          {"member_of", "", cmdb::model::Propagation::kFromTo, true, {}},
          {"connected_to", "", cmdb::model::Propagation::kBoth, true, {}},
          {"documents", "", cmdb::model::Propagation::kNone, true, {}}};
}

namespace {

void CopyCis(cmdb::store::DbSession& sql, const Estate& e) {
  cmdb::store::pg::CopyBuffer cis;
  for (const auto& node : e.nodes) {
    cis.Int(node.id);
    cis.Field(node.type);
    cis.Field(node.name);
    if (node.min_healthy > 0) {
      cis.Int(node.min_healthy);
    } else {
      cis.Null();
    }
    cis.EndRow();
  }
  cmdb::store::pg::CopyIn(sql, "COPY configuration_items (id, type, name, min_healthy) FROM STDIN",
                          cis);
}

}  // namespace

void LoadEstate(cmdb::store::DbSession& sql, const Estate& e) {
  // Bulk-load the estate; foreign keys were checked by construction, so skip their triggers.
  cmdb::store::pg::ExecuteScript(sql, "SET session_replication_role = replica");
  CopyCis(sql, e);
  {
    cmdb::store::pg::CopyBuffer rels;
    for (const auto& edge : e.edges) {
      rels.Int(edge.id);
      rels.Field(edge.type);
      rels.Int(edge.from);
      rels.Int(edge.to);
      rels.EndRow();
    }
    cmdb::store::pg::CopyIn(sql, "COPY relations (id, type, from_ci, to_ci) FROM STDIN", rels);
  }
  cmdb::store::pg::ExecuteScript(
      sql,
      "SET session_replication_role = origin; SELECT setval(pg_get_serial_sequence("
      "'configuration_items', 'id'), (SELECT max(id) FROM configuration_items)); SELECT "
      "setval(pg_get_serial_sequence('relations', 'id'), (SELECT max(id) FROM relations)); "
      "ANALYZE configuration_items; ANALYZE relations");
}

void LoadCis(cmdb::store::DbSession& sql, const Estate& e) {
  cmdb::store::pg::ExecuteScript(sql, "SET session_replication_role = replica");
  CopyCis(sql, e);
  cmdb::store::pg::ExecuteScript(
      sql,
      "SET session_replication_role = origin; SELECT setval(pg_get_serial_sequence("
      "'configuration_items', 'id'), (SELECT max(id) FROM configuration_items)); ANALYZE "
      "configuration_items");
}

}  // namespace cmdb::bench
