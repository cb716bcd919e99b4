// Relation import at scale, over HTTP, into the synthetic estate's CIs (default 1M CIs): the
// estate's relations posted to POST /api/v1/import in chunks (default 50,000 per request), first
// with their ends as CI ids, then with their ends named by type and name, each figure beside
// the floor (COPY of the same rows into a table with the relations' indexes and nothing else)
// and the target. Beside the import by id, the schema's own ceiling: the same rows COPY'd
// straight into `relations`, with its check, from one connection and from two, without cmdb.
// Prints the server's phase timings summed over the chunks, and what the pass by id cost the
// machine's cores. Then with the ends that are VMs or servers named by identity (their
// hostnames, set for this): on an instance that keeps no identities, then on one whose first
// request reads them into what it keeps for the next ones. Then the CIs are synced once
// through the import (which leaves the instance keeping their identities, as a loader that
// imports its CIs before their relations does), and as many relations again by type and name
// are resolved against what it keeps.
// With --clients K the chunks are posted from K connections at once (a loader running several
// uploads side by side); the default is one. --by-id-only stops after the pass by id.
// Usage: import_bench [--cis N] [--relations N] [--by-name N] [--chunk N] [--clients K]
//                     [--by-id-only]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <unistd.h>

#include "bench/bench_access.hpp"
#include "bench/synthetic_estate.hpp"
#include "server/app.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/migrations.hpp"
#include "store/pg.hpp"
#include "tests/integration/http_client.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using cmdb::graph::GraphEdge;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Posted {
  double seconds = 0;
  std::int64_t created = 0;
  std::int64_t rejected = 0;
  std::map<std::string, double> phases;  // summed over the requests
  int failures = 0;
};

// Posts `edges` in chunks, each end written by `end`, from `clients` connections at once
// (chunk i from client i mod clients); `seconds` is the wall time of the whole.
template <typename End>
Posted PostRelations(std::uint16_t port, const std::vector<const GraphEdge*>& edges,
                     std::size_t chunk, int clients, End end) {
  Posted out;
  std::mutex mutex;
  auto post = [&](int client) {
    const std::size_t stride = chunk * static_cast<std::size_t>(clients);
    for (std::size_t start = chunk * static_cast<std::size_t>(client); start < edges.size();
         start += stride) {
      std::string body = R"({"relations":[)";
      for (std::size_t i = start; i < std::min(edges.size(), start + chunk); ++i) {
        const GraphEdge& e = *edges[i];
        if (i > start) body += ',';
        body +=
            R"({"type":")" + e.type + R"(","from":)" + end(e.from) + R"(,"to":)" + end(e.to) + "}";
      }
      body += "]}";
      cmdb::testing::HttpResult r =
          cmdb::testing::HttpRequest(port, "POST", "/api/v1/import", body);
      const std::lock_guard lock(mutex);
      if (r.status != 200) {
        std::printf("HTTP %d: %s\n", r.status, r.body.substr(0, 300).c_str());
        ++out.failures;
        continue;
      }
      const boost::json::object& result = r.json().as_object();
      out.created += result.at("relations").at("created").as_int64();
      out.rejected += result.at("relations").at("rejected").as_int64();
      for (const auto& [phase, seconds] : result.at("timings").as_object()) {
        out.phases[std::string(phase)] += seconds.template to_number<double>();
      }
    }
  };
  const auto t = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 1; c < clients; ++c) threads.emplace_back(post, c);
  post(0);
  for (std::thread& thread : threads) thread.join();
  out.seconds = Seconds(t);
  return out;
}

void Report(const char* what, std::size_t rows, const Posted& p, double floor_seconds) {
  const double rate = static_cast<double>(p.created) / p.seconds;
  const double floor_rate = static_cast<double>(rows) / floor_seconds;
  std::printf(
      "| %s | %zu | %.2f s = %.0f/s | %.0f/s | %.1fx the floor's time | >= 200000/s: %s |\n", what,
      rows, p.seconds, rate, floor_rate, p.seconds / floor_seconds,
      rate >= 200000 ? "met" : "missed");
  std::printf("  created %lld, rejected %lld; server phases (s):",
              static_cast<long long>(p.created), static_cast<long long>(p.rejected));
  for (const auto& [phase, seconds] : p.phases) std::printf(" %s %.2f", phase.c_str(), seconds);
  std::printf("\n");
}

// CPU time the whole machine spent busy so far (user, nice, system, interrupts), from
// /proc/stat: what a pass costs both cores, whoever spends it.
double MachineBusySeconds() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return 0;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  const int read = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system,
                               &idle, &iowait, &irq, &softirq);
  std::fclose(f);
  if (read != 7) return 0;
  return static_cast<double>(user + nice + system + irq + softirq) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  std::size_t by_id = 1000000;
  std::size_t by_name = 200000;
  std::size_t chunk = 50000;
  int clients = 1;
  bool by_id_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--by-id-only") by_id_only = true;
    if (i + 1 >= argc) break;
    if (flag == "--cis") total = std::stoul(argv[++i]);
    if (flag == "--relations") by_id = std::stoul(argv[++i]);
    if (flag == "--by-name") by_name = std::stoul(argv[++i]);
    if (flag == "--chunk") chunk = std::stoul(argv[++i]);
    if (flag == "--clients") clients = std::max(1, std::stoi(argv[++i]));
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  // By id: the first relations of the estate. By name: later ones whose ends have a unique
  // name within their type (the estate reuses names across kinds of network devices).
  std::vector<const GraphEdge*> id_edges;
  std::vector<const GraphEdge*> name_edges;
  std::vector<const GraphEdge*> plain_identity_edges;  // VMs and servers by hostname, no cache
  std::vector<const GraphEdge*> identity_edges;        // the same, on the instance keeping
  std::vector<const GraphEdge*> kept_edges;            // by name, once the CIs were synced
  for (const GraphEdge& edge : e.edges) {
    if (id_edges.size() < by_id) {
      id_edges.push_back(&edge);
      continue;
    }
    if (e.nodes[static_cast<std::size_t>(edge.from - 1)].type == "network_device" ||
        e.nodes[static_cast<std::size_t>(edge.to - 1)].type == "network_device") {
      continue;
    }
    for (auto* list : {&name_edges, &plain_identity_edges, &identity_edges, &kept_edges}) {
      if (list->size() < by_name) {
        list->push_back(&edge);
        break;
      }
    }
  }
  std::string dir = "/tmp/cmdbimport-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  int failures = 0;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/true, ""});
    cluster.Start();
    const std::string dsn = cluster.ConnectionString("cmdb");
    std::optional<cmdb::store::DbSession> db = cmdb::store::DbSession::Connect(dsn);
    cmdb::store::ApplyMigrations(*db);
    auto t = Clock::now();
    cmdb::bench::LoadCis(*db, e);
    std::printf(
        "estate: %zu CIs loaded in %.1f s; importing %zu relations by id, %zu by name, "
        "%zu per request, %d client(s) at once\n",
        e.nodes.size(), Seconds(t), id_edges.size(), name_edges.size(), chunk, clients);

    // The floor: the same rows by COPY into a table with the relations' indexes, no triggers,
    // no foreign keys, no history.
    cmdb::store::pg::ExecuteScript(
        *db, "CREATE TABLE relations_floor (LIKE relations INCLUDING DEFAULTS INCLUDING INDEXES)");
    cmdb::store::pg::CopyBuffer rows;
    for (const GraphEdge* edge : id_edges) {
      rows.Int(edge->id);
      rows.Field(edge->type);
      rows.Int(edge->from);
      rows.Int(edge->to);
      rows.EndRow();
    }
    t = Clock::now();
    cmdb::store::pg::CopyIn(*db, "COPY relations_floor (id, type, from_ci, to_ci) FROM STDIN",
                            rows);
    const double floor_seconds = Seconds(t);
    cmdb::store::pg::ExecuteScript(*db, "DROP TABLE relations_floor; CHECKPOINT");

    // The VMs' and servers' hostnames, which identify them (their names are the same).
    t = Clock::now();
    cmdb::store::pg::ExecuteScript(
        *db,
        "SET session_replication_role = replica; UPDATE configuration_items SET attributes = "
        "jsonb_build_object('hostname', name) WHERE type IN ('vm', 'server'); SET "
        "session_replication_role = origin");
    cmdb::store::pg::ExecuteScript(*db, "VACUUM ANALYZE configuration_items");
    cmdb::store::pg::ExecuteScript(*db, "CHECKPOINT");
    std::printf("(hostnames of the VMs and servers set in %.1f s)\n", Seconds(t));

    // The schema's own ceiling: the same rows as by id COPY'd straight into `relations`, with
    // its statement check and change log, a chunk per transaction, without cmdb or HTTP: from
    // one connection, then from two at once (both cores). No server, whatever its design,
    // writes them faster with the same guarantees. The table is emptied after each, so that
    // the import by id starts on the same table.
    const std::vector<const GraphEdge*>& ceiling_edges = id_edges;
    auto ceiling = [&](int connections) {
      std::vector<cmdb::store::DbSession> sessions;
      std::vector<std::vector<cmdb::store::pg::CopyBuffer>> chunks(
          static_cast<std::size_t>(connections));
      for (int c = 0; c < connections; ++c)
        sessions.push_back(cmdb::store::DbSession::Connect(dsn));
      for (std::size_t start = 0, n = 0; start < ceiling_edges.size(); start += chunk, ++n) {
        cmdb::store::pg::CopyBuffer buffer;
        for (std::size_t i = start; i < std::min(ceiling_edges.size(), start + chunk); ++i) {
          buffer.Field(ceiling_edges[i]->type);
          buffer.Int(ceiling_edges[i]->from);
          buffer.Int(ceiling_edges[i]->to);
          buffer.EndRow();
        }
        chunks[n % static_cast<std::size_t>(connections)].push_back(std::move(buffer));
      }
      const auto started = Clock::now();
      std::vector<std::thread> threads;
      for (int c = 0; c < connections; ++c) {
        threads.emplace_back([&, c] {
          for (const cmdb::store::pg::CopyBuffer& buffer : chunks[static_cast<std::size_t>(c)]) {
            cmdb::store::DbSession& session = sessions[static_cast<std::size_t>(c)];
            cmdb::store::pg::ExecuteScript(session, "BEGIN");
            cmdb::store::pg::CopyIn(session, "COPY relations (type, from_ci, to_ci) FROM STDIN",
                                    buffer);
            cmdb::store::pg::ExecuteScript(session, "COMMIT");
          }
        });
      }
      for (std::thread& thread : threads) thread.join();
      const double seconds = Seconds(started);
      cmdb::store::pg::ExecuteScript(
          *db, "TRUNCATE relations, relation_versions; DELETE FROM graph_changes; CHECKPOINT");
      return seconds;
    };
    const double ceiling_one = ceiling(1);
    const double ceiling_two = ceiling(2);

    cmdb::server::ServeConfig config;

    cmdb::bench::WithBenchAccess(config);
    config.database = dsn;
    config.listen = "127.0.0.1:0";
    config.log_requests = false;
    config.discovery_worker = false;
    config.import_worker = false;
    config.audit_worker = false;  // the audit the imports ask for would run beside the last ones
    config.body_limit = std::size_t{512} * 1024 * 1024;
    config.read_timeout = std::chrono::seconds(600);
    cmdb::testing::SetAnswerTimeout(600);
    cmdb::server::App app(config);
    app.Start();
    std::printf(
        "\n| import | relations | end to end | floor (indexed COPY) | ratio | target |\n"
        "|---|---|---|---|---|---|\n");
    const double busy_before = MachineBusySeconds();
    const Posted ids = PostRelations(app.port(), id_edges, chunk, clients,
                                     [](cmdb::model::CiId id) { return std::to_string(id); });
    Report("by id", id_edges.size(), ids, floor_seconds);
    std::printf("  the machine's cores were busy %.1f s of it (server, PostgreSQL, client)\n",
                MachineBusySeconds() - busy_before);
    auto ceiling_row = [&](const char* what, double seconds) {
      const double rate = static_cast<double>(ceiling_edges.size()) / seconds;
      std::printf("| %s | %zu | %.2f s = %.0f/s | | %.1fx the floor's time | >= 200000/s: %s |\n",
                  what, ceiling_edges.size(), seconds, rate,
                  seconds * static_cast<double>(id_edges.size()) /
                      static_cast<double>(ceiling_edges.size()) / floor_seconds,
                  rate >= 200000 ? "met" : "missed");
    };
    ceiling_row("(no cmdb) COPY into relations with its check, 1 connection", ceiling_one);
    ceiling_row("(no cmdb) COPY into relations with its check, 2 connections", ceiling_two);
    if (by_id_only) {
      failures = ids.failures;
      app.Stop();
      db.reset();
      cluster.Stop();
      std::filesystem::remove_all(dir);
      return failures == 0 ? 0 : 1;
    }
    auto named = [&e](cmdb::model::CiId id) {
      const cmdb::graph::GraphNode& n = e.nodes[static_cast<std::size_t>(id - 1)];
      return R"({"type":")" + n.type + R"(","name":")" + n.name + R"("})";
    };
    const double name_floor = floor_seconds * static_cast<double>(name_edges.size()) /
                              static_cast<double>(id_edges.size());
    const Posted names = PostRelations(app.port(), name_edges, chunk, clients, named);
    Report("by type and name", name_edges.size(), names, name_floor);

    // VMs and servers named by identity (their hostname), the other ends by name. First on
    // an instance that keeps nothing (--no-import-cache; as before this kept identities for
    // relation ends): each request reads the identities of every VM and server. Then on the
    // instance that keeps, where they are not kept yet: its first request reads them into
    // what it keeps, and the next ones match against that.
    auto by_identity = [&e](cmdb::model::CiId id) {
      const cmdb::graph::GraphNode& n = e.nodes[static_cast<std::size_t>(id - 1)];
      if (n.type != "vm" && n.type != "server") {
        return R"({"type":")" + n.type + R"(","name":")" + n.name + R"("})";
      }
      return R"({"type":")" + n.type + R"(","identity":{"hostname":")" + n.name + R"("}})";
    };
    Posted plain_identities;
    {
      cmdb::server::ServeConfig plain_config = config;
      plain_config.import_cache = false;
      plain_config.import_warmup = false;
      cmdb::server::App plain(plain_config);
      plain.Start();
      plain_identities =
          PostRelations(plain.port(), plain_identity_edges, chunk, clients, by_identity);
      plain.Stop();
    }
    Report("by type and identity (VMs, servers) or name, nothing kept", plain_identity_edges.size(),
           plain_identities, name_floor);
    const Posted identities =
        PostRelations(app.port(), identity_edges, chunk, clients, by_identity);
    Report("by type and identity (VMs, servers) or name, kept from the first request",
           identity_edges.size(), identities, name_floor);

    // The CIs of the types the names reach, synced (unchanged) through the import, which
    // keeps their identities for the imports after it.
    std::string sync = R"({"cis":[)";
    for (const cmdb::graph::GraphNode& n : e.nodes) {
      if (n.type == "network_device") continue;
      if (sync.back() != '[') sync += ',';
      sync += R"({"type":")" + n.type + R"(","name":")" + n.name + R"("})";
    }
    sync += "]}";
    t = Clock::now();
    const cmdb::testing::HttpResult synced =
        cmdb::testing::HttpRequest(app.port(), "POST", "/api/v1/import", sync);
    std::printf("| (the CIs synced through the import: HTTP %d in %.1f s) | | | | | |\n",
                synced.status, Seconds(t));
    const Posted kept = PostRelations(app.port(), kept_edges, chunk, clients, named);
    Report("by type and name, the CIs kept", kept_edges.size(), kept, name_floor);
    failures = ids.failures + names.failures + plain_identities.failures + identities.failures +
               kept.failures + (synced.status == 200 ? 0 : 1);
    app.Stop();
    db.reset();
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}
