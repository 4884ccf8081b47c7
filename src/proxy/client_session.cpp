#include "proxy/client_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>

#include "proxy/worker.hpp"

namespace figshift::proxy {
namespace {

bool is_http_error(const boost::system::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Origin form, or absolute form for a proxy-aware client; never "*" or authority form.
bool routable_target(std::string_view target) {
  if (target.starts_with('/')) return true;
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  auto scheme = target.substr(0, scheme_end);
  return ieq(scheme, "http") || ieq(scheme, "https");
}

// Requests an upstream could frame or address differently from us are refused
// (RFC 9112 §3.2 and §6.1): that difference is what request smuggling exploits.
std::string_view framing_problem(const Request& request, unsigned version) {
  const auto hosts = request.count(http::field::host);
  if (hosts > 1) return "more than one Host header";
  if (version >= 11 && hosts == 0) return "missing Host header";
  if (request.count(http::field::transfer_encoding) > 1) return "repeated Transfer-Encoding header";
  if (auto te = request.find(http::field::transfer_encoding); te != request.end()) {
    if (!ieq(te->value(), "chunked")) return "unsupported Transfer-Encoding (only chunked)";
    if (version < 11) return "Transfer-Encoding in an HTTP/1.0 request";
  }
  return {};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

UpstreamErrorKind error_kind(UpstreamError error) {
  switch (error) {
    case UpstreamError::dns_failed:
    case UpstreamError::connect_failed: return UpstreamErrorKind::connect;
    case UpstreamError::connect_timeout:
    case UpstreamError::response_timeout: return UpstreamErrorKind::timeout;
    case UpstreamError::tls_failed: return UpstreamErrorKind::tls;
    case UpstreamError::reset: return UpstreamErrorKind::reset;
    case UpstreamError::bad_response:
    case UpstreamError::response_too_large: return UpstreamErrorKind::bad_response;
  }
  return UpstreamErrorKind::reset;
}

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::uint32_t min_upstream_header_bytes = 64 * 1024;

}  // namespace

ClientSession::ClientSession(Worker& worker, asio::ip::tcp::socket socket)
    : worker_(worker),
      id_(worker.next_connection_id()),
      stream_(std::move(socket)),
      resolve_deadline_(stream_.get_executor()) {
  error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    auto address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    client_ip_ = address.to_string();
  }
}

ClientSession::~ClientSession() { worker_.remove_session(id_); }

void ClientSession::start() {
  worker_.add_session(id_, weak_from_this());
  do_read_header();
}

void ClientSession::on_drain() {
  // Between requests nobody waits for an answer: close now. Mid-request, the
  // response goes out with Connection: close (see draining() in on_upstream_read).
  if (reading_idle_) stream_.cancel();
}

void ClientSession::do_read_header() {
  if (worker_.draining()) return close();
  const auto& config = worker_.config();
  parser_.emplace();
  parser_->header_limit(config.limits.header_bytes);
  parser_->body_limit(config.limits.body_bytes);
  reading_idle_ = buffer_.size() == 0;
  stream_.expires_after(first_request_ ? config.timeouts.client_header
                                       : config.timeouts.client_idle);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&ClientSession::on_read_header,
                                                    shared_from_this()));
}

void ClientSession::on_read_header(error_code ec, std::size_t) {
  request_started_ = std::chrono::steady_clock::now();
  reading_idle_ = false;
  first_request_ = false;
  // The client closed between requests: the normal end of a keep-alive connection.
  if (ec == http::error::end_of_stream) return close();
  // Cancelled by drain; nothing was in progress.
  if (ec == asio::error::operation_aborted) return;
  // Idle or too slow to send a head (slowloris): the stream already closed the socket.
  if (ec == beast::error::timeout) return;
  if (ec == http::error::header_limit)
    return respond_error(http::status::request_header_fields_too_large,
                         "request headers too large");
  // A Content-Length above the limit is refused before any of the body is read.
  if (ec == http::error::body_limit)
    return respond_error(http::status::payload_too_large, "request body too large");
  if (is_http_error(ec)) return respond_error(http::status::bad_request, "malformed request");
  if (ec) return fail(ec, "read request head");

  auto& request = parser_->get();
  keep_alive_ = request.keep_alive();
  client_version_ = request.version();
  head_request_ = request.method() == http::verb::head;
  if (worker_.draining())
    return respond_error(http::status::service_unavailable, "draining: retry on a new connection");
  if (!routable_target(request.target()))
    return respond_error(http::status::bad_request, "unsupported request target");
  if (auto problem = framing_problem(request, client_version_); !problem.empty())
    return respond_error(http::status::bad_request, problem);

  if (parser_->is_done()) return route();
  if (ieq(request[http::field::expect], "100-continue")) return do_continue();
  do_read_body();
}

void ClientSession::do_continue() {
  stream_.expires_after(worker_.config().timeouts.client_write);
  asio::async_write(stream_, asio::buffer(continue_100.data(), continue_100.size()),
                    beast::bind_front_handler(&ClientSession::on_continue, shared_from_this()));
}

void ClientSession::on_continue(error_code ec, std::size_t) {
  if (ec) return fail(ec, "write 100 Continue");
  do_read_body();
}

void ClientSession::do_read_body() {
  stream_.expires_after(worker_.config().timeouts.client_body);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&ClientSession::on_read_body, shared_from_this()));
}

void ClientSession::on_read_body(error_code ec, std::size_t) {
  // Too slow a body: the stream already closed the socket.
  if (ec == beast::error::timeout) return;
  if (ec == http::error::body_limit)
    return respond_error(http::status::payload_too_large, "request body too large");
  if (is_http_error(ec)) return respond_error(http::status::bad_request, "malformed request body");
  if (ec) return fail(ec, "read request body");
  route();
}

void ClientSession::route() {
  snapshot_ = worker_.snapshot();
  auto& request = parser_->get();
  decision_ = decide(RequestHead{request.target(), request[http::field::authorization]},
                     *snapshot_, unix_ms_now());
  routed_ = true;
  const Upstream& upstream = *decision_.upstream;

  if (snapshot_->mode == Mode::redirect) {
    Response res{http::status::found, client_version_};
    res.set(http::field::location, std::string(upstream.tls ? "https://" : "http://") +
                                       upstream.host_header + decision_.target);
    res.set(http::field::cache_control, "no-store");
    make_client_response(res, head_request_, client_version_, keep_alive_ && !worker_.draining(),
                         worker_.config().debug_header, upstream.name);
    return do_write(std::move(res));
  }
  make_upstream_request(request, upstream_request_, upstream, std::move(decision_.target),
                        client_ip_, "http");
  upstream_head_.clear();
  serialize_head(upstream_request_, upstream_head_);
  do_upstream();
}

void ClientSession::do_upstream() {
  retried_ = false;
  upstream_started_ = std::chrono::steady_clock::now();
  upstream_ = worker_.pool().acquire(decision_.upstream->origin);
  upstream_reused_ = upstream_ != nullptr;
  if (upstream_) return do_upstream_write();
  do_resolve();
}

void ClientSession::do_resolve() {
  const Upstream& upstream = *decision_.upstream;
  upstream_ = std::make_unique<UpstreamConnection>(
      stream_.get_executor(), upstream.tls ? &worker_.tls_context() : nullptr, upstream.origin);
  ++worker_.stats().upstream_connections_opened;
  upstream_->tcp().expires_after(worker_.config().timeouts.upstream_connect);

  error_code ec;
  auto address = asio::ip::make_address(upstream.host, ec);
  if (!ec) {  // an IP literal needs no DNS
    endpoints_ = {asio::ip::tcp::endpoint(address, upstream.port)};
    return upstream_->tcp().async_connect(
        endpoints_, beast::bind_front_handler(&ClientSession::on_connect, shared_from_this()));
  }
  resolver_.emplace(stream_.get_executor());
  resolve_deadline_.expires_after(worker_.config().timeouts.upstream_connect);
  // The deadline must not keep the session alive on its own.
  resolve_deadline_.async_wait([weak = weak_from_this()](error_code timer_ec) {
    if (auto self = weak.lock(); self && !timer_ec && self->resolver_) self->resolver_->cancel();
  });
  resolver_->async_resolve(
      upstream.host, std::to_string(upstream.port),
      beast::bind_front_handler(&ClientSession::on_resolve, shared_from_this()));
}

void ClientSession::on_resolve(error_code ec, asio::ip::tcp::resolver::results_type results) {
  const bool timed_out = resolve_deadline_.expiry() <= std::chrono::steady_clock::now();
  resolve_deadline_.cancel();
  if (ec == asio::error::operation_aborted && timed_out)
    return upstream_failed(UpstreamError::connect_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::dns_failed, ec);
  endpoints_.assign(results.begin(), results.end());
  upstream_->tcp().async_connect(
      endpoints_, beast::bind_front_handler(&ClientSession::on_connect, shared_from_this()));
}

void ClientSession::on_connect(error_code ec, const asio::ip::tcp::endpoint&) {
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::connect_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::connect_failed, ec);
  upstream_->tcp().socket().set_option(asio::ip::tcp::no_delay(true), ec);
  auto* tls = std::get_if<UpstreamConnection::Tls>(&upstream_->stream);
  if (!tls) return do_upstream_write();

  const Upstream& upstream = *decision_.upstream;
  error_code ip_ec;
  asio::ip::make_address(upstream.host, ip_ec);
  // SNI carries host names only (RFC 6066 §3), never IP literals.
  if (ip_ec && !SSL_set_tlsext_host_name(tls->native_handle(), upstream.host.c_str()))
    return upstream_failed(UpstreamError::tls_failed, ec);
  if (worker_.config().upstream_tls.verify) {
    tls->set_verify_mode(asio::ssl::verify_peer, ec);
    tls->set_verify_callback(asio::ssl::host_name_verification(upstream.host), ec);
  } else {
    tls->set_verify_mode(asio::ssl::verify_none, ec);
  }
  tls->async_handshake(asio::ssl::stream_base::client,
                       beast::bind_front_handler(&ClientSession::on_handshake, shared_from_this()));
}

void ClientSession::on_handshake(error_code ec) {
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::connect_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::tls_failed, ec);
  do_upstream_write();
}

void ClientSession::do_upstream_write() {
  upstream_->tcp().expires_after(worker_.config().timeouts.upstream_response);
  upstream_parser_.reset();
  const HeadAndBody wire(upstream_head_, upstream_request_.body());
  upstream_->visit([&](auto& stream) {
    asio::async_write(
        stream, wire,
        beast::bind_front_handler(&ClientSession::on_upstream_write, shared_from_this()));
  });
}

void ClientSession::on_upstream_write(error_code ec, std::size_t) {
  if (ec && retry_on_fresh_connection(ec)) return;
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::response_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::reset, ec);
  do_upstream_read();
}

void ClientSession::do_upstream_read() {
  const auto& limits = worker_.config().limits;
  upstream_parser_.emplace();
  upstream_parser_->header_limit(std::max(limits.header_bytes, min_upstream_header_bytes));
  upstream_parser_->body_limit(limits.response_body_bytes);
  // A response to HEAD announces a body it does not carry.
  if (head_request_) upstream_parser_->skip(true);
  upstream_->visit([&](auto& stream) {
    http::async_read(
        stream, upstream_->buffer, *upstream_parser_,
        beast::bind_front_handler(&ClientSession::on_upstream_read, shared_from_this()));
  });
}

void ClientSession::on_upstream_read(error_code ec, std::size_t) {
  if (ec && retry_on_fresh_connection(ec)) return;
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::response_timeout, ec);
  if (ec == http::error::body_limit) return upstream_failed(UpstreamError::response_too_large, ec);
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::eof || ec == asio::error::connection_reset)
    return upstream_failed(UpstreamError::reset, ec);
  if (is_http_error(ec)) return upstream_failed(UpstreamError::bad_response, ec);
  if (ec) return upstream_failed(UpstreamError::reset, ec);

  // Reusable only when the response ended by its framing and nothing extra followed it.
  const bool reusable = upstream_parser_->keep_alive() && upstream_->buffer.size() == 0;
  Response response = upstream_parser_->release();
  upstream_parser_.reset();
  if (reusable) {
    upstream_->tcp().expires_never();
    worker_.pool().release(std::move(upstream_));
  }
  upstream_.reset();
  upstream_stats().latency.observe(seconds_since(upstream_started_));
  make_client_response(response, head_request_, client_version_,
                       keep_alive_ && !worker_.draining(), worker_.config().debug_header,
                       decision_.upstream->name);
  do_write(std::move(response));
}

bool ClientSession::retry_on_fresh_connection(error_code ec) {
  // A pooled connection the upstream closed while idle fails before any byte of
  // a response: the request was not processed, so one retry on a new connection is safe.
  if (!upstream_reused_ || retried_) return false;
  if (upstream_parser_ && upstream_parser_->got_some()) return false;
  if (ec == beast::error::timeout) return false;
  retried_ = true;
  ++worker_.stats().upstream_retries;
  spdlog::debug("conn {}: pooled connection to {} was stale ({}), retrying on a new one", id_,
                decision_.upstream->origin, ec.message());
  do_resolve();
  return true;
}

void ClientSession::upstream_failed(UpstreamError error, error_code ec) {
  spdlog::warn("conn {}: upstream {} ({}): {}: {}", id_, decision_.upstream->name,
               decision_.upstream->origin, describe(error), ec.message());
  upstream_.reset();
  resolver_.reset();
  auto& stats = upstream_stats();
  ++stats.errors[static_cast<std::size_t>(error_kind(error))];
  stats.latency.observe(seconds_since(upstream_started_));
  auto response = json_error(status_for(error), describe(error), client_version_,
                             keep_alive_ && !worker_.draining());
  if (!worker_.config().debug_header.empty())
    response.set(worker_.config().debug_header, decision_.upstream->name);
  do_write(std::move(response));
}

void ClientSession::respond_error(http::status status, std::string_view message) {
  ++worker_.stats().rejected_requests;
  // After a malformed or refused request the rest of the stream cannot be trusted.
  do_write(json_error(status, message, client_version_ ? client_version_ : 11, false));
}

void ClientSession::write_access_log(AccessLogBuffer& log) {
  AccessRecord record;
  record.connection = id_;
  record.client = client_ip_;
  std::optional<std::string> username;
  if (parser_ && parser_->is_header_done()) {
    const auto& request = parser_->get();
    record.method = request.method_string();
    record.target = request.target();
    if (routed_ && worker_.config().access_log.include_username)
      username = basic_auth_username(request[http::field::authorization]);
  }
  record.status = response_.result_int();
  if (routed_) {
    record.upstream = decision_.upstream->name;
    record.group = decision_.group == Group::migrated ? "new" : "legacy";
    record.bucket = decision_.bucket;
  }
  if (username) record.username = *username;
  record.latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - request_started_)
          .count();
  record.bytes = response_.body().size();
  log.write(record);
}

UpstreamStats& ClientSession::upstream_stats() {
  return worker_.stats().upstreams[decision_.upstream->name];
}

void ClientSession::do_write(Response response) {
  response_ = std::move(response);
  if (routed_) {
    auto& stats = upstream_stats();
    const auto status_class = std::clamp(response_.result_int() / 100, 1u, 5u);
    ++stats.responses[decision_.group == Group::migrated ? 1 : 0][status_class - 1];
  }
  if (auto* log = worker_.access_log()) write_access_log(*log);
  routed_ = false;
  close_after_write_ = !response_.keep_alive();
  stream_.expires_after(worker_.config().timeouts.client_write);
  response_head_.clear();
  serialize_head(response_, response_head_);
  const HeadAndBody wire(response_head_, response_.body());
  asio::async_write(stream_, wire,
                    beast::bind_front_handler(&ClientSession::on_write, shared_from_this()));
}

void ClientSession::on_write(error_code ec, std::size_t) {
  if (ec) return fail(ec, "write response");
  snapshot_.reset();
  upstream_request_ = {};
  response_ = {};
  if (close_after_write_) return do_linger();
  do_read_header();
}

void ClientSession::do_linger() {
  // Half-close and drain what the client still sends, so that our response is
  // not destroyed by a reset when we close with unread data (lingering close).
  error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) return close();
  stream_.expires_after(worker_.config().timeouts.client_header);
  do_linger_read();
}

void ClientSession::on_linger(error_code ec, std::size_t) {
  if (ec) return close();  // EOF, timeout or reset: the client is done either way
  do_linger_read();
}

void ClientSession::do_linger_read() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&ClientSession::on_linger, shared_from_this()));
}

void ClientSession::fail(error_code ec, const char* what) {
  ++worker_.stats().failures;
  spdlog::debug("conn {}: {}: {}", id_, what, ec.message());
  close();
}

void ClientSession::close() {
  error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_.close();
}

}  // namespace figshift::proxy
