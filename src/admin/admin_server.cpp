// The admin listener: plain HTTP/1.1, one thread, low volume. The logic lives
// in admin_api.cpp; this file only moves bytes.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <unordered_map>

#include "admin/admin_api.hpp"
#include "figshift/admin.hpp"

namespace figshift {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

constexpr std::uint64_t max_admin_body_bytes = 64 * 1024;
constexpr std::uint32_t max_admin_header_bytes = 16 * 1024;
constexpr std::chrono::milliseconds accept_error_pause{50};

}  // namespace

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  class Session;

  Impl(asio::io_context& io, const Config& c, AdminContext ctx)
      : ioc(io), config(c), context(std::move(ctx)), acceptor(io), accept_backoff(io) {}

  void do_accept();
  void on_accept(error_code ec, asio::ip::tcp::socket socket);

  asio::io_context& ioc;
  const Config& config;
  AdminContext context;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer accept_backoff;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions;
  std::uint64_t next_id = 1;
};

class AdminServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Impl> server, asio::ip::tcp::socket socket, std::uint64_t id)
      : server_(std::move(server)), stream_(std::move(socket)), id_(id) {}
  ~Session() { server_->sessions.erase(id_); }

  void start() { do_read(); }
  void close() {
    error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(max_admin_header_bytes);
    parser_->body_limit(max_admin_body_bytes);
    stream_.expires_after(server_->config.timeouts.client_idle);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    // Closed between requests, closed by stop(), or idle too long: nothing to answer.
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout)
      return close();
    if (ec == http::error::body_limit) return write(admin::ApiResponse{413, "{\"error\":\"body too large\"}\n", {}}, false);
    if (ec) {
      spdlog::debug("admin conn {}: read: {}", id_, ec.message());
      return write(admin::ApiResponse{400, "{\"error\":\"malformed request\"}\n", {}}, false);
    }
    auto& req = parser_->get();
    admin::ApiRequest request{std::string(req.method_string()), std::string(req.target()),
                              std::string(req[http::field::authorization]),
                              std::string(req[http::field::if_match]), std::move(req.body())};
    admin::ApiResponse response;
    try {
      response = admin::handle(request, server_->context);
    } catch (const std::exception& e) {  // never let one request take the control thread down
      spdlog::error("admin conn {}: {} {}: {}", id_, request.method, request.target, e.what());
      response = admin::ApiResponse{500, "{\"error\":\"internal error\"}\n", {}};
    }
    if (request.method == "HEAD") response.body.clear();
    if (request.method != "GET" && response.status < 300)
      spdlog::info("admin: {} {} -> {}", request.method, request.target, response.status);
    write(std::move(response), req.keep_alive());
  }

  void write(admin::ApiResponse api, bool keep_alive) {
    response_ = {static_cast<http::status>(api.status), 11};
    response_.set(http::field::content_type, api.content_type);
    response_.set(http::field::cache_control, "no-store");
    for (auto& [name, value] : api.headers) response_.set(name, value);
    response_.body() = std::move(api.body);
    response_.prepare_payload();
    response_.keep_alive(keep_alive);
    stream_.expires_after(server_->config.timeouts.client_write);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    if (ec || !response_.keep_alive()) return close();
    do_read();
  }

  std::shared_ptr<Impl> server_;
  beast::tcp_stream stream_;
  std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

void AdminServer::Impl::do_accept() {
  acceptor.async_accept(ioc, beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void AdminServer::Impl::on_accept(error_code ec, asio::ip::tcp::socket socket) {
  if (!acceptor.is_open()) return;  // stopped
  if (ec) {
    // Out of descriptors, most likely: pause instead of spinning the control thread.
    spdlog::warn("admin: accept failed: {} (pausing {} ms)", ec.message(), accept_error_pause.count());
    accept_backoff.expires_after(accept_error_pause);
    accept_backoff.async_wait([self = shared_from_this()](error_code timer_ec) {
      if (!timer_ec && self->acceptor.is_open()) self->do_accept();
    });
    return;
  } else {
    auto session = std::make_shared<Session>(shared_from_this(), std::move(socket), next_id);
    sessions.emplace(next_id++, session);
    session->start();
  }
  do_accept();
}

AdminServer::AdminServer(asio::io_context& ioc, const Config& config, AdminContext context)
    : impl_(std::make_shared<Impl>(ioc, config, std::move(context))) {}

AdminServer::~AdminServer() = default;

void AdminServer::start() {
  const auto& listen = impl_->config.admin.listen;
  error_code ec;
  const auto address = asio::ip::make_address(listen.address, ec);
  if (ec) throw std::runtime_error("admin.address: \"" + listen.address + "\" is not an IP address");
  const asio::ip::tcp::endpoint endpoint(address, listen.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen for the admin API on " + listen.address + ":" +
                             std::to_string(listen.port) + ": " + ec.message());
  spdlog::info("admin API listening on {}{}", bound_address(),
               impl_->context.token.empty() ? " (no token: loopback only)" : " (bearer token required)");
  impl_->do_accept();
}

std::string AdminServer::bound_address() const {
  error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  if (ec) return "(closed)";
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

void AdminServer::stop() {
  error_code ec;
  impl_->acceptor.close(ec);
  impl_->accept_backoff.cancel();
  std::vector<std::shared_ptr<Impl::Session>> live;
  for (auto& [id, weak] : impl_->sessions)
    if (auto session = weak.lock()) live.push_back(std::move(session));
  for (auto& session : live) session->close();
}

}  // namespace figshift
