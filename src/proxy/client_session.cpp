#include "proxy/client_session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <utility>

#include "proxy/request_checks.hpp"
#include "proxy/worker.hpp"

namespace figshift::proxy {
namespace {

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
    : worker_(worker),
      id_(worker.next_connection_id()),
      client_(std::move(socket), tls, worker.config().trusted_proxies) {
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
  if (client_.is_tls()) return do_tls_handshake();
  next_request();
}

void ClientSession::on_tick(std::chrono::steady_clock::time_point now) {
  // A hot connection gone quiet: cancel its buffered read (nothing of a request
  // has arrived) and wait without a buffer, as any idle connection does.
  if (reading_idle_ && hot_ && !parking_ && exchange_ && !client_.stream().has_buffered_input() &&
      now - idle_since_ >= park_idle_after && exchange_->read_buffer.size() == 0 &&
      !(exchange_->request_parser && exchange_->request_parser->got_some())) {
    parking_ = true;
    client_.cancel();
  }
  if (routing_) routing_->upstream.on_tick(now);
  if (request_pump_) request_pump_->on_tick(now);
  if (response_pump_) response_pump_->on_tick(now);
  if (tunnel_ && now - std::max(request_pump_->last_progress(), response_pump_->last_progress()) >=
                     worker_.config().timeouts.tunnel_idle) {
    // Quiet both ways for tunnel_idle_ms: both pumps end, and with them the tunnel.
    client_.cancel();
    error_code ignored;
    if (routing_ && routing_->upstream.connected())
      routing_->upstream.connection().tcp().cancel(ignored);
  }
  client_.on_tick(now);
}

void ClientSession::do_tls_handshake() {
  // The handshake counts against the header deadline: a client that opens a
  // TLS connection and stalls is a slowloris like any other.
  reading_idle_ = true;
  client_.arm(worker_.config().timeouts.client_header);
  client_.stream().tls().async_handshake(
      TlsStream::Role::server,
      beast::bind_front_handler(&ClientSession::on_tls_handshake, shared_from_this()));
}

void ClientSession::on_tls_handshake(error_code ec) {
  ec = client_.timed(ec);
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
      client_.arm(worker_.config().timeouts.client_write);
      return asio::async_write(
          client_.tcp(), HeadAndBody(x.response_head, response.body()),
          [self = shared_from_this()](error_code, std::size_t) { self->close(); });
    }
    // TLS 1.0/1.1, no shared cipher, garbage or a timeout: nothing to answer.
    return fail(ec, "TLS handshake");
  }
  next_request();
}

void ClientSession::on_drain() {
  // Between requests nobody waits for an answer: close now. Mid-request, the
  // response goes out with Connection: close (see draining() where heads are written).
  if (reading_idle_) client_.cancel();
}

void ClientSession::next_request() {
  if (worker_.draining()) return close();
  const auto& timeouts = worker_.config().timeouts;
  reading_idle_ = !exchange_;  // kept only while unread bytes wait in it (see on_write)
  idle_since_ = client_.arm(first_request_ ? timeouts.client_header : timeouts.client_idle);
  // Between requests a connection waits for readability holding no buffer at
  // all (as nginx does): idle keep-alive clients cost little memory. Not while
  // bytes wait inside the TLS layer (a wait would not see them). But Asio
  // re-registers the socket with epoll for every such wait (one more system
  // call per request), so a client that came back quickly last time gets a
  // buffered read until it has been quiet for park_idle_after (see on_tick).
  if (reading_idle_ && !first_request_ && !client_.stream().has_buffered_input() && !hot_)
    return do_wait_request();
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
  client_.stream().release_idle_buffers();  // TLS: nothing is buffered (checked by the callers)
  // Idle: no request is routed, its upstream connection is pooled or closed,
  // and none of the upstream request's handlers is pending (see idle()).
  if (routing_ && routing_->upstream.idle()) routing_.reset();
  // A block of its own size: Asio's default recycles whatever block the thread
  // freed last (often ~500 bytes from a write), and an idle wait keeps it.
  client_.tcp().async_wait(
      asio::socket_base::wait_read,
      asio::bind_allocator(
          ExactSizeAllocator<void>(),
          beast::bind_front_handler(&ClientSession::on_wait_request, shared_from_this())));
}

void ClientSession::on_wait_request(error_code ec) {
  if (ec) {
    ec = client_.timed(ec);
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
      client_.stream(), exchange().read_buffer, parser,
      beast::bind_front_handler(&ClientSession::on_read_header, shared_from_this()));
}

void ClientSession::on_read_header(error_code ec, std::size_t) {
  request_started_ = std::chrono::steady_clock::now();
  if (!first_request_) hot_ = request_started_ - idle_since_ < park_idle_after;
  const bool parked = std::exchange(parking_, false);
  reading_idle_ = false;
  first_request_ = false;
  if (ec) return on_read_header_error(client_.timed(ec), parked);

  auto& parser = request_parser();
  const auto& request = parser.get();
  keep_alive_ = parser.keep_alive();  // from the flags the parser keeps: no lookup
  client_version_ = request.version();
  head_request_ = request.method() == http::verb::head;
  if (worker_.draining())
    return respond_error(http::status::service_unavailable, "draining: retry on a new connection");
  if (auto problem = request_problem(request.base()); !problem.empty())
    return respond_error(http::status::bad_request, problem);

  if (parser.is_done()) {
    request_body_ = BodyMode::none;
    upgrade_ = is_websocket_upgrade(request.base());
    return route();
  }
  upgrade_ = false;  // a handshake has no body
  const auto& limits = worker_.config().limits;
  const auto length = parser.content_length();
  if (!length || *length > limits.buffer_request_bytes) {
    // Chunked, or longer than is worth holding: sent on as it arrives, once
    // the upstream is connected (and a 100 Continue sent, if asked for).
    request_body_ = BodyMode::streamed;
    ++worker_.stats().streamed_request_bodies;
    return route();
  }
  request_body_ = BodyMode::buffered;
  // Reserved before a byte of the body is read (and before a 100 Continue).
  if (!worker_.body_budget().try_take(*length, exchange().body_lease))
    return respond_error(
        http::status::service_unavailable,
        "too many request bodies in memory (limits.buffered_body_bytes); retry later");
  if (beast::iequals(field_value(request, http::field::expect), "100-continue"))
    return do_continue();
  do_read_body();
}

// Kept apart so that the success path compares no error_code (they are not free).
void ClientSession::on_read_header_error(error_code ec, bool parked) {
  // The client closed between requests: the normal end of a keep-alive
  // connection. Over TLS its close_notify gets ours before the close (RFC 8446 §6.1).
  if (ec == http::error::end_of_stream) {
    if (!client_.is_tls()) return close();
    return client_.linger(worker_.config().timeouts.client_write,
                          worker_.config().timeouts.client_header, shared_from_this());
  }
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
  client_.arm(worker_.config().timeouts.client_write);
  asio::async_write(client_.stream(), asio::buffer(continue_100.data(), continue_100.size()),
                    beast::bind_front_handler(&ClientSession::on_continue, shared_from_this()));
}

void ClientSession::on_continue(error_code ec, std::size_t) {
  ec = client_.timed(ec);
  if (ec) return fail(ec, "write 100 Continue");
  if (request_body_ == BodyMode::streamed) return start_request_pump();
  do_read_body();
}

void ClientSession::do_read_body() {
  client_.arm(worker_.config().timeouts.client_body);
  http::async_read(client_.stream(), exchange().read_buffer, request_parser(),
                   beast::bind_front_handler(&ClientSession::on_read_body, shared_from_this()));
}

void ClientSession::on_read_body(error_code ec, std::size_t) {
  ec = client_.timed(ec);
  // Too slow a body.
  if (ec == beast::error::timeout) return close();
  if (ec == http::error::body_limit)
    return respond_error(http::status::payload_too_large, "request body too large");
  if (is_http_error(ec)) return respond_error(http::status::bad_request, "malformed request body");
  if (ec) return fail(ec, "read request body");
  route();
}

void ClientSession::route() {
  if (!routing_)  // (the cast here: the Listener base is private)
    routing_ =
        std::make_unique<Routing>(worker_, static_cast<UpstreamRequest::Listener&>(*this), id_);
  routing_->snapshot = worker_.snapshot();
  auto& x = exchange();
  const auto& request = x.request_head();
  const std::int64_t now_ms = unix_ms_now();
  const auto user_field = worker_.user_keys().user_field(request, *routing_->snapshot, now_ms);
  routing_->decision = decide(
      RequestHead{request.target(), field_value(request, http::field::authorization), user_field},
      *routing_->snapshot, now_ms);
  // The user as routed, for an access log that asks for it (copied only then:
  // the value points into the request or the reader, not the log's lifetime).
  routing_->logged_user.clear();
  if (user_field && worker_.config().access_log.include_username)
    routing_->logged_user = *user_field;
  routed_ = true;
  // std::map nodes never move: look the counters up once per request, not per use.
  routing_->upstream_stats = &worker_.stats().upstreams[routing_->decision.upstream->name];
  worker_.record_user(routing_->decision, now_ms);
  client_.disarm();  // the upstream side has its own deadlines
  const Upstream& upstream = *routing_->decision.upstream;

  if (routing_->snapshot->mode == Mode::redirect) {
    Response res{http::status::found, client_version_};
    res.set(http::field::location, std::string(upstream.tls ? "https://" : "http://") +
                                       upstream.host_header + routing_->decision.target);
    res.set(http::field::cache_control, "no-store");
    // An unread streamed body ends the connection (the lingering close drains it).
    const bool keep_alive =
        keep_alive_ && !worker_.draining() && request_body_ != BodyMode::streamed;
    write_client_head(x.respond_with(std::move(res)), head_request_, client_version_, keep_alive,
                      BodyFraming::of_length(0), worker_.config().debug_header, upstream.name,
                      x.response_head);
    return do_write_prepared(keep_alive);
  }

  BodyFraming framing;
  std::string_view body;
  const bool safe_to_repeat = [&] {  // RFC 9110 §9.2.2
    switch (request.method()) {
      case http::verb::get:
      case http::verb::head:
      case http::verb::options:
      case http::verb::trace:
      case http::verb::put:
      case http::verb::delete_:
        return true;
      default:
        return false;
    }
  }();
  if (request_body_ == BodyMode::none) {
    // A POST with Content-Length: 0 keeps it: some upstreams answer 411 without one.
    if (request_parser().content_length()) framing = BodyFraming::of_length(0);
  } else if (request_body_ == BodyMode::buffered) {
    body = request_parser().get().body();
    framing = BodyFraming::of_length(body.size());
  } else {
    const auto length = request_parser().content_length();
    framing = length ? BodyFraming::of_length(*length) : BodyFraming::chunked();
  }
  write_upstream_head(request, upstream, routing_->decision.target, client_.ip(),
                      client_.is_tls() ? "https" : "http", client_.trusted_peer(), framing,
                      upgrade_, x.upstream_head);
  UpstreamRequest::Trip trip;
  trip.upstream = &upstream;
  trip.body = body;
  // A streamed body cannot be sent twice; one held in memory can, as a bodiless request.
  trip.retryable = safe_to_repeat && request_body_ != BodyMode::streamed;
  trip.head_request = head_request_;
  trip.upgrade = upgrade_;
  routing_->upstream.start(trip, x, shared_from_this());
}

}  // namespace figshift::proxy
