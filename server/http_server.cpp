// The only translation unit that includes Beast and Asio (they compile slowly).
#include "server/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "model/error.hpp"
#include "model/log.hpp"
#include "server/problem.hpp"

namespace cmdb::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// The most Beast's http::read takes from the socket at once (its read_size_or_throw limit).
constexpr std::size_t kBodyReadBytes = std::size_t{64} * 1024;

struct Session {
  explicit Session(tcp::socket socket) : stream(std::move(socket)) {
    beast::error_code ec;
    const tcp::endpoint peer = stream.socket().remote_endpoint(ec);
    if (!ec) client_address = peer.address().to_string();
  }
  beast::tcp_stream stream;
  std::string client_address;  // the peer's IP address, for the audit log and rate limits
  bool busy = false;           // touched only on the session's strand
};

std::string NewRequestId() {
  static const std::uint64_t prefix = std::random_device{}() & 0xffffffffU;
  static std::atomic<std::uint64_t> counter{0};
  std::array<char, 40> buf{};
  char* end = std::to_chars(buf.data(), buf.data() + buf.size(), prefix, 16).ptr;
  *end++ = '-';
  end = std::to_chars(end, buf.data() + buf.size(), counter.fetch_add(1) + 1, 16).ptr;
  return {buf.data(), end};
}

// A client-supplied X-Request-Id is echoed when it is short and printable.
std::string RequestIdFrom(std::string_view given) {
  if (!given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    return std::string(given);
  }
  return NewRequestId();
}

http::response<http::string_body> ToBeast(Response&& response, unsigned version, bool keep_alive,
                                          const std::string& request_id, bool head) {
  http::response<http::string_body> res{static_cast<http::status>(response.status), version};
  res.set(http::field::server, "cmdb");
  if (!response.content_type.empty()) res.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) res.set(name, value);
  res.set("X-Request-Id", request_id);
  res.keep_alive(keep_alive);
  res.body() = std::move(response.body);  // a large impact is hundreds of KB: moved, not copied
  res.prepare_payload();
  if (head) res.body().clear();
  return res;
}

// Where a started request's answer meets the session waiting for it. The answer may come
// from any thread, before or after the session starts waiting: it is stored under the mutex,
// and the timer the session waits on is cancelled on the session's strand, where the check
// for an answer and the start of the wait happen in one step, so no wake-up is lost.
class AnswerSlot : public std::enable_shared_from_this<AnswerSlot> {
 public:
  explicit AnswerSlot(const asio::any_io_executor& strand)
      : strand_(strand), timer_(strand, asio::steady_timer::time_point::max()) {}

  void Answer(Response response) {
    {
      std::lock_guard lock(mutex_);
      response_ = std::move(response);
    }
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  asio::awaitable<Response> Wait() {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (response_) co_return std::move(*response_);
      }
      co_await timer_.async_wait(kTuple);  // ends when cancelled by Answer
    }
  }

 private:
  asio::any_io_executor strand_;
  asio::steady_timer timer_;  // touched only on strand_
  std::mutex mutex_;
  std::optional<Response> response_;  // guarded by mutex_
};

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions opts, RequestHandler h, RequestStarter st, BodyStreamer bs)
      : options(std::move(opts)),
        handler(std::move(h)),
        starter(std::move(st)),
        streamer(std::move(bs)),
        acceptor(ioc),
        workers(options.worker_threads) {}

  HttpServerOptions options;
  RequestHandler handler;
  RequestStarter starter;
  BodyStreamer streamer;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::thread_pool workers;
  std::vector<std::thread> io_threads;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> queued{0};        // requests on or waiting for a worker
  std::atomic<std::uint64_t> body_bytes{0};  // bodies read whole and held
  std::atomic<std::uint64_t> busy_refusals{0};

  // A share of body_memory_limit held by one request until it is answered.
  class BodyReservation {
   public:
    BodyReservation() = default;
    BodyReservation(const BodyReservation&) = delete;
    BodyReservation& operator=(const BodyReservation&) = delete;
    ~BodyReservation() {
      if (held_ != nullptr) held_->fetch_sub(bytes_);
    }
    // Takes `bytes` of `limit` in `held`; false (taking nothing) when they do not fit.
    bool Take(std::atomic<std::uint64_t>& held, std::uint64_t bytes, std::uint64_t limit) {
      std::uint64_t now = held.load();
      do {
        if (now + bytes > limit) return false;
      } while (!held.compare_exchange_weak(now, now + bytes));
      held_ = &held;
      bytes_ = bytes;
      return true;
    }

   private:
    std::atomic<std::uint64_t>* held_ = nullptr;
    std::uint64_t bytes_ = 0;
  };

  // The 503 of a request refused for overload.
  Response Busy(const std::string& why, std::string_view path) {
    busy_refusals.fetch_add(1);
    return MakeProblemResponse(
        model::Error(model::ErrorCode::kUnavailable, why + "; try again", std::chrono::seconds{1}),
        path);
  }
  std::atomic<bool> draining{false};
  std::uint16_t bound_port = 0;
  bool started = false;
  bool stopped = false;
  std::mutex sessions_mutex;
  std::list<std::weak_ptr<Session>> sessions;  // guarded by sessions_mutex
  std::optional<asio::ssl::context> tls;       // set by Start when a certificate is given

  asio::awaitable<void> Reject(tcp::socket socket, model::Error error) {
    beast::tcp_stream stream(std::move(socket));
    Response problem = MakeProblemResponse(error, "/");
    auto res = ToBeast(std::move(problem), 11, false, NewRequestId(), false);
    stream.expires_after(std::chrono::seconds{5});
    co_await http::async_write(stream, res, kTuple);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Runs `fn` on the worker pool (handlers block on the database) and returns its result.
  template <typename Fn>
  asio::awaitable<std::invoke_result_t<Fn>> OnWorker(Fn fn) {
    co_return co_await asio::co_spawn(
        workers, [&fn]() -> asio::awaitable<std::invoke_result_t<Fn>> { co_return fn(); },
        asio::use_awaitable);
  }

  // The problem answered when a request could not be read (the stream is then out of sync).
  Response ReadProblem(const beast::error_code& ec, std::uint64_t limit) const {
    if (ec == http::error::body_limit) {
      return MakeProblemResponse(
          model::ErrorCode::kPayloadTooLarge,
          "the request body exceeds the limit of " + std::to_string(limit) + " bytes", "/");
    }
    if (ec == http::error::header_limit) {
      return MakeProblemResponse(model::ErrorCode::kHeadersTooLarge,
                                 "the request headers are too large", "/");
    }
    return MakeProblemResponse(model::ErrorCode::kInvalidArgument,
                               "malformed HTTP request: " + ec.message(), "/");
  }

  static bool Quiet(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == beast::error::timeout ||
           ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
           ec == asio::error::eof;
  }

  static Request HeadOf(const http::request_header<>& header) {
    Request request;
    request.method = std::string(header.method_string());
    request.target = std::string(header.target());
    for (const auto& field : header) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.request_id = RequestIdFrom(request.Header("x-request-id"));
    return request;
  }

  // Reads the body into `sink` in parts of up to 1 MiB, each written on a worker before the
  // next is read; the sink's answer, or nullopt when the connection failed (`ec` says how).
  template <typename Io>
  asio::awaitable<std::optional<Response>> StreamBody(Session& s, Io& io,
                                                      beast::flat_buffer& buffer,
                                                      http::request_parser<http::string_body>& head,
                                                      BodySink& sink, beast::error_code& ec) {
    const boost::optional<std::uint64_t> length = head.content_length();
    http::request_parser<http::buffer_body> parser(std::move(head));
    parser.body_limit(options.stream_limit);  // counted from here, for a chunked body
    if (length && *length > options.stream_limit) {
      co_return co_await OnWorker(
          [&] { return sink.Abandon(ReadProblem(http::error::body_limit, options.stream_limit)); });
    }
    std::vector<char> part(std::size_t{1} << 20);
    bool taking = true;
    while (!parser.is_done()) {
      parser.get().body().data = part.data();
      parser.get().body().size = part.size();
      s.stream.expires_after(options.read_timeout);
      std::tie(ec, std::ignore) = co_await http::async_read(io, buffer, parser, kTuple);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (ec == http::error::body_limit) {
          ec = {};
          co_return co_await OnWorker([&] {
            return sink.Abandon(ReadProblem(http::error::body_limit, options.stream_limit));
          });
        }
        co_return std::nullopt;  // the caller drops the sink and what it began
      }
      const std::size_t got = part.size() - parser.get().body().size;
      if (got > 0) {
        taking = co_await OnWorker([&] { return sink.Write({part.data(), got}); });
        if (!taking) break;  // the sink has its answer; the rest of the body is not read
      }
    }
    co_return co_await OnWorker([&sink] { return sink.Finish(); });
  }

  // A connection: TLS first when configured (the handshake within header_timeout), then its
  // requests, then a clean close (close_notify for TLS).
  asio::awaitable<void> RunSession(std::shared_ptr<Session> s) {
    if (!tls) {
      co_await Serve(s, s->stream);
      beast::error_code ignored;
      s->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    asio::ssl::stream<beast::tcp_stream&> secure(s->stream, *tls);
    s->stream.expires_after(options.header_timeout);
    auto [ec] = co_await secure.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) co_return;  // not TLS, an old protocol version, or gone: nothing to answer
    co_await Serve(s, secure);
    s->stream.expires_after(std::chrono::seconds{2});
    co_await secure.async_shutdown(kTuple);
  }

  // Sends `response` chunked, its body from its source: the header at once, then each part as
  // the source makes it (on a worker), so memory stays bounded whatever the size. A source that
  // throws ends the connection without the last chunk: the client sees a truncated transfer
  // rather than a complete-looking one. Returns whether the connection may be kept.
  template <typename Io>
  asio::awaitable<bool> WriteStreamed(const std::shared_ptr<Session>& s, Io& io, Response response,
                                      unsigned version, bool keep_alive,
                                      const std::string& request_id) {
    http::response<http::empty_body> head{static_cast<http::status>(response.status), version};
    head.set(http::field::server, "cmdb");
    if (!response.content_type.empty()) head.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) head.set(name, value);
    head.set("X-Request-Id", request_id);
    head.keep_alive(keep_alive);
    head.chunked(true);
    http::response_serializer<http::empty_body> serializer{head};
    s->stream.expires_after(options.read_timeout);
    auto [head_ec, head_written] = co_await http::async_write_header(io, serializer, kTuple);
    if (head_ec) co_return false;
    std::string part;
    for (bool more = true; more;) {
      part.clear();
      try {
        more = co_await OnWorker([&] { return response.source(part); });
      } catch (const std::exception& e) {
        model::Log(model::LogLevel::kError, "streamed response failed",
                   {{"request_id", request_id}, {"error", e.what()}});
        co_return false;
      }
      if (part.empty()) continue;
      s->stream.expires_after(options.read_timeout);
      auto [ec, n] = co_await asio::async_write(io, http::make_chunk(asio::buffer(part)), kTuple);
      if (ec) co_return false;
    }
    s->stream.expires_after(options.read_timeout);
    auto [last_ec, last_n] = co_await asio::async_write(io, http::make_chunk_last(), kTuple);
    co_return !last_ec && keep_alive;
  }

  // The requests of one connection, read from and answered on `io` (the TCP stream or the TLS
  // stream over it; deadlines are set on the TCP stream below either).
  template <typename Io>
  asio::awaitable<void> Serve(std::shared_ptr<Session> s, Io& io) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      // A body a sink may take is bounded by the larger limit until the route is known.
      parser.body_limit(streamer ? std::max<std::uint64_t>(options.body_limit, options.stream_limit)
                                 : options.body_limit);
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      // Two deadlines: the headers (also the idle keep-alive wait) must arrive within
      // header_timeout, the body within read_timeout after them, so a client trickling
      // bytes cannot hold a connection for long.
      s->stream.expires_after(options.header_timeout);
      auto [ec, bytes] = co_await http::async_read_header(io, buffer, parser, kTuple);
      Request request;
      bool target_ok = false;
      unsigned version = 11;
      bool client_keeps_alive = false;
      std::optional<Response> streamed;
      bool body_unread = false;  // the body went to a sink, which may have stopped reading it
      if (!ec) {
        request = HeadOf(parser.get());
        request.client_address = s->client_address;
        target_ok = ParseTarget(request.target, request.path, request.query);
        version = parser.get().version();
        client_keeps_alive = parser.get().keep_alive();
        s->busy = true;
      }
      if (!ec && !parser.is_done()) {
        // Beast reads into the free space of `buffer`, and after the headers that is a few
        // hundred bytes: a 15 MB body came in 30,000 reads of 512 bytes (190 ms on loopback).
        // With room for Beast's largest read it comes in reads of 64 KiB (released below).
        buffer.reserve(kBodyReadBytes);
      }
      if (!ec && !parser.is_done() && parser.get()[http::field::expect] == "100-continue") {
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        s->stream.expires_after(options.read_timeout);
        std::tie(ec, std::ignore) = co_await http::async_write(io, go_on, kTuple);
      }
      if (!ec && !parser.is_done() && streamer && target_ok && streamer.wanted(request)) {
        std::unique_ptr<BodySink> sink = co_await OnWorker([&] { return streamer.open(request); });
        if (sink) {
          streamed = co_await StreamBody(*s, io, buffer, parser, *sink, ec);
          co_await OnWorker([&sink] {
            sink.reset();  // may end a transaction: not on the I/O thread
            return 0;
          });
          if (ec && !streamed) {
            if (!Quiet(ec) && !draining) {
              Response problem = ReadProblem(ec, options.stream_limit);
              auto res = ToBeast(std::move(problem), 11, false, NewRequestId(), false);
              s->stream.expires_after(std::chrono::seconds{5});
              co_await http::async_write(io, res, kTuple);
            }
            break;
          }
          body_unread = true;
        }
      }
      BodyReservation reservation;  // released once the request is answered
      if (!ec && !streamed && !parser.is_done()) {
        // Read whole: the body limit applies (checked by Beast for a chunked body).
        if (parser.content_length() && *parser.content_length() > options.body_limit) {
          ec = http::error::body_limit;
        }
        parser.body_limit(options.body_limit);
        // Held in memory until answered: within body_memory_limit across all connections (a
        // chunked body, of unknown length, may take up to body_limit).
        const std::uint64_t size = parser.content_length().value_or(options.body_limit);
        if (!ec && !reservation.Take(body_bytes, size, options.body_memory_limit)) {
          auto res = ToBeast(Busy("the server holds " + std::to_string(body_bytes.load() >> 20) +
                                      " MiB of request bodies, its limit",
                                  request.path),
                             version, false, request.request_id, false);
          s->stream.expires_after(std::chrono::seconds{5});
          co_await http::async_write(io, res, kTuple);
          break;  // the body is unread: the connection cannot go on
        }
      }
      if (!ec && !streamed && !parser.is_done()) {
        s->stream.expires_after(options.read_timeout);
        std::tie(ec, bytes) = co_await http::async_read(io, buffer, parser, kTuple);
      }
      if (ec) {
        if (Quiet(ec) || draining) break;
        // The request could not be read: say why, then close (the stream is out of sync).
        auto res = ToBeast(ReadProblem(ec, options.body_limit), 11, false, NewRequestId(), false);
        s->stream.expires_after(std::chrono::seconds{5});
        co_await http::async_write(io, res, kTuple);
        break;
      }
      const auto received = std::chrono::steady_clock::now();
      buffer.shrink_to_fit();  // an idle keep-alive connection holds no read space
      // After a streamed body the connection closes: the body may not have been read to its end.
      const bool keep_alive = client_keeps_alive && !draining && !body_unread;
      Response response;
      if (streamed) {
        response = std::move(*streamed);
      } else {
        request.body = std::move(parser.get().body());
        if (!target_ok) {
          response = MakeProblemResponse(model::ErrorCode::kInvalidArgument,
                                         "the request target is malformed", "/");
        } else {
          auto slot = std::make_shared<AnswerSlot>(co_await asio::this_coro::executor);
          if (starter && starter(request, [slot](Response r) { slot->Answer(std::move(r)); })) {
            response = co_await slot->Wait();
          } else if (queued.fetch_add(1) >= options.worker_threads + options.max_waiting_requests) {
            queued.fetch_sub(1);
            response = Busy("the server is busy: " + std::to_string(options.max_waiting_requests) +
                                " requests are waiting for a worker",
                            request.path);
          } else {
            // Handlers block on the database: run them on the worker pool, never on I/O threads.
            struct Dequeue {
              std::atomic<std::size_t>& queued;
              ~Dequeue() { queued.fetch_sub(1); }
            } dequeue{queued};
            response = co_await OnWorker([this, &request] { return handler(request); });
          }
        }
      }
      // The time from the whole request read to the response ready to write (waiting for a
      // worker thread included): what the server spent, as browsers' and proxies' tools read it.
      std::array<char, 48> timing{};
      std::snprintf(
          timing.data(), timing.size(), "app;dur=%.3f",
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - received)
              .count());
      response.headers.emplace_back("Server-Timing", timing.data());
      if (response.source && request.method != "HEAD" && version >= 11) {
        const bool kept = co_await WriteStreamed(s, io, std::move(response), version,
                                                 keep_alive && !draining, request.request_id);
        s->busy = false;
        if (!kept || draining) break;
        continue;
      }
      if (response.source) {
        // HEAD or HTTP/1.0: the whole body at once (HEAD sends none of it).
        if (request.method != "HEAD") {
          std::string part;
          while (co_await OnWorker([&] { return response.source(part); })) {
          }
          response.body += part;
        }
        response.source = nullptr;
      }
      auto res = ToBeast(std::move(response), version, keep_alive && !draining, request.request_id,
                         request.method == "HEAD");
      s->stream.expires_after(options.read_timeout);
      auto [write_ec, written] = co_await http::async_write(io, res, kTuple);
      s->busy = false;
      if (write_ec || !res.keep_alive() || draining) break;
    }
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), kTuple);
      if (ec) {
        if (!acceptor.is_open() || draining) co_return;
        // Out of file descriptors or a transient failure: back off briefly, keep serving.
        asio::steady_timer timer(ioc, std::chrono::milliseconds{50});
        co_await timer.async_wait(kTuple);
        continue;
      }
      if (connections.load() >= options.max_connections) {
        auto executor = socket.get_executor();
        asio::co_spawn(
            executor,
            Reject(std::move(socket), model::Error(model::ErrorCode::kUnavailable,
                                                   "too many open connections; retry shortly",
                                                   std::chrono::seconds{1})),
            asio::detached);
        continue;
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // responses are written whole
      auto session = std::make_shared<Session>(std::move(socket));
      {
        std::lock_guard lock(sessions_mutex);
        sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
      }
      connections.fetch_add(1);
      asio::co_spawn(session->stream.get_executor(), RunSession(session),
                     [this, session](const std::exception_ptr&) { connections.fetch_sub(1); });
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options, RequestHandler handler, RequestStarter starter,
                       BodyStreamer streamer)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(starter),
                                   std::move(streamer))) {}

HttpServer::~HttpServer() {
  try {
    Stop(std::chrono::seconds{0});
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

void HttpServer::Start() {
  if (!impl_->options.tls_cert_file.empty() || !impl_->options.tls_key_file.empty()) {
    if (impl_->options.tls_cert_file.empty() || impl_->options.tls_key_file.empty()) {
      throw model::Error(model::ErrorCode::kInvalidArgument,
                         "TLS needs both --tls-cert and --tls-key");
    }
    asio::ssl::context context(asio::ssl::context::tls_server);
    // TLS 1.2 and 1.3 only; OpenSSL's default cipher list for them.
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    beast::error_code tls_ec;
    context.use_certificate_chain_file(impl_->options.tls_cert_file, tls_ec);
    if (tls_ec) {
      throw model::Error(model::ErrorCode::kInvalidArgument, "cannot use the TLS certificate " +
                                                                 impl_->options.tls_cert_file +
                                                                 ": " + tls_ec.message());
    }
    context.use_private_key_file(impl_->options.tls_key_file, asio::ssl::context::pem, tls_ec);
    if (tls_ec) {
      throw model::Error(
          model::ErrorCode::kInvalidArgument,
          "cannot use the TLS key " + impl_->options.tls_key_file + ": " + tls_ec.message());
    }
    impl_->tls.emplace(std::move(context));
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) {
    throw model::Error(model::ErrorCode::kInvalidArgument,
                       "cannot listen on '" + impl_->options.address + "': not an IP address");
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw model::Error(model::ErrorCode::kUnavailable,
                       "cannot listen on " + impl_->options.address + ":" +
                           std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->bound_port = acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->Accept(), asio::detached);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, impl_->options.io_threads); ++i) {
    impl_->io_threads.emplace_back([this] { impl_->ioc.run(); });
  }
  impl_->started = true;
}

void HttpServer::Stop(std::chrono::seconds grace) {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  impl_->draining = true;
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  // Idle keep-alive connections would wait for their timeout; close them now. Busy ones
  // finish their request and then close because `draining` is set.
  {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& weak : impl_->sessions) {
      if (auto s = weak.lock()) {
        asio::post(s->stream.get_executor(), [s] {
          if (!s->busy) s->stream.socket().cancel();
        });
      }
    }
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  impl_->ioc.stop();
  for (auto& t : impl_->io_threads) t.join();
  impl_->workers.join();
}

std::uint16_t HttpServer::port() const { return impl_->bound_port; }

std::size_t HttpServer::open_connections() const { return impl_->connections.load(); }

std::size_t HttpServer::queued_requests() const { return impl_->queued.load(); }

std::uint64_t HttpServer::busy_refusals() const { return impl_->busy_refusals.load(); }

std::uint64_t HttpServer::body_bytes() const { return impl_->body_bytes.load(); }

}  // namespace cmdb::server
