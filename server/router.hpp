#pragma once
// The route table and dispatch: method + path pattern -> handler. Dispatch holds the one
// try/catch of a request: a model::Error becomes problem+json, anything else a 500 whose real
// message only reaches the log. Thread-safe after construction.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "import/batch_sizes.hpp"
#include "model/access.hpp"
#include "server/http_types.hpp"

namespace cmdb::store {
class DbPool;
class BatchedCiReader;
class GraphCache;
class HistoricalGraphs;
class DatabaseSupervisor;
}  // namespace cmdb::store

namespace cmdb::jobs {
class DiscoveryWorker;
class JobWorker;
}  // namespace cmdb::jobs

namespace cmdb::reports {
class GraphvizRenderer;
}

namespace cmdb::import {
class ImportCache;
}

namespace cmdb::auth {
class Verifier;
}

namespace cmdb::server {

class Metrics;

// Long-lived objects a handler may use; built in main and shared by all requests.
class Router;

struct AppContext {
  store::DbPool* db = nullptr;
  store::BatchedCiReader* ci_reader = nullptr;  // GET of one CI, batched; may be null
  store::GraphCache* graph = nullptr;           // invalidated after every committed write
  store::HistoricalGraphs* history = nullptr;   // graphs at past instants (as_of, traces)
  import::ImportCache* import_cache = nullptr;  // identities kept between imports; may be null
  import::BatchSizes import_batches;            // of a synchronous JSON import
  reports::GraphvizRenderer* renderer = nullptr;
  jobs::DiscoveryWorker* discovery = nullptr;  // woken when a run is queued; may be null
  jobs::JobWorker* imports = nullptr;          // woken when an import is queued; may be null
  jobs::JobWorker* audits = nullptr;           // woken when an audit run is queued; may be null
  Metrics* metrics = nullptr;
  // How the database is doing (/ready); may be null: then /ready pings it.
  store::DatabaseSupervisor* database = nullptr;
  // Verifies tokens; null: every route but the public ones answers 401.
  auth::Verifier* auth = nullptr;
  // Appends a line to the audit log (every write and every refused attempt); may be null.
  // Queued: the line is written in the background (store/audit_log_writer.hpp).
  std::function<void(model::AuditEntry)> audit;
  // Returns once the lines appended so far are written; may be null.
  std::function<void()> audit_flush;
  std::string pepper;  // the key of token hashes, for the handlers that issue tokens
  bool tls = false;    // HTTPS: the web UI's session cookie is Secure
  // The routes themselves: the web UI's pages fetch their data through the API's routes.
  const Router* router = nullptr;
  std::string_view openapi_json;
  bool log_requests = true;  // one structured line per request on stderr
};

using PathParams = std::map<std::string, std::string, std::less<>>;

// The web UI: its pages live under /ui/, and it signs in with this HttpOnly cookie holding the
// user's token instead of an Authorization header.
inline constexpr const char* kSessionCookie = "cmdb_session";
inline bool IsUiPath(std::string_view path) { return path == "/ui" || path.rfind("/ui/", 0) == 0; }
using Handler = std::function<Response(const Request&, const PathParams&, AppContext&)>;
// Called with a function that makes the response (what it throws becomes a problem response).
using Answer = std::function<void(const std::function<Response()>& respond)>;
// Optional, for a hot read: starts the request without blocking and later calls `answer` once,
// from any thread; or returns false (or throws) to leave the request to the handler on a
// worker, which then answers and reports errors as usual.
using Starter = std::function<bool(const Request&, const PathParams&, AppContext&, Answer answer)>;

// A sink taking the request's body in parts (see BodySink); the request holds the headers,
// no body. Called with a request carrying a body; returns nullptr to have the body read whole
// for the handler, as usual. What Write and Finish throw becomes the problem answered.
class StreamedRequest {
 public:
  virtual ~StreamedRequest() = default;
  virtual void Write(std::string_view part) = 0;
  virtual Response Finish() = 0;
};
using Streamer =
    std::function<std::unique_ptr<StreamedRequest>(const Request&, const PathParams&, AppContext&)>;

// Who may call a route: anyone, anyone signed in (what they may do is then the handler's to
// check: their own tokens), or whoever holds one of `roles` (RoleSet::Allows: admin holds
// every role, every role reads as viewer). Workflow rules beyond the role (no one approves
// their own change, a handler escalates only from their tier) are the handler's.
struct Access {
  enum class Kind { kPublic, kSignedIn, kRoles };
  Kind kind = Kind::kRoles;
  std::vector<model::Role> roles;

  bool Permits(const model::Principal& principal) const;
  // "public", "signed_in" or the roles joined by " or ": what docs/access.md shows.
  std::string Describe() const;
};
Access Public();
Access SignedIn();
Access Needs(model::Role role);
Access NeedsAnyOf(std::initializer_list<model::Role> roles);

struct Route {
  std::string method;
  std::string pattern;  // "/api/v1/cis/{id}"
  Handler handler;
  Access access;
  Starter start = {};    // empty for most routes
  Streamer stream = {};  // for uploads too large to hold; empty for most routes
};

class Router {
 public:
  explicit Router(std::vector<Route> routes);

  // Finds the route, runs it and turns failures into problem responses; records metrics and
  // writes one structured log line per request. Never throws.
  Response Dispatch(const Request& request, AppContext& ctx) const;

  // For a GET whose route has a Starter: starts the request; `done` receives its response,
  // mapped, recorded and logged like Dispatch's, from any thread, maybe before Start returns.
  // false: not started, call Dispatch. Never throws. `request` must outlive the answer.
  bool Start(const Request& request, AppContext& ctx, std::function<void(Response)> done) const;

  // For a request with a body whose route has a Streamer: the sink that takes the body in
  // parts, its answer mapped, recorded and logged like Dispatch's; nullptr to call Dispatch
  // with the whole body. Never throws. `request` must outlive the sink.
  std::unique_ptr<BodySink> Stream(const Request& request, AppContext& ctx) const;
  // Whether the request's route has a Streamer (its body may be taken in parts). Cheap, never
  // blocks: asked on the I/O thread before anything else.
  bool Streams(const Request& request) const;

 private:
  const Route* Match(const Request& request, PathParams& params, bool& path_known) const;
  // Whether route number `route`'s pattern takes the path split into `parts` (any method);
  // its parameters go into `params`.
  bool PathMatches(std::size_t route, const std::vector<std::string>& parts,
                   PathParams& params) const;

  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // per route, the pattern's segments
  std::vector<std::size_t> starters_;               // the routes with a Starter

 public:
  const std::vector<Route>& routes() const { return routes_; }
};

// Every endpoint of the API, in one list.
std::vector<Route> ApiRoutes();

}  // namespace cmdb::server
