#include "server/app.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <unistd.h>

#include "auth/accounts.hpp"
#include "auth/authenticator.hpp"
#include "auth/token.hpp"
#include "import/demo_estate.hpp"
#include "import/import_cache.hpp"
#include "import/kept_warmup.hpp"
#include "jobs/audit_executor.hpp"
#include "jobs/discovery_executor.hpp"
#include "jobs/import_executor.hpp"
#include "model/error.hpp"
#include "model/log.hpp"
#include "reports/graphviz_renderer.hpp"
#include "server/handlers/handlers.hpp"
#include "server/http_server.hpp"
#include "server/metrics.hpp"
#include "server/router.hpp"
#include "store/audit_log_repository.hpp"
#include "store/audit_log_writer.hpp"
#include "store/audit_repository.hpp"
#include "store/ci_reader.hpp"
#include "store/database_supervisor.hpp"
#include "store/db_pool.hpp"
#include "store/embedded_postgres.hpp"
#include "store/graph_cache.hpp"
#include "store/historical_graphs.hpp"
#include "store/import_job_repository.hpp"
#include "store/migrations.hpp"

namespace cmdb::docs {
std::vector<std::pair<std::string_view, std::string_view>> DocFiles();
}

namespace cmdb::server {

void ParseListen(const std::string& listen, std::string& host, std::uint16_t& port) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) {
    throw model::Error(model::ErrorCode::kInvalidArgument,
                       "--listen must be host:port, such as 127.0.0.1:8080");
  }
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  unsigned long value = 0;
  try {
    std::size_t used = 0;
    value = std::stoul(port_text, &used);
    if (used != port_text.size()) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    value = 70000;
  }
  if (value > 65535) {
    throw model::Error(model::ErrorCode::kInvalidArgument,
                       "--listen has an invalid port '" + port_text + "'");
  }
  port = static_cast<std::uint16_t>(value);
}

struct App::Impl {
  ServeConfig config;
  std::unique_ptr<store::EmbeddedPostgres> postgres;
  std::unique_ptr<store::DbPool> pool;
  std::unique_ptr<store::DatabaseSupervisor> supervisor;
  std::unique_ptr<store::BatchedCiReader> ci_reader;
  std::unique_ptr<store::GraphCache> graph;
  std::unique_ptr<store::HistoricalGraphs> history;
  std::unique_ptr<import::ImportCache> import_cache;  // before the import worker that uses it
  std::unique_ptr<auth::Authenticator> auth;
  std::unique_ptr<store::AuditLogWriter> audit_log;
  std::unique_ptr<jobs::DiscoveryWorker> discovery;
  std::unique_ptr<jobs::JobWorker> imports;
  std::unique_ptr<jobs::JobWorker> audits;
  reports::GraphvizRenderer renderer;
  Metrics metrics;
  std::unique_ptr<Router> router;
  AppContext context;
  std::unique_ptr<HttpServer> http;
  std::string openapi;
  int demo_loaded = 0;
  // The audit log's retention: prunes at start and then hourly until stopped.
  std::thread pruner;
  std::mutex pruner_mutex;
  std::condition_variable pruner_wake;
  bool pruner_stop = false;
  // Builds the import cache's entries of the types imports kept lately, once, after the start
  // (import/kept_warmup.hpp).
  std::thread warmer;
  std::atomic<bool> warmer_stop{false};
  std::atomic<bool> warming{false};
  std::string admin_token_file;
  std::string demo_tokens_file;
};

namespace {

// The tokens an earlier --demo start wrote (role -> token); empty when unreadable.
std::map<std::string, std::string> ReadDemoTokens(const std::string& path) {
  std::map<std::string, std::string> tokens;
  std::ifstream in(path);
  if (!in) return tokens;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(text.str(), ec);
  if (ec || !json.is_object()) return tokens;
  for (const auto& [key, value] : json.as_object()) {
    if (value.is_string()) tokens[std::string(key)] = std::string(value.get_string());
  }
  return tokens;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// One pass of the retention pruner: audit log lines older than `audit_days`, import jobs
// finished more than `job_days` ago (0: that one is kept forever). Failures are logged; the
// next pass, an hour later, tries again.
// Identities kept for imports of a type are dropped after two days without one (a nightly sync
// keeps them; a type imported once does not hold them for good).
constexpr auto kImportCacheIdle = std::chrono::hours(48);

// The warm-up after a start: builds the entries of the types imports kept lately, on a
// connection of its own, and logs what it built. A failure is logged: the first import of a
// type left unbuilt reads it whole, as without the warm-up.
void WarmImportCache(const std::string& dsn, import::ImportCache& cache,
                     const std::atomic<bool>& stop) {
  try {
    store::DbSession session = store::DbSession::Connect(dsn);
    import::WarmupOptions options;
    options.recent = kImportCacheIdle;
    options.stop = [&stop] { return stop.load(); };
    for (const import::WarmedType& warmed : import::WarmKeptTypes(session, cache, options)) {
      model::Log(model::LogLevel::kInfo, "built the identities kept for imports",
                 {{"type", warmed.type},
                  {"cis", static_cast<std::int64_t>(warmed.cis)},
                  {"seconds", warmed.seconds}});
    }
  } catch (const std::exception& e) {
    model::Log(model::LogLevel::kWarn, "could not build the identities kept for imports",
               {{"error", e.what()}});
  }
}

void PruneOnce(store::DbPool& pool, int audit_days, int job_days, import::ImportCache* cache) {
  if (cache != nullptr) {
    const std::size_t dropped = cache->DropIdle(std::chrono::steady_clock::now(), kImportCacheIdle);
    if (dropped > 0) {
      model::Log(model::LogLevel::kInfo, "dropped identities kept for imports",
                 {{"cis", static_cast<std::int64_t>(dropped)}});
    }
  }
  auto prune = [&pool](const char* what, int days, auto remove) {
    if (days <= 0) return;
    try {
      store::DbSession session = pool.Lease();
      const std::int64_t removed = remove(session, days);
      if (removed > 0) {
        model::Log(model::LogLevel::kInfo, std::string("pruned ") + what,
                   {{"removed", removed}, {"retention_days", days}});
      }
    } catch (const std::exception& e) {
      model::Log(model::LogLevel::kWarn, std::string("could not prune ") + what,
                 {{"error", e.what()}});
    }
  };
  prune("the audit log", audit_days, [](store::DbSession& session, int days) {
    return store::AuditLogRepository(session).Prune(days);
  });
  prune("finished import jobs", job_days, [](store::DbSession& session, int days) {
    return store::ImportJobRepository(session).PruneFinished(days);
  });
}

}  // namespace

App::App(ServeConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  if (impl_->config.pool_size == 0) {
    // Workers block on PostgreSQL, which shares the machine's cores: about two sessions per
    // core keep both busy without drowning the scheduler in wake-ups (bench/foundation_bench).
    impl_->config.pool_size =
        std::clamp<std::size_t>(2UL * std::max(1U, std::thread::hardware_concurrency()), 4, 32);
  }
}

App::~App() {
  try {
    Stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

void App::Start() {
  Impl& s = *impl_;
  std::string host;
  std::uint16_t port = 0;
  ParseListen(s.config.listen, host, port);
  try {
    std::string dsn = s.config.database;
    std::string pepper;
    if (dsn.empty()) {
      s.postgres = std::make_unique<store::EmbeddedPostgres>(
          store::EmbeddedPostgresOptions{s.config.data_dir, s.config.durable, ""});
      model::Log(model::LogLevel::kInfo, "starting embedded PostgreSQL",
                 {{"data_dir", s.config.data_dir}});
      s.postgres->Start();
      dsn = s.postgres->ConnectionString();
    }
    s.pool = std::make_unique<store::DbPool>(dsn, s.config.pool_size);
    {
      store::DbSession session = s.pool->Lease();
      for (const std::string& name : store::ApplyMigrations(session)) {
        model::Log(model::LogLevel::kInfo, "applied migration", {{"migration", name}});
      }
      if (s.config.demo) {
        s.demo_loaded = import::LoadDemoEstate(session);
        if (s.demo_loaded > 0) {
          // The baseline audit of the demo estate, so that its findings and scores are there
          // to look at (the audit worker takes it once the server runs).
          store::AuditRepository(session).QueueRun("baseline", std::nullopt,
                                                   model::AuditTrigger::kImport, "demo");
        }
        model::Log(model::LogLevel::kInfo,
                   s.demo_loaded > 0 ? "loaded the demo estate"
                                     : "demo estate skipped: the database already holds CIs",
                   {{"cis", s.demo_loaded}});
      }
      pepper = auth::LoadPepper(s.config.token_pepper, s.config.data_dir);
      auth::CheckPepper(session, pepper);
      const auth::BootstrapOutcome boot =
          auth::Bootstrap(session, pepper, s.config.bootstrap_token);
      if (boot.bootstrap_ignored) {
        model::Log(model::LogLevel::kWarn,
                   "CMDB_BOOTSTRAP_TOKEN ignored: the database has an active admin already");
      } else if (boot.created && s.config.bootstrap_token.empty()) {
        if (s.config.database.empty()) {
          s.admin_token_file = (std::filesystem::path(s.config.data_dir) / "admin-token").string();
          auth::WriteSecretFile(s.admin_token_file, boot.token + "\n");
          model::Log(model::LogLevel::kInfo, "created user admin; its token is in the data folder",
                     {{"file", s.admin_token_file}});
        } else {
          // No data folder of ours to keep it in: shown this once.
          std::cout << "cmdb: created user admin with the token " << boot.token
                    << "\n      (shown once; `cmdb token create --user admin` makes another)\n"
                    << std::flush;
        }
      } else if (boot.created) {
        model::Log(model::LogLevel::kInfo, "created user admin with CMDB_BOOTSTRAP_TOKEN");
      }
      if (s.config.demo) {
        std::error_code ignored;
        std::filesystem::create_directories(s.config.data_dir, ignored);
        s.demo_tokens_file =
            (std::filesystem::path(s.config.data_dir) / "demo-tokens.json").string();
        const std::map<std::string, std::string> tokens =
            auth::DemoAccounts(session, pepper, ReadDemoTokens(s.demo_tokens_file));
        boost::json::object out;
        for (const auto& [role, token] : tokens) out[role] = token;
        auth::WriteSecretFile(s.demo_tokens_file, boost::json::serialize(out) + "\n");
        model::Log(model::LogLevel::kInfo, "demo users have tokens in the data folder",
                   {{"file", s.demo_tokens_file}});
      }
    }
    for (const auto& [name, text] : cmdb::docs::DocFiles()) {
      if (name == "openapi.json") s.openapi = std::string(text);
    }
    // Two reader threads: one batch is built and answered while the next is at PostgreSQL.
    s.ci_reader = std::make_unique<store::BatchedCiReader>(dsn, 2);
    store::GraphCacheOptions graph_options;
    graph_options.incremental = s.config.graph_incremental;
    s.graph = std::make_unique<store::GraphCache>(*s.pool, dsn, graph_options);
    store::HistoricalGraphs::Options history;
    history.capacity = s.config.history_graphs;
    history.max_builds = s.config.history_builds;
    s.history = std::make_unique<store::HistoricalGraphs>(history);
    if (s.config.import_cache) s.import_cache = std::make_unique<import::ImportCache>();
    std::array<char, 256> machine{};
    gethostname(machine.data(), machine.size() - 1);
    const std::string instance = std::string(machine.data()) + ":" + std::to_string(getpid());
    store::GraphCache* graph_cache = s.graph.get();
    if (s.config.discovery_worker) {
      jobs::DiscoveryWorkerOptions worker;
      worker.instance = instance;
      worker.graph_changed = [graph_cache] { graph_cache->Invalidate(); };
      s.discovery = std::make_unique<jobs::DiscoveryWorker>(dsn, worker);
      s.discovery->Start();
      s.context.discovery = s.discovery.get();
    }
    if (s.config.import_worker) {
      jobs::ImportWorkerOptions worker;
      worker.worker.instance = instance;
      worker.graph_changed = [graph_cache] { graph_cache->Invalidate(); };
      worker.limits = s.config.import_limits;
      worker.cache = s.import_cache.get();
      s.imports = jobs::MakeImportWorker(dsn, worker);
      s.imports->Start();
      s.context.imports = s.imports.get();
    }
    if (s.config.audit_worker) {
      jobs::AuditWorkerOptions worker;
      worker.worker.instance = instance;
      worker.debounce = s.config.audit_debounce;
      worker.keep_estate = s.config.audit_cache;
      s.audits = jobs::MakeAuditWorker(dsn, worker);
      s.audits->Start();
      s.context.audits = s.audits.get();
    }
    {
      // Watches the database from here on, for every pool of the instance; restarts the
      // embedded one when it dies.
      std::vector<store::DbPool*> pools = {s.pool.get(), &s.ci_reader->pool()};
      if (s.discovery) pools.push_back(&s.discovery->pool());
      if (s.imports) pools.push_back(&s.imports->pool());
      if (s.audits) pools.push_back(&s.audits->pool());
      s.supervisor = std::make_unique<store::DatabaseSupervisor>(
          dsn, s.postgres.get(), std::move(pools), s.config.supervisor);
      s.supervisor->Start();
    }
    auth::AuthenticatorOptions auth_options;
    auth_options.cache_ttl = s.config.token_cache;
    s.auth = std::make_unique<auth::Authenticator>(*s.pool, pepper, auth_options);
    s.context.auth = s.auth.get();
    s.context.pepper = pepper;
    s.context.tls = !s.config.tls_cert.empty() && !s.config.tls_key.empty();
    {
      s.audit_log = std::make_unique<store::AuditLogWriter>(*s.pool);
      store::AuditLogWriter* writer = s.audit_log.get();
      s.context.audit = [writer](model::AuditEntry entry) { writer->Append(std::move(entry)); };
      s.context.audit_flush = [writer] { writer->Flush(); };
      s.metrics.AddGauge("cmdb_audit_log_lines_dropped",
                         "Audit log lines dropped after PostgreSQL refused them for seconds.",
                         [writer] { return static_cast<double>(writer->dropped()); });
    }
    if (!IsLoopback(host) && s.config.tls_cert.empty()) {
      model::Log(model::LogLevel::kWarn,
                 "serving plain HTTP on a non-loopback address: tokens cross the network in the "
                 "clear; give --tls-cert and --tls-key, or put a TLS proxy in front",
                 {{"listen", s.config.listen}});
    }
    std::vector<Route> routes = ApiRoutes();
    for (Route& route : handlers::UiRoutes()) routes.push_back(std::move(route));
    s.router = std::make_unique<Router>(std::move(routes));
    s.context.router = s.router.get();
    s.context.db = s.pool.get();
    s.context.ci_reader = s.ci_reader.get();
    s.context.graph = s.graph.get();
    s.context.history = s.history.get();
    s.context.import_cache = s.import_cache.get();
    s.context.import_batches = s.config.import_limits.batches;
    s.context.renderer = &s.renderer;
    s.context.metrics = &s.metrics;
    s.context.openapi_json = s.openapi;
    s.context.log_requests = s.config.log_requests;
    store::DbPool* pool = s.pool.get();
    s.metrics.AddGauge("cmdb_db_pool_in_use", "Database sessions leased right now.",
                       [pool] { return static_cast<double>(pool->in_use()); });
    s.metrics.AddGauge("cmdb_db_pool_size", "Database sessions in the pool.",
                       [pool] { return static_cast<double>(pool->size()); });
    store::DatabaseSupervisor* supervisor = s.supervisor.get();
    s.context.database = supervisor;
    s.metrics.AddGauge(
        "cmdb_database_up", "1 while the database answers, 0 while it is down.", [supervisor] {
          return supervisor->Status().health == store::DatabaseHealth::kUp ? 1.0 : 0.0;
        });
    s.metrics.AddCounter(
        "cmdb_database_outages_total", "Times the database stopped answering since the start.",
        [supervisor] { return static_cast<double>(supervisor->Status().outages); });
    s.metrics.AddCounter(
        "cmdb_database_restarts_total",
        "Restarts of the embedded PostgreSQL after it died or hung.",
        [supervisor] { return static_cast<double>(supervisor->Status().restarts); });
    s.metrics.AddCounter("cmdb_database_restart_failures_total",
                         "Attempts to restart the embedded PostgreSQL that failed.", [supervisor] {
                           return static_cast<double>(supervisor->Status().failed_restarts);
                         });
    store::BatchedCiReader* reader = s.ci_reader.get();
    s.metrics.AddCounter("cmdb_ci_reads_batched_total",
                         "Reads of one CI answered by the batched reader.",
                         [reader] { return static_cast<double>(reader->reads()); });
    s.metrics.AddCounter("cmdb_ci_read_batches_total",
                         "Queries the batched reader sent (reads / batches = mean batch size).",
                         [reader] { return static_cast<double>(reader->batches()); });
    store::GraphCache* graph = s.graph.get();
    if (graph != nullptr) {
      s.metrics.AddGauge("cmdb_graph_loads", "Loads of the dependency graph since the start.",
                         [graph] { return static_cast<double>(graph->loads()); });
      s.metrics.AddGauge("cmdb_graph_full_loads",
                         "Loads of the dependency graph that read every CI and relation.",
                         [graph] { return static_cast<double>(graph->full_loads()); });
      s.metrics.AddGauge("cmdb_graph_last_load_seconds",
                         "How long the latest load of the dependency graph took.",
                         [graph] { return graph->last_load_seconds(); });
      s.metrics.AddCounter("cmdb_graph_merges_total",
                           "Merges of the changes carried beside the graph's arrays into new ones.",
                           [graph] { return static_cast<double>(graph->merges()); });
    }
    auth::Authenticator* authenticator = s.auth.get();
    s.metrics.AddCounter(
        "cmdb_auth_failures_total",
        "Requests whose token was missing, malformed, unknown, expired or revoked.",
        [authenticator] { return static_cast<double>(authenticator->failures()); });
    s.metrics.AddCounter(
        "cmdb_auth_rate_limited_total",
        "Requests refused (429) because their address failed too often.",
        [authenticator] { return static_cast<double>(authenticator->refusals()); });
    store::HistoricalGraphs* past = s.history.get();
    s.metrics.AddCounter("cmdb_history_graph_builds_total",
                         "Graphs of past instants rebuilt from history (as_of, incident traces).",
                         [past] { return static_cast<double>(past->builds()); });
    s.metrics.AddCounter("cmdb_history_graph_hits_total",
                         "Requests for a past instant answered by a kept or running rebuild.",
                         [past] { return static_cast<double>(past->hits()); });
    s.metrics.AddCounter("cmdb_history_graph_refusals_total",
                         "Requests for a past instant refused (503) while others were rebuilt.",
                         [past] { return static_cast<double>(past->refusals()); });
    if (s.config.audit_retention_days > 0 || s.config.import_job_retention_days > 0 ||
        s.import_cache) {
      store::DbPool* prune_pool = s.pool.get();
      const int audit_days = s.config.audit_retention_days;
      const int job_days = s.config.import_job_retention_days;
      import::ImportCache* cache = s.import_cache.get();
      s.pruner = std::thread([&s, prune_pool, audit_days, job_days, cache] {
        std::unique_lock lock(s.pruner_mutex);
        while (!s.pruner_stop) {
          lock.unlock();
          PruneOnce(*prune_pool, audit_days, job_days, cache);
          lock.lock();
          s.pruner_wake.wait_for(lock, std::chrono::hours(1), [&s] { return s.pruner_stop; });
        }
      });
    }
    HttpServerOptions options;
    options.address = host;
    options.port = port;
    options.io_threads = s.config.io_threads;
    options.worker_threads = s.config.pool_size;
    options.body_limit = s.config.body_limit;
    options.stream_limit = s.config.upload_limit;
    options.header_timeout = s.config.header_timeout;
    options.read_timeout = s.config.read_timeout;
    options.max_connections = s.config.max_connections;
    options.max_waiting_requests = s.config.max_waiting_requests;
    options.body_memory_limit =
        std::max<std::uint64_t>(s.config.body_memory_limit, s.config.body_limit);
    options.tls_cert_file = s.config.tls_cert;
    options.tls_key_file = s.config.tls_key;
    Router* router = s.router.get();
    AppContext* context = &s.context;
    s.http = std::make_unique<HttpServer>(
        options,
        [router, context](Request& request) { return router->Dispatch(request, *context); },
        [router, context](Request& request, std::function<void(Response)> answer) {
          return router->Start(request, *context, std::move(answer));
        },
        BodyStreamer{
            [router](const Request& request) { return router->Streams(request); },
            [router, context](Request& request) { return router->Stream(request, *context); }});
    s.http->Start();
    HttpServer* http = s.http.get();
    s.metrics.AddGauge("cmdb_http_open_connections", "Open client connections.",
                       [http] { return static_cast<double>(http->open_connections()); });
    s.metrics.AddGauge("cmdb_http_queued_requests",
                       "Requests on or waiting for a worker thread right now.",
                       [http] { return static_cast<double>(http->queued_requests()); });
    s.metrics.AddGauge("cmdb_http_body_bytes", "Bytes of request bodies held in memory right now.",
                       [http] { return static_cast<double>(http->body_bytes()); });
    s.metrics.AddCounter(
        "cmdb_http_busy_refusals_total",
        "Requests answered 503 at once: too many waiting for a worker, or bodies over the limit.",
        [http] { return static_cast<double>(http->busy_refusals()); });
    std::atomic<bool>* warming = &s.warming;
    s.metrics.AddGauge("cmdb_import_warmup_running",
                       "1 while the instance builds the identities imports kept before it started.",
                       [warming] { return warming->load() ? 1.0 : 0.0; });
    if (s.import_cache && s.config.import_warmup) {
      s.warming = true;
      import::ImportCache* cache = s.import_cache.get();
      std::atomic<bool>* stop = &s.warmer_stop;
      s.warmer = std::thread([dsn, cache, stop, warming] {
        WarmImportCache(dsn, *cache, *stop);
        *warming = false;
      });
    }
  } catch (...) {
    Stop();
    throw;
  }
}

void App::Stop() {
  Impl& s = *impl_;
  // At once: a request waiting for a type's entry the warm-up is building gets it sooner (left
  // empty, it reads the type itself), and the HTTP drain below does not wait for the whole.
  s.warmer_stop = true;
  // First: it marks the pools of the reader and the workers, which go below, and restarts the
  // cluster stopped last.
  if (s.supervisor) s.supervisor->Stop();
  if (s.http) {
    s.http->Stop();
    // Reads still queued answer into the stopped server's event loop, which must outlive them.
    if (s.ci_reader) s.ci_reader->Stop();
    s.http.reset();
  }
  s.context.ci_reader = nullptr;
  s.ci_reader.reset();
  if (s.discovery) {
    s.discovery->Stop();
    s.discovery.reset();
    s.context.discovery = nullptr;
  }
  if (s.imports) {
    s.imports->Stop();
    s.imports.reset();
    s.context.imports = nullptr;
  }
  if (s.audits) {
    s.audits->Stop();
    s.audits.reset();
    s.context.audits = nullptr;
  }
  if (s.warmer.joinable()) s.warmer.join();
  if (s.pruner.joinable()) {
    {
      std::lock_guard lock(s.pruner_mutex);
      s.pruner_stop = true;
    }
    s.pruner_wake.notify_all();
    s.pruner.join();
  }
  s.context.auth = nullptr;
  s.context.audit = nullptr;
  s.context.audit_flush = nullptr;
  s.audit_log.reset();  // writes the lines still queued
  s.auth.reset();
  s.history.reset();
  s.graph.reset();
  s.context.database = nullptr;
  s.supervisor.reset();
  s.pool.reset();
  if (s.postgres) {
    s.postgres->Stop();
    s.postgres.reset();
  }
}

std::uint16_t App::port() const { return impl_->http ? impl_->http->port() : 0; }

std::string App::base_url() const {
  std::string host;
  std::uint16_t ignored = 0;
  ParseListen(impl_->config.listen, host, ignored);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->config.tls_cert.empty() ? "http://" : "https://") + host + ":" +
         std::to_string(port());
}

int App::demo_cis_loaded() const { return impl_->demo_loaded; }

std::string App::admin_token_file() const { return impl_->admin_token_file; }

std::string App::demo_tokens_file() const { return impl_->demo_tokens_file; }

}  // namespace cmdb::server
