// The admin listener: plain HTTP/1.1, one thread, low volume. The logic lives
// in admin_api.cpp and request_guard.cpp; this file only moves bytes, keeps the
// deadlines and caps the open connections at admin.max_connections.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <unordered_map>

#include "admin/admin_api.hpp"
#include "admin/request_guard.hpp"
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
constexpr std::chrono::seconds cap_warning_interval{1};
// After refusing a request whose body was not read, the rest of it is read and
// dropped for a moment before the close: closing with unread bytes sends a
// reset, which can destroy the answer before the client has read it.
constexpr std::chrono::milliseconds linger_time{1000};
constexpr std::size_t linger_max_bytes = 256 * 1024;
constexpr std::size_t linger_chunk_bytes = 16 * 1024;
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

admin::ApiResponse plain_error(unsigned status, const char* message) {
  return admin::ApiResponse{status, std::string("{\"error\":\"") + message + "\"}\n", {}};
}

}  // namespace

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  class Session;

  Impl(asio::io_context& io, const Config& c, AdminContext ctx)
      : ioc(io), config(c), context(std::move(ctx)), acceptor(io), accept_backoff(io) {}

  void do_accept();
  void on_accept(error_code ec, asio::ip::tcp::socket socket);
  void refuse_connection(asio::ip::tcp::socket& socket);

  asio::io_context& ioc;
  const Config& config;
  AdminContext context;
  admin::HostPolicy host_policy;  // set by start(), once the listener is bound
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer accept_backoff;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions;
  std::uint64_t next_id = 1;
  std::chrono::steady_clock::time_point last_cap_warning{};
  std::uint64_t refused_connections = 0;  // since the last warning
};

// One connection: head first (client_header deadline), then the checks of
// request_guard.hpp, and only for an admitted request the body (client_body).
class AdminServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Impl> server, asio::ip::tcp::socket socket, std::uint64_t id)
      : server_(std::move(server)), stream_(std::move(socket)), id_(id) {}
  ~Session() { server_->sessions.erase(id_); }

  void start() { read_head(); }
  void close() {
    error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read_head() {
    parser_.emplace();
    parser_->header_limit(max_admin_header_bytes);
    parser_->body_limit(max_admin_body_bytes);
    // Also between kept-alive requests: an idle admin connection is worth less
    // than the slot it holds under admin.max_connections.
    stream_.expires_after(server_->config.timeouts.client_header);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_head, shared_from_this()));
  }

  void on_head(error_code ec, std::size_t) {
    if (ec) return on_read_error(ec, "head");
    const auto& req = parser_->get();
    head_request_ = req.method() == http::verb::head;
    admin::RequestHead head = head_of(req);
    head.has_body = !parser_->is_done();  // a Content-Length above 0, or chunked
    if (auto refusal = admin::check_head(head, server_->host_policy, server_->context.token)) {
      spdlog::info("admin conn {}: refused {} {}: {} ({})", id_, admin::printable(head.method),
                   admin::printable(admin::path_of(head.target)), refusal->status, refusal->reason);
      // Answered from the head alone: a refused client gets no body buffer and
      // no body deadline, and the connection ends with this answer.
      body_unread_ = head.has_body;
      return write(admin::refusal_response(*refusal), false);
    }
    if (parser_->is_done()) return dispatch();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      stream_.expires_after(server_->config.timeouts.client_write);
      return asio::async_write(stream_,
                               asio::buffer(continue_response.data(), continue_response.size()),
                               [self = shared_from_this()](error_code write_ec, std::size_t) {
                                 if (write_ec) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(server_->config.timeouts.client_body);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, std::size_t) {
    if (ec) return on_read_error(ec, "body");
    dispatch();
  }

  void on_read_error(error_code ec, const char* what) {
    // Closed between requests, closed by stop(), or too slow: nothing to answer.
    if (ec == beast::error::timeout)
      spdlog::debug("admin conn {}: request {} not complete in time: closed", id_, what);
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout)
      return close();
    if (ec == http::error::body_limit) {
      body_unread_ = true;
      return write(plain_error(413, "body too large"), false);
    }
    if (ec == http::error::header_limit)
      return write(plain_error(431, "request head too large"), false);
    spdlog::debug("admin conn {}: read {}: {}", id_, what, ec.message());
    write(plain_error(400, "malformed request"), false);
  }

  static admin::RequestHead head_of(const http::request<http::string_body>& req) {
    admin::RequestHead head;
    head.method = req.method_string();
    head.target = req.target();
    head.version = req.version();
    for (const auto& field : req) {  // one pass, counting repeats
      const auto name = field.name();
      if (name == http::field::host) {
        ++head.host_count;
        head.host = field.value();
      } else if (name == http::field::origin) {
        ++head.origin_count;
        head.origin = field.value();
      } else if (name == http::field::content_type) {
        ++head.content_type_count;
        head.content_type = field.value();
      } else if (name == http::field::authorization) {
        head.authorization = field.value();
      }
    }
    return head;
  }

  void dispatch() {
    auto& req = parser_->get();
    admin::ApiRequest request{std::string(req.method_string()), std::string(req.target()),
                              std::string(req[http::field::authorization]),
                              std::string(req[http::field::if_match]), std::move(req.body())};
    admin::ApiResponse response;
    try {
      response = admin::handle(request, server_->context);
    } catch (const std::exception& e) {  // never let one request take the control thread down
      spdlog::error("admin conn {}: {} {}: {}", id_, request.method, request.target, e.what());
      response = plain_error(500, "internal error");
    }
    if (request.method != "GET" && response.status < 300)
      spdlog::info("admin: {} {} -> {}", request.method, request.target, response.status);
    write(std::move(response), req.keep_alive());
  }

  void write(admin::ApiResponse api, bool keep_alive) {
    if (head_request_) api.body.clear();
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
    if (ec) return close();
    if (body_unread_) return linger();
    if (!response_.keep_alive()) return close();
    read_head();
  }

  void linger() {
    error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (ec) return close();
    buffer_.clear();
    stream_.expires_after(linger_time);
    read_and_drop();
  }

  void read_and_drop() {
    stream_.async_read_some(buffer_.prepare(linger_chunk_bytes),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->lingered_bytes_ += n;
                              if (ec || self->lingered_bytes_ >= linger_max_bytes)
                                return self->close();
                              self->read_and_drop();
                            });
  }

  std::shared_ptr<Impl> server_;
  beast::tcp_stream stream_;
  std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool head_request_ = false;
  bool body_unread_ = false;  // answered before the whole request was read
  std::size_t lingered_bytes_ = 0;
};

void AdminServer::Impl::do_accept() {
  acceptor.async_accept(ioc, beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void AdminServer::Impl::on_accept(error_code ec, asio::ip::tcp::socket socket) {
  if (!acceptor.is_open()) return;  // stopped
  if (ec) {
    // Out of descriptors, most likely: pause instead of spinning the control thread.
    spdlog::warn("admin: accept failed: {} (pausing {} ms)", ec.message(),
                 accept_error_pause.count());
    accept_backoff.expires_after(accept_error_pause);
    accept_backoff.async_wait([self = shared_from_this()](error_code timer_ec) {
      if (!timer_ec && self->acceptor.is_open()) self->do_accept();
    });
    return;
  }
  if (sessions.size() >= config.admin.max_connections) {
    refuse_connection(socket);
  } else {
    auto session = std::make_shared<Session>(shared_from_this(), std::move(socket), next_id);
    sessions.emplace(next_id++, session);
    session->start();
  }
  do_accept();
}

void AdminServer::Impl::refuse_connection(asio::ip::tcp::socket& socket) {
  // Closed at once, before a byte is read: a flood of connections costs the
  // admin thread an accept and a close each, and the operator one log line a second.
  error_code ec;
  socket.close(ec);
  ++refused_connections;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_cap_warning < cap_warning_interval) return;
  spdlog::warn("admin: {} open connections (admin.max_connections); closed {} new one(s)",
               sessions.size(), refused_connections);
  last_cap_warning = now;
  refused_connections = 0;
}

AdminServer::AdminServer(asio::io_context& ioc, const Config& config, AdminContext context)
    : impl_(std::make_shared<Impl>(ioc, config, std::move(context))) {}

AdminServer::~AdminServer() = default;

void AdminServer::start() {
  const auto& listen = impl_->config.admin.listen;
  error_code ec;
  const auto address = asio::ip::make_address(listen.address, ec);
  if (ec)
    throw std::runtime_error("admin.address: \"" + listen.address + "\" is not an IP address");
  const asio::ip::tcp::endpoint endpoint(address, listen.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen for the admin API on " + listen.address + ":" +
                             std::to_string(listen.port) + ": " + ec.message());
  impl_->host_policy = {acceptor.local_endpoint(ec).address(), impl_->config.admin.allowed_hosts};
  spdlog::info(
      "admin API listening on {}{}", bound_address(),
      impl_->context.token.empty() ? " (no token: loopback only)" : " (bearer token required)");
  if (impl_->context.token.empty())
    spdlog::warn(
        "admin API has no token: any local process or user can change the routing through it "
        "(browsers cannot: Host, Origin and Content-Type are checked); set admin.token_file or "
        "admin.token_env to require one");
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
