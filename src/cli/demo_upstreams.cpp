// `figshift demo-upstreams`: tiny JSON APIs standing in for A, B1, B2 so the
// proxy can be tried (and integration-tested) without any real backend.
//
// Everything runs on one io_context on the calling thread: the load is a
// handful of demo requests, and a single thread keeps the code lock-free.

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "figshift/cli.hpp"

namespace figshift::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

constexpr auto kReadTimeout = std::chrono::seconds(30);
// Generous so the proxy's body-size handling can be exercised end to end
// without the demo upstream being the one that refuses.
constexpr std::uint64_t kBodyLimit = 64ull * 1024 * 1024;

// One keep-alive client connection. Owns itself through shared_from_this: the
// pending async operation's handler is what keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const std::string> name)
      : stream_(std::move(socket)), name_(std::move(name)) {}

  void start() { do_read(); }

 private:
  void do_read() {
    // A fresh parser per request: a parser cannot be reused after a message.
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec) {
      // Timeouts and resets are routine for a keep-alive server; not worth a warning.
      spdlog::debug("demo upstream {}: read: {}", *name_, ec.message());
      return;  // dropping the last reference closes the socket
    }
    stream_.expires_never();
    response_ = make_response(parser_->get());
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t /*bytes*/) {
    if (ec) {
      spdlog::debug("demo upstream {}: write: {}", *name_, ec.message());
      return;
    }
    if (response_.need_eof()) return do_close();
    response_ = {};
    do_read();
  }

  void do_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);  // best effort
  }

  http::response<http::string_body> make_response(const http::request<http::string_body>& req) {
    nlohmann::json headers = nlohmann::json::object();
    // These are what the proxy adds or rewrites, so tests can see them arrive.
    for (const char* field : {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "host"}) {
      auto it = req.find(field);
      if (it != req.end()) headers[field] = std::string(it->value());
    }
    nlohmann::json body;
    body["message"] = "Hello from API " + *name_;
    body["upstream"] = *name_;
    body["path"] = std::string(req.target());
    body["method"] = std::string(req.method_string());
    body["headers"] = std::move(headers);
    // Replace invalid UTF-8 from the wire instead of throwing on the data path.
    std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "figshift-demo-upstream");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    if (req.method() == http::verb::head) {
      // HEAD announces the length of the body a GET would get, but sends none.
      res.content_length(text.size());
    } else {
      res.body() = std::move(text);
      res.prepare_payload();
    }
    return res;
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<const std::string> name_;
};

// Accepts connections for one upstream name.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, std::string name)
      : acceptor_(ioc), name_(std::make_shared<const std::string>(std::move(name))) {}

  // Opens, binds and listens; on failure returns the step that failed in `what`.
  error_code open(const tcp::endpoint& endpoint, const char*& what) {
    error_code ec;
    what = "open";
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return ec;
    // Lets a restarted demo rebind at once instead of waiting out TIME_WAIT.
    what = "set SO_REUSEADDR on";
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return ec;
    what = "bind";
    acceptor_.bind(endpoint, ec);
    if (ec) return ec;
    what = "listen on";
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    return ec;
  }

  tcp::endpoint local_endpoint() const {
    error_code ec;
    return acceptor_.local_endpoint(ec);
  }

  const std::string& name() const { return *name_; }

  void start() { do_accept(); }

  void stop() {
    error_code ec;
    acceptor_.close(ec);
  }

 private:
  void do_accept() {
    // No strand: everything runs on one thread, so handlers never overlap.
    acceptor_.async_accept(beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // stop() closed the acceptor
    if (ec) {
      // E.g. EMFILE: keep serving the connections we have rather than giving up.
      spdlog::warn("demo upstream {}: accept: {}", *name_, ec.message());
    } else {
      std::make_shared<Session>(std::move(socket), name_)->start();
    }
    do_accept();
  }

  tcp::acceptor acceptor_;
  std::shared_ptr<const std::string> name_;
};

}  // namespace

int run_demo_upstreams(const std::string& address, const std::vector<DemoUpstream>& upstreams) {
  error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    spdlog::error("demo upstreams: invalid address '{}': {}", address, ec.message());
    return 1;
  }

  asio::io_context ioc{1};
  std::vector<std::shared_ptr<Listener>> listeners;
  listeners.reserve(upstreams.size());
  for (const auto& upstream : upstreams) {
    auto listener = std::make_shared<Listener>(ioc, upstream.name);
    const char* what = "";
    if (auto bind_ec = listener->open(tcp::endpoint{ip, upstream.port}, what)) {
      spdlog::error("demo upstream {}: cannot {} {}:{}: {}", upstream.name, what, address,
                    upstream.port, bind_ec.message());
      return 1;
    }
    listeners.push_back(std::move(listener));
  }

  // Log only once every port is bound, so "listening" lines mean all are ready.
  for (const auto& listener : listeners) {
    const auto endpoint = listener->local_endpoint();
    const auto host = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]"
                                                 : endpoint.address().to_string();
    spdlog::info("demo upstream {} listening on {}:{}", listener->name(), host, endpoint.port());
    listener->start();
  }

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code wait_ec, int signal_number) {
    if (wait_ec) return;
    spdlog::info("demo upstreams: signal {} received, stopping", signal_number);
    for (const auto& listener : listeners) listener->stop();
    // Open keep-alive sessions would otherwise keep run() busy for up to 30 s.
    ioc.stop();
  });

  ioc.run();
  return 0;
}

}  // namespace figshift::cli
