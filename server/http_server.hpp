#pragma once
// The HTTP/1.1 listener and sessions (Boost.Beast, kept inside http_server.cpp). Reads each
// request under a body limit and a timeout, hands it to a worker pool so blocking database
// work never runs on the I/O threads, and writes the response. Stop() drains: it stops
// accepting, lets in-flight requests finish and closes idle connections.
// A request whose route answers it without blocking (RequestStarter; reads batched across
// requests) waits for that answer instead. A request whose route takes its body as a stream
// (BodyStreamer; uploads) has it read in parts of up to 1 MiB, each handed to the sink on a
// worker before the next is read. `Expect: 100-continue` is answered before a body is read.
// Overload is refused early: past max_waiting_requests queued for the workers, or past
// body_memory_limit of bodies held, a request gets 503 with Retry-After at once.
// Start/Stop from one owner thread; the handler is called concurrently from workers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/http_types.hpp"

namespace cmdb::server {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see port())
  std::size_t io_threads = 1;
  std::size_t worker_threads = 8;
  std::size_t body_limit = std::size_t{16} * 1024 * 1024;
  // A body taken by a BodySink (BodyStreamer): read in parts, so only bounded by this.
  std::uint64_t stream_limit = std::uint64_t{4} << 30;
  std::size_t header_limit = std::size_t{16} * 1024;
  std::chrono::seconds header_timeout{10};  // request line and headers; idle keep-alive
  std::chrono::seconds read_timeout{30};    // the body, once the headers are in (a streamed
                                            // body: each part of up to 1 MiB)
  std::size_t max_connections = 1024;
  // Requests waiting for a worker beyond those the workers are running: more are answered 503
  // with Retry-After at once instead of piling up behind a busy database.
  std::size_t max_waiting_requests = 256;
  // Request bodies read whole and held in memory at once, across all connections: a request
  // whose body would pass it is answered 503 with Retry-After (before its body is read).
  // At least body_limit.
  std::uint64_t body_memory_limit = std::uint64_t{256} * 1024 * 1024;
  // HTTPS (TLS 1.2 and 1.3) when both are given: PEM certificate chain and private key.
  std::string tls_cert_file;
  std::string tls_key_file;
};

using RequestHandler = std::function<Response(Request&)>;
// Called on the I/O thread before the handler. It may start the request itself and return
// true: it then calls `answer` exactly once, from any thread, maybe before it returns, and the
// handler does not run. false leaves the request to the handler on a worker. Must not block.
using RequestStarter = std::function<bool(Request&, std::function<void(Response)> answer)>;
// For a request with a body, before the body is read (`request` has the headers only):
// `wanted`, on the I/O thread and without blocking, says whether its route may take the body
// as a stream; only then `open` is called, on a worker: a sink to take the body in parts, or
// nullptr to read it whole for the handler. The request outlives the sink.
struct BodyStreamer {
  std::function<bool(const Request&)> wanted;
  std::function<std::unique_ptr<BodySink>(Request&)> open;
  explicit operator bool() const { return wanted && open; }
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, RequestHandler handler, RequestStarter starter = {},
             BodyStreamer streamer = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the threads. Throws model::Error{kUnavailable} when it cannot bind.
  void Start();
  // Stops accepting, waits up to `grace` for in-flight requests, then closes everything.
  void Stop(std::chrono::seconds grace = std::chrono::seconds{10});

  std::uint16_t port() const;
  std::size_t open_connections() const;
  // Requests on or waiting for a worker now; requests refused because too many waited or
  // their bodies would not fit; bytes of request bodies held now.
  std::size_t queued_requests() const;
  std::uint64_t busy_refusals() const;
  std::uint64_t body_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cmdb::server
