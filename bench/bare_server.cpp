// The baseline for the GET benchmark: a minimal Beast HTTP/1.1 server that answers every
// request with a fixed JSON body the size of a typical CI. Same Beast/Asio stack, same
// coroutine session shape and keep-alive as cmdb, but no routing, no worker hand-off and no
// database. Usage: bare_server PORT [IO_THREADS]
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

const std::string kBody =
    R"({"id":1,"type":"server","name":"db-01","status":"active","owner":"dba-team","tags":["prod"],)"
    R"("attributes":{"hostname":"db-01","fqdn":"db-01.example.net","domain":"example.net",)"
    R"("ip":"10.0.0.5","os":"Debian GNU/Linux","os_version":"12","kernel":"6.1.0-18-amd64",)"
    R"("cpu_count":16,"memory_mb":65536,"serial":"CZJ91001"},"redundancy":null,"version":1,)"
    R"("created_at":"2026-11-27T17:53:37.136349Z","updated_at":"2026-11-27T17:53:37.136349Z",)"
    R"("last_seen_at":null})";

asio::awaitable<void> Session(beast::tcp_stream stream) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    stream.expires_after(std::chrono::seconds(30));
    auto [ec, n] =
        co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "bare");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = kBody;
    res.prepare_payload();
    auto [wec, w] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Listen(asio::io_context& ioc, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(asio::make_strand(ioc), asio::as_tuple(asio::use_awaitable));
    if (ec) continue;
    auto executor = socket.get_executor();
    asio::co_spawn(executor, Session(beast::tcp_stream(std::move(socket))), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bare_server PORT [IO_THREADS]\n");
    return 2;
  }
  auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  int threads = argc > 2 ? std::stoi(argv[2]) : 1;
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), port});
  std::printf("listening on %u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(ioc, Listen(ioc, acceptor), asio::detached);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}
