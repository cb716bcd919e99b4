// The graph following writes, over HTTP, on the synthetic estate (default 1M CIs, 4.1M
// relations) held by two instances on one database, once their start-up is done (the graph
// read and stored for the next instance): 100 relations written on instance A one at a time,
// each followed by (1) A's next impact request and (2) the time until instance B's impact
// shows it; then (3) a sustained stream of relation writes on A (eight writer threads, or
// --writers) while impact requests of ~1,000 CIs run on A.
// Each first with the graph updated beside its arrays (incremental), then with every update
// rebuilding the arrays (what cmdb did before; the baseline), in the same run.
//
// Usage: graph_write_bench [--cis N] [--seconds S] [--rate W] [--writers K] [--only-incremental]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

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
using cmdb::model::CiId;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// Distinct new relations: application i depends on database j (failure of the database reaches
// the application, one way, as most relations do), pairs the estate mostly lacks.
struct NewRelations {
  const cmdb::bench::Estate& e;
  std::atomic<std::size_t> next{0};
  std::string Next() {
    const std::size_t k = next.fetch_add(1);
    const CiId app = e.first_app + static_cast<CiId>(k % e.apps);
    const CiId db = e.first_db + static_cast<CiId>((k / e.apps + 7 * k + 13) % e.dbs);
    return R"({"type": "depends_on", "from": )" + std::to_string(app) + R"(, "to": )" +
           std::to_string(db) + "}";
  }
};

struct Figures {
  std::vector<double> own_read_ms;    // A's impact right after A's write
  std::vector<double> other_sees_ms;  // until B's impact shows A's write
  std::vector<double> impact_ms;      // impacts during the sustained writes
  std::vector<double> server_ms;      // the same, as the server timed them
  std::vector<double> write_ms;       // each sustained write, request to answer
  double writes_per_second = 0;
  std::size_t closure_after = 0;  // CIs in the impact once the writes are done
  int write_failures = 0;
};

// Single writes, each followed by the writer's impact and the wait for the other instance.
constexpr int kSingleWrites = 100;

Figures Run(const std::string& dsn, const cmdb::bench::Estate& e, bool incremental, CiId root,
            const std::string& direction, double seconds, int rate, int writer_count) {
  Figures f;
  cmdb::server::ServeConfig config;
  cmdb::bench::WithBenchAccess(config);
  config.database = dsn;
  config.listen = "127.0.0.1:0";
  config.log_requests = false;
  config.discovery_worker = false;
  config.import_worker = false;
  config.graph_incremental = incremental;
  cmdb::server::App a(config);
  a.Start();
  cmdb::server::App b(config);
  b.Start();
  const std::string impact =
      "/api/v1/cis/" + std::to_string(root) + "/impact?direction=" + direction;
  // Both graphs loaded before measuring, and the start-up's one-time work done: a graph read
  // from the tables is stored for the next instance (~150 MB written by PostgreSQL), which
  // the first version of this benchmark measured the single writes against.
  cmdb::testing::HttpRequest(a.port(), "GET", impact);
  cmdb::testing::HttpRequest(b.port(), "GET", impact);
  {
    cmdb::store::DbSession db = cmdb::store::DbSession::Connect(dsn);
    bool stored = false;
    for (int i = 0; i < 600 && !stored; ++i) {
      cmdb::store::pg::CopyOut(db, "SELECT count(*) FROM graph_snapshots",
                               [&](const cmdb::store::pg::Fields& f) { stored = *f[0] != "0"; });
      if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  static NewRelations relations{e};
  relations.next += 1000003;  // each run writes relations of its own
  // (1) and (2): one write at a time.
  auto shows = [](std::uint16_t port, std::int64_t from, std::int64_t to) {
    const auto seen = cmdb::testing::HttpRequest(
        port, "GET", "/api/v1/cis/" + std::to_string(from) + "/impact?direction=up&depth=1");
    for (const auto& n : seen.json().at("nodes").as_array()) {
      if (n.at("id").as_int64() == to) return true;
    }
    return false;
  };
  for (int i = 0; i < kSingleWrites; ++i) {
    const std::string body = relations.Next();
    const auto pair = boost::json::parse(body);
    if (shows(b.port(), pair.at("from").as_int64(), pair.at("to").as_int64())) {
      continue;  // already related some other way: nothing to see
    }
    const auto r = cmdb::testing::HttpRequest(a.port(), "POST", "/api/v1/relations", body);
    if (r.status != 201) {
      if (f.write_failures++ == 0) std::printf("write: %d %s\n", r.status, r.body.c_str());
      continue;
    }
    const auto written_at = Clock::now();
    const auto written = r.json();
    cmdb::testing::HttpRequest(a.port(), "GET", impact);
    f.own_read_ms.push_back(Ms(written_at));
    // B shows the relation in the impact of its `from` upwards (what it needs), counted from
    // the write's answer.
    while (!shows(b.port(), written.at("from").as_int64(), written.at("to").as_int64()) &&
           Ms(written_at) < 30000) {
    }
    f.other_sees_ms.push_back(Ms(written_at));
  }
  // (3): `rate` writes per second on A for `seconds`, impacts on A meanwhile.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  // `writer_count` writers (default eight), each its share of the rate, one request at a time.
  const int kWriters = writer_count;
  std::vector<std::thread> writers;
  std::vector<std::vector<double>> write_ms(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const auto start = Clock::now();
      const double interval_us = 1e6 * kWriters / rate;
      int n = 0;
      while (!stop) {
        std::this_thread::sleep_until(
            start + std::chrono::microseconds(static_cast<long>(interval_us * n)));
        const auto t = Clock::now();
        const auto r =
            cmdb::testing::HttpRequest(a.port(), "POST", "/api/v1/relations", relations.Next());
        write_ms[w].push_back(Ms(t));
        if (r.status == 201) ++written;
        ++n;
      }
    });
  }
  const auto started = Clock::now();
  while (Ms(started) < seconds * 1000) {
    const auto t = Clock::now();
    const auto r = cmdb::testing::HttpRequest(a.port(), "GET", impact);
    f.impact_ms.push_back(Ms(t));
    // The server's own time (Server-Timing: app;dur=…), request read to response ready.
    const std::string timing = r.header("server-timing");
    const auto at = timing.find("dur=");
    if (at != std::string::npos) f.server_ms.push_back(std::stod(timing.substr(at + 4)));
  }
  stop = true;
  for (std::thread& w : writers) w.join();
  for (const auto& each : write_ms) f.write_ms.insert(f.write_ms.end(), each.begin(), each.end());
  f.writes_per_second = written.load() / (Ms(started) / 1000);
  f.closure_after =
      cmdb::testing::HttpRequest(a.port(), "GET", impact).json().at("nodes").as_array().size();
  b.Stop();
  a.Stop();
  return f;
}

void Print(const char* name, const Figures& f) {
  std::printf(
      "| %s | %.1f ms / %.1f ms | %.1f ms / %.1f ms | %.0f writes/s (each p50 %.1f ms, p99 %.1f "
      "ms, max %.0f ms); impact p50 %.1f ms, p99 %.1f ms (%zu requests; in the server p50 %.1f "
      "ms, p99 %.1f ms; %zu CIs at the end) |\n",
      name, Percentile(f.own_read_ms, 0.5), Percentile(f.own_read_ms, 0.95),
      Percentile(f.other_sees_ms, 0.5), Percentile(f.other_sees_ms, 0.95), f.writes_per_second,
      Percentile(f.write_ms, 0.5), Percentile(f.write_ms, 0.99), Percentile(f.write_ms, 1.0),
      Percentile(f.impact_ms, 0.5), Percentile(f.impact_ms, 0.99), f.impact_ms.size(),
      Percentile(f.server_ms, 0.5), Percentile(f.server_ms, 0.99), f.closure_after);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = 1000000;
  double seconds = 60;
  int rate = 1000;
  // Eight connections each writing one request at a time: with four, each had to average 4 ms
  // a write (request, commit and answer), so the client's latency, not the server, set the
  // rate on a busy 2-core machine (docs/benchmarks.md).
  int writers = 8;
  bool only_incremental = false;  // skip the baseline (rebuild per update), e.g. for a profile
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--only-incremental") only_incremental = true;
    if (i + 1 >= argc) break;
    if (flag == "--cis") total = std::stoul(argv[++i]);
    if (flag == "--seconds") seconds = std::stod(argv[++i]);
    if (flag == "--rate") rate = std::stoi(argv[++i]);
    if (flag == "--writers") writers = std::max(1, std::stoi(argv[++i]));
  }
  const cmdb::bench::Estate e = cmdb::bench::Generate(total);
  // The root: a CI whose closure is about 1,000 CIs, found on the graph in memory.
  const auto g =
      cmdb::graph::DependencyGraph::Build(e.nodes, e.edges, cmdb::bench::EstateRelationTypes());
  CiId root = 0;
  std::string direction;
  std::size_t best = 0;
  for (CiId id = 1; id <= static_cast<CiId>(e.nodes.size()); id += 97) {
    for (auto dir : {cmdb::graph::ImpactDirection::kDown, cmdb::graph::ImpactDirection::kUp}) {
      cmdb::graph::ImpactQuery q;
      q.root = id;
      q.direction = dir;
      const std::size_t size = g.Impact(q).nodes.size();
      const auto distance = [](std::size_t s) { return s > 1000 ? s - 1000 : 1000 - s; };
      if (root == 0 || distance(size) < distance(best)) {
        root = id;
        best = size;
        direction = dir == cmdb::graph::ImpactDirection::kDown ? "down" : "up";
      }
    }
  }
  std::string dir = "/tmp/cmdbgraphwrite-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  {
    cmdb::store::EmbeddedPostgres cluster({dir, /*durable=*/false, ""});
    cluster.Start();
    const std::string dsn = cluster.ConnectionString("cmdb");
    {
      std::optional<cmdb::store::DbSession> db = cmdb::store::DbSession::Connect(dsn);
      cmdb::store::ApplyMigrations(*db);
      cmdb::bench::LoadEstate(*db, e);
      // The estate's rows came with their ids: new relations continue after them.
      cmdb::store::pg::ExecuteScript(*db,
                                     "SELECT setval(pg_get_serial_sequence('relations', 'id'), "
                                     "(SELECT max(id) FROM relations))");
    }
    std::printf(
        "%zu CIs, %zu relations; impact of CI %lld %s: %zu CIs; %d relation writes/s (%d writers) "
        "for %.0f s\n\n"
        "| graph update | writer's next impact (p50 / p95) | other instance sees it (p50 / p95) "
        "| sustained writes on A with impacts on A |\n|---|---|---|---|\n",
        e.nodes.size(), e.edges.size(), static_cast<long long>(root), direction.c_str(), best, rate,
        writers, seconds);
    Print("beside the arrays (incremental)",
          Run(dsn, e, true, root, direction, seconds, rate, writers));
    if (!only_incremental) {
      Print("rebuilt per update (before)",
            Run(dsn, e, false, root, direction, seconds, rate, writers));
    }
    cluster.Stop();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
