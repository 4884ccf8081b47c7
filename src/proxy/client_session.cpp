#include "proxy/client_session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <cctype>
#include <chrono>
#include <utility>

#include "proxy/worker.hpp"

namespace figshift::proxy {
namespace {

// Origin form, or absolute form for a proxy-aware client; never "*" or authority form.
bool routable_target(std::string_view target) {
  if (target.starts_with('/')) return true;
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  auto scheme = target.substr(0, scheme_end);
  return beast::iequals(scheme, "http") || beast::iequals(scheme, "https");
}

// uri-host [ ":" port ] (RFC 9110 §7.2): no userinfo, path, spaces or controls.
bool valid_host(std::string_view host) {
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("-._~%!$&'()*+,;=:[]").find(c) == std::string_view::npos)
      return false;
  return true;
}

// Requests an upstream could frame or address differently from us are refused
// (RFC 9112 §3.2 and §6.1): that difference is what request smuggling exploits.
std::string_view framing_problem(const Request& request, unsigned version) {
  int hosts = 0, transfer_encodings = 0, authorizations = 0;
  std::string_view host, transfer_encoding;
  for (const auto& field : request.base()) {  // one pass (see first_field)
    if (field.name() == http::field::host) ++hosts, host = field.value();
    if (field.name() == http::field::transfer_encoding)
      ++transfer_encodings, transfer_encoding = field.value();
    if (field.name() == http::field::authorization) ++authorizations;
  }
  if (hosts > 1) return "more than one Host header";
  // The first decides the user's group and an upstream may read the last:
  // two would let a client pick its group with someone else's credentials.
  if (authorizations > 1) return "more than one Authorization header";
  if (version >= 11 && hosts == 0) return "missing Host header";
  if (hosts == 1 && !valid_host(host)) return "invalid Host header";
  if (transfer_encodings > 1) return "repeated Transfer-Encoding header";
  if (transfer_encodings == 1) {
    if (!beast::iequals(transfer_encoding, "chunked"))
      return "unsupported Transfer-Encoding (only chunked)";
    if (version < 11) return "Transfer-Encoding in an HTTP/1.0 request";
  }
  return {};
}

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// std::allocator under another name: for std::allocator itself Asio falls back
// to its recycling allocator.
template <typename T>
struct ExactSizeAllocator : std::allocator<T> {
  ExactSizeAllocator() = default;
  template <typename U>
  ExactSizeAllocator(const ExactSizeAllocator<U>&) noexcept {}
};

// How long a kept-alive connection that is in use keeps a read buffer while quiet.
constexpr std::chrono::seconds park_idle_after{1};

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

ClientSession::ClientSession(Worker& worker, TcpSocket socket, asio::ssl::context* tls)
    : worker_(worker), id_(worker.next_connection_id()), stream_(std::move(socket), tls) {
  error_code ec;
  auto remote = stream_.tcp().remote_endpoint(ec);
  if (!ec) {
    auto address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    client_ip_ = address.to_string();
    const auto& trusted = worker_.config().trusted_proxies;
    if (!trusted.empty()) {
      const auto v6 = address.is_v4()
                          ? asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4())
                          : address.to_v6();
      const auto bytes = v6.to_bytes();
      trusted_peer_ = std::any_of(trusted.begin(), trusted.end(),
                                  [&](const IpNetwork& n) { return n.contains(bytes); });
    }
  }
  worker_.add_session(*this);
}

ClientSession::~ClientSession() {
  worker_.exchanges().give(std::move(exchange_));
  worker_.remove_session(*this);
}

Exchange& ClientSession::exchange() {
  if (!exchange_) exchange_ = worker_.exchanges().take();
  return *exchange_;
}

void ClientSession::start() {
  if (stream_.is_tls()) return do_tls_handshake();
  next_request();
}

std::chrono::steady_clock::time_point ClientSession::arm(std::chrono::milliseconds timeout) {
  const auto now = std::chrono::steady_clock::now();
  deadline_ = now + timeout;
  timed_out_ = false;
  return now;
}

void ClientSession::on_tick(std::chrono::steady_clock::time_point now) {
  // A hot connection gone quiet: cancel its buffered read (nothing of a request
  // has arrived) and wait without a buffer, as any idle connection does.
  if (reading_idle_ && hot_ && !parking_ && exchange_ && !stream_.is_tls() &&
      now - idle_since_ >= park_idle_after && exchange_->read_buffer.size() == 0 &&
      !(exchange_->request_parser && exchange_->request_parser->got_some())) {
    parking_ = true;
    error_code ignored;
    stream_.tcp().cancel(ignored);
  }
  if (now < deadline_) return;
  // Not disarmed: an operation started later without a fresh deadline is
  // cancelled on the next tick too, so nothing ever waits unbounded.
  timed_out_ = true;
  error_code ignored;
  stream_.tcp().cancel(ignored);
  // Closed, not cancelled (as tcp_stream did): a cancelled connect would go
  // on to the next resolved address, and a timed-out upstream is never reused.
  if (upstream_) upstream_->tcp().close(ignored);
}

ClientSession::error_code ClientSession::timed(error_code ec) const {
  // Past the deadline any failure is the deadline's doing: its cancel ends an
  // operation with operation_aborted, and an operation started after it closed
  // the upstream socket (a posted read) fails with bad_descriptor.
  if (timed_out_ && ec) return beast::error::timeout;
  return ec;
}

void ClientSession::do_tls_handshake() {
  // The handshake counts against the header deadline: a client that opens a
  // TLS connection and stalls is a slowloris like any other.
  reading_idle_ = true;
  arm(worker_.config().timeouts.client_header);
  stream_.tls().async_handshake(
      asio::ssl::stream_base::server,
      beast::bind_front_handler(&ClientSession::on_tls_handshake, shared_from_this()));
}

void ClientSession::on_tls_handshake(error_code ec) {
  ec = timed(ec);
  reading_idle_ = false;
  // Cancelled by drain before the client said anything.
  if (ec == asio::error::operation_aborted) return close();
  if (ec) {
    ++worker_.stats().tls_handshake_failures;
    // Plain HTTP on the TLS port: say so in plain HTTP, as nginx does, then close.
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(ec.value()) == SSL_R_HTTP_REQUEST) {
      auto& x = exchange();
      const auto& response = x.respond_with(json_error(
          http::status::bad_request, "plain HTTP request sent to a TLS (HTTPS) port", 11, false));
      x.response_head.clear();
      serialize_head(response, x.response_head);
      arm(worker_.config().timeouts.client_write);
      return asio::async_write(
          stream_.tcp(), HeadAndBody(x.response_head, response.body()),
          [self = shared_from_this()](error_code, std::size_t) { self->close(); });
    }
    // TLS 1.0/1.1, no shared cipher, garbage or a timeout: nothing to answer.
    return fail(ec, "TLS handshake");
  }
  next_request();
}

void ClientSession::on_drain() {
  // Between requests nobody waits for an answer: close now. Mid-request, the
  // response goes out with Connection: close (see draining() in on_upstream_read).
  error_code ignored;
  if (reading_idle_) stream_.tcp().cancel(ignored);
}

void ClientSession::next_request() {
  if (worker_.draining()) return close();
  const auto& timeouts = worker_.config().timeouts;
  reading_idle_ = !exchange_;  // kept only while unread bytes wait in it (see on_write)
  idle_since_ = arm(first_request_ ? timeouts.client_header : timeouts.client_idle);
  // Between requests a plain connection waits for readability holding no
  // buffer at all (as nginx does): idle keep-alive clients cost little memory.
  // TLS cannot: decrypted bytes may already wait inside the TLS layer. But Asio
  // re-registers the socket with epoll for every such wait (one more system
  // call per request), so a client that came back quickly last time gets a
  // buffered read until it has been quiet for park_idle_after (see on_tick).
  if (reading_idle_ && !first_request_ && !stream_.is_tls() && !hot_) return do_wait_request();
  do_read_header();
}

void ClientSession::park() {
  hot_ = false;
  if (worker_.draining()) return close();
  worker_.exchanges().give(std::move(exchange_));  // empty: checked by on_tick
  reading_idle_ = true;
  do_wait_request();  // the client_idle deadline armed in next_request() still runs
}

void ClientSession::do_wait_request() {
  // A block of its own size: Asio's default recycles whatever block the thread
  // freed last (often ~500 bytes from a write), and an idle wait keeps it.
  stream_.tcp().async_wait(
      asio::socket_base::wait_read,
      asio::bind_allocator(
          ExactSizeAllocator<void>(),
          beast::bind_front_handler(&ClientSession::on_wait_request, shared_from_this())));
}

void ClientSession::on_wait_request(error_code ec) {
  if (ec) {
    ec = timed(ec);
    // Cancelled by drain; nothing was in progress.
    if (ec == asio::error::operation_aborted) return;
    // Idle for client_idle_ms: close, as after any keep-alive timeout.
    if (ec == beast::error::timeout) return close();
    return fail(ec, "wait for request");
  }
  do_read_header();  // the deadline armed in next_request() still runs
}

void ClientSession::do_read_header() {
  const auto& config = worker_.config();
  auto& parser = exchange().start_request();
  parser.header_limit(config.limits.header_bytes);
  parser.body_limit(config.limits.body_bytes);
  http::async_read_header(
      stream_, exchange().read_buffer, parser,
      beast::bind_front_handler(&ClientSession::on_read_header, shared_from_this()));
}

void ClientSession::on_read_header(error_code ec, std::size_t) {
  request_started_ = std::chrono::steady_clock::now();
  if (!first_request_) hot_ = request_started_ - idle_since_ < park_idle_after;
  const bool parked = std::exchange(parking_, false);
  reading_idle_ = false;
  first_request_ = false;
  if (ec) return on_read_header_error(timed(ec), parked);

  auto& request = request_parser().get();
  keep_alive_ = request_parser().keep_alive();  // from the flags the parser keeps: no lookup
  client_version_ = request.version();
  head_request_ = request.method() == http::verb::head;
  if (worker_.draining())
    return respond_error(http::status::service_unavailable, "draining: retry on a new connection");
  if (!routable_target(request.target()))
    return respond_error(http::status::bad_request, "unsupported request target");
  if (auto problem = framing_problem(request, client_version_); !problem.empty())
    return respond_error(http::status::bad_request, problem);
  if (auto problem = path_problem(split_target(request.target()).path); !problem.empty())
    return respond_error(http::status::bad_request, problem);

  if (request_parser().is_done()) return route();
  // Reserved before a byte of the body is read (and before a 100 Continue):
  // the whole body, as it is buffered whole; a chunked one may reach body_bytes.
  const auto body_bytes = request_parser().content_length().value_or(worker_.config().limits.body_bytes);
  if (!worker_.body_budget().try_take(body_bytes, exchange().body_lease))
    return respond_error(http::status::service_unavailable,
                         "too many request bodies in memory (limits.buffered_body_bytes); retry later");
  if (beast::iequals(field_value(request, http::field::expect), "100-continue"))
    return do_continue();
  do_read_body();
}

// Kept apart so that the success path compares no error_code (they are not free).
void ClientSession::on_read_header_error(error_code ec, bool parked) {
  // The client closed between requests: the normal end of a keep-alive connection.
  if (ec == http::error::end_of_stream) return close();
  // The same over TLS from a client that skipped close_notify (many do).
  if (ec == asio::ssl::error::stream_truncated && !request_parser().got_some()) return close();
  // Cancelled by on_tick to park an idle connection, or by drain; nothing was in progress.
  if (ec == asio::error::operation_aborted) return parked ? park() : void();
  // Idle or too slow to send a head (slowloris).
  if (ec == beast::error::timeout) return close();
  if (ec == http::error::header_limit)
    return respond_error(http::status::request_header_fields_too_large,
                         "request headers too large");
  // A Content-Length above the limit is refused before any of the body is read.
  if (ec == http::error::body_limit)
    return respond_error(http::status::payload_too_large, "request body too large");
  if (is_http_error(ec)) return respond_error(http::status::bad_request, "malformed request");
  fail(ec, "read request head");
}

void ClientSession::do_continue() {
  arm(worker_.config().timeouts.client_write);
  asio::async_write(stream_, asio::buffer(continue_100.data(), continue_100.size()),
                    beast::bind_front_handler(&ClientSession::on_continue, shared_from_this()));
}

void ClientSession::on_continue(error_code ec, std::size_t) {
  ec = timed(ec);
  if (ec) return fail(ec, "write 100 Continue");
  do_read_body();
}

void ClientSession::do_read_body() {
  arm(worker_.config().timeouts.client_body);
  http::async_read(stream_, exchange().read_buffer, request_parser(),
                   beast::bind_front_handler(&ClientSession::on_read_body, shared_from_this()));
}

void ClientSession::on_read_body(error_code ec, std::size_t) {
  ec = timed(ec);
  // Too slow a body.
  if (ec == beast::error::timeout) return close();
  if (ec == http::error::body_limit)
    return respond_error(http::status::payload_too_large, "request body too large");
  if (is_http_error(ec)) return respond_error(http::status::bad_request, "malformed request body");
  if (ec) return fail(ec, "read request body");
  route();
}

void ClientSession::route() {
  snapshot_ = worker_.snapshot();
  auto& request = request_parser().get();
  const std::int64_t now_ms = unix_ms_now();
  decision_ = decide(RequestHead{request.target(), field_value(request, http::field::authorization),
                                 worker_.user_keys().user_field(request, *snapshot_, now_ms)},
                     *snapshot_, now_ms);
  routed_ = true;
  // std::map nodes never move: look the counters up once per request, not per use.
  upstream_stats_ = &worker_.stats().upstreams[decision_.upstream->name];
  worker_.record_user(decision_, now_ms);
  const Upstream& upstream = *decision_.upstream;

  if (snapshot_->mode == Mode::redirect) {
    Response res{http::status::found, client_version_};
    res.set(http::field::location, std::string(upstream.tls ? "https://" : "http://") +
                                       upstream.host_header + decision_.target);
    res.set(http::field::cache_control, "no-store");
    auto& x = exchange();
    const bool keep_alive = keep_alive_ && !worker_.draining();
    write_client_head(x.respond_with(std::move(res)), head_request_, client_version_, keep_alive,
                      worker_.config().debug_header, upstream.name, x.response_head);
    return do_write_prepared(keep_alive);
  }
  write_upstream_head(request, upstream, decision_.target, client_ip_,
                      stream_.is_tls() ? "https" : "http", trusted_peer_, exchange().upstream_head);
  do_upstream();
}

}  // namespace figshift::proxy
