#include "proxy/upstream_request.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "proxy/coarse_clock.hpp"
#include "proxy/drained_read.hpp"
#include "proxy/send_now.hpp"
#include "proxy/worker.hpp"

namespace figshift::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Beast stores a field's length in 16 bits and throws beyond it: a head limit
// below that keeps every single field under it.
constexpr std::uint32_t min_upstream_header_bytes = 60 * 1024;
// Interim 1xx responses skipped before the real one; an upstream that sends
// more is broken (each is parsed into the exchange's arena, kept until the end).
constexpr unsigned max_interim_responses = 16;

}  // namespace

struct UpstreamRequest::Resolution {
  explicit Resolution(Executor ex) : resolver(ex), deadline(ex) {}
  TcpResolver resolver;
  Timer deadline;
  std::uint64_t generation = 0;  // a lookup's answer counts only while current
  // Handlers not yet run (the lookup's and its deadline's): they use this
  // UpstreamRequest, which must outlive them (see idle()).
  unsigned handlers_pending = 0;
};

UpstreamRequest::UpstreamRequest(Worker& worker, Listener& listener, std::uint64_t connection_id)
    : worker_(worker), listener_(listener), connection_id_(connection_id) {}

UpstreamRequest::~UpstreamRequest() = default;

template <typename Handler>
auto UpstreamRequest::bind(Handler handler) {
  return [this, owner = owner_.lock(), handler](auto&&... args) {
    // Abandoned meanwhile (the session ended the exchange): nothing to report.
    if (!connection_) return;
    (this->*handler)(std::forward<decltype(args)>(args)...);
  };
}

void UpstreamRequest::arm(std::chrono::milliseconds timeout) {
  deadline_ = coarse_now() + timeout;
  timed_out_ = false;
}

UpstreamRequest::error_code UpstreamRequest::timed(error_code ec) const {
  // Past the deadline any failure is the deadline's doing: it closed the socket.
  if (timed_out_ && ec) return beast::error::timeout;
  return ec;
}

void UpstreamRequest::on_tick(std::chrono::steady_clock::time_point now) {
  if (now < deadline_ || !connection_) return;
  // Not disarmed: an operation started later without a fresh deadline is
  // ended on the next tick too, so nothing ever waits unbounded. Closed, not
  // cancelled: a cancelled connect would go on to the next resolved address.
  timed_out_ = true;
  error_code ignored;
  connection_->tcp().close(ignored);
}

void UpstreamRequest::start(const Trip& trip, Exchange& exchange, std::shared_ptr<void> owner) {
  trip_ = trip;
  exchange_ = &exchange;
  owner_ = owner;
  retried_ = false;
  request_incomplete_ = false;
  started_ = std::chrono::steady_clock::now();
  // One that cannot be retried gets no connection the upstream already closed.
  connection_ = worker_.pool().acquire(trip.upstream->origin, !trip.retryable);
  reused_ = connection_ != nullptr;
  if (connection_) return do_write();
  do_resolve();
}

void UpstreamRequest::do_resolve() {
  const Upstream& upstream = *trip_.upstream;
  const auto ex = worker_.io_context().get_executor();
  connection_ = std::make_unique<UpstreamConnection>(
      ex, upstream.tls ? &worker_.tls_context() : nullptr, upstream.origin);
  ++worker_.stats().upstream_connections_opened;
  arm(worker_.config().timeouts.upstream_connect);  // DNS, connect and TLS handshake

  error_code ec;
  auto address = asio::ip::make_address(upstream.host, ec);
  if (!ec) {  // an IP literal needs no DNS
    const std::array<asio::ip::tcp::endpoint, 1> endpoint{{{address, upstream.port}}};
    return asio::async_connect(connection_->tcp(), endpoint, bind(&UpstreamRequest::on_connect));
  }
  if (!resolution_) resolution_ = std::make_unique<Resolution>(ex);
  const std::uint64_t lookup = ++resolution_->generation;
  resolution_->deadline.expires_after(worker_.config().timeouts.upstream_connect);
  // Cancelling cannot interrupt a getaddrinfo already running on Asio's
  // resolver thread, so the deadline answers itself and the late result is
  // ignored (by generation). The timer must not keep the session alive.
  resolution_->handlers_pending += 2;
  resolution_->deadline.async_wait([this, weak = owner_, lookup](error_code timer_ec) {
    auto owner = weak.lock();
    if (!owner) return;  // the session, and this with it, is gone
    --resolution_->handlers_pending;
    if (timer_ec || resolution_->generation != lookup) return;
    ++resolution_->generation;
    failed(UpstreamError::connect_timeout, asio::error::timed_out);
  });
  resolution_->resolver.async_resolve(
      upstream.host, std::to_string(upstream.port),
      [this, owner = owner_.lock(), lookup](error_code ec, TcpResolver::results_type results) {
        --resolution_->handlers_pending;
        on_resolve(lookup, ec, std::move(results));
      });
}

void UpstreamRequest::on_resolve(std::uint64_t lookup, error_code ec,
                                 asio::ip::tcp::resolver::results_type results) {
  // Answered already by the deadline, or abandoned.
  if (lookup != resolution_->generation || !connection_) return;
  ++resolution_->generation;
  resolution_->deadline.cancel();
  if (ec) return failed(UpstreamError::dns_failed, ec);
  asio::async_connect(connection_->tcp(), results, bind(&UpstreamRequest::on_connect));
}

void UpstreamRequest::on_connect(error_code ec, const asio::ip::tcp::endpoint&) {
  ec = timed(ec);
  if (ec == beast::error::timeout) return failed(UpstreamError::connect_timeout, ec);
  if (ec) return failed(UpstreamError::connect_failed, ec);
  connection_->tcp().set_option(asio::ip::tcp::no_delay(true), ec);
  connection_->tcp().non_blocking(true, ec);  // for send_now
  enable_receive_queue_hint(connection_->tcp().native_handle());
  if (!connection_->is_tls()) return do_write();

  auto& tls = connection_->stream.tls();
  const Upstream& upstream = *trip_.upstream;
  error_code ip_ec;
  asio::ip::make_address(upstream.host, ip_ec);
  // SNI carries host names only (RFC 6066 §3), never IP literals.
  // OpenSSL's reason when it refuses a name (too long, not a host name).
  const auto refused = [] {
    return error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
  };
  if (ip_ec && !SSL_set_tlsext_host_name(tls.native_handle(), upstream.host.c_str()))
    return failed(UpstreamError::tls_failed, refused());
  if (worker_.config().upstream_tls.verify) {
    // The chain against the CA store, and the name (or address) against the
    // certificate's subjectAltName, both checked by OpenSSL in the handshake.
    SSL_set_verify(tls.native_handle(), SSL_VERIFY_PEER, nullptr);
    const int named = ip_ec ? SSL_set1_host(tls.native_handle(), upstream.host.c_str())
                            : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls.native_handle()),
                                                            upstream.host.c_str());
    if (!named) return failed(UpstreamError::tls_failed, refused());
  } else {
    SSL_set_verify(tls.native_handle(), SSL_VERIFY_NONE, nullptr);
  }
  tls.async_handshake(TlsStream::Role::client, bind(&UpstreamRequest::on_handshake));
}

void UpstreamRequest::on_handshake(error_code ec) {
  ec = timed(ec);
  if (ec == beast::error::timeout) return failed(UpstreamError::connect_timeout, ec);
  if (ec) return failed(UpstreamError::tls_failed, ec);
  do_write();
}

void UpstreamRequest::do_write() {
  arm(worker_.config().timeouts.upstream_response);  // the write and the response head
  HeadAndBody wire(exchange_->upstream_head, trip_.body);
  if (error_code ec; send_now(connection_->stream, wire, ec)) return on_write(ec, 0);
  send_rest(connection_->stream, wire, bind(&UpstreamRequest::on_write));
}

void UpstreamRequest::on_write(error_code ec, std::size_t) {
  if (ec) {
    ec = timed(ec);
    if (retry_on_fresh_connection(ec)) return;
    if (ec == beast::error::timeout) return failed(UpstreamError::response_timeout, ec);
    return failed(UpstreamError::reset, ec);
  }
  deadline_ = std::chrono::steady_clock::time_point::max();  // a streamed body's own, now
  auto owner = owner_.lock();                                // the caller's handler holds it too
  listener_.on_upstream_sent();
}

void UpstreamRequest::read_head(std::shared_ptr<void> owner) {
  owner_ = owner;
  arm(worker_.config().timeouts.upstream_response);
  // Read at once: on a pooled connection the last read emptied the queue, so
  // this one waits for epoll without trying recv first (drained_read.hpp).
  do_read_head();
}

void UpstreamRequest::read_early_answer(std::shared_ptr<void> owner) {
  request_incomplete_ = true;
  read_head(std::move(owner));
}

void UpstreamRequest::do_read_head() {
  const auto& limits = worker_.config().limits;
  auto& parser = exchange_->start_upstream_response();
  parser.header_limit(std::max(limits.header_bytes, min_upstream_header_bytes));
  // A body longer than the limit is refused from its Content-Length (0: no limit).
  if (limits.response_body_bytes > 0)
    parser.body_limit(limits.response_body_bytes);
  else
    parser.body_limit(boost::none);
  // A response to HEAD announces a body it does not carry.
  if (trip_.head_request) parser.skip(true);
  http::async_read_header(connection_->stream, connection_->buffer, parser,
                          bind(&UpstreamRequest::on_read_head));
}

void UpstreamRequest::on_read_head(error_code ec, std::size_t) {
  if (ec) {  // the success path compares nothing: error_code comparisons are not free
    ec = timed(ec);
    if (retry_on_fresh_connection(ec)) return;
    if (ec == beast::error::timeout) return failed(UpstreamError::response_timeout, ec);
    if (ec == http::error::body_limit) return failed(UpstreamError::response_too_large, ec);
    if (is_http_error(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message)
      return failed(UpstreamError::bad_response, ec);
    return failed(UpstreamError::reset, ec);
  }
  auto& parser = *exchange_->upstream_parser;
  const auto status = parser.get().result_int();
  // 101 switches protocols: an answer only to the upgrade a client asked for.
  if (status == 101 && !trip_.upgrade) return failed(UpstreamError::bad_response, ec);
  // An interim 1xx (103 Early Hints, an unsolicited 100) precedes the real
  // response on the same connection: skip it and read on.
  if (status / 100 == 1 && status != 101) {
    if (++exchange_->interim_responses > max_interim_responses)
      return failed(UpstreamError::bad_response, ec);
    return do_read_head();
  }
  deadline_ = std::chrono::steady_clock::time_point::max();
  auto owner = owner_.lock();  // the caller's handler holds it too
  listener_.on_upstream_head();
}

void UpstreamRequest::read_body(std::shared_ptr<void> owner) {
  owner_ = owner;
  auto& parser = *exchange_->upstream_parser;
  auto& buffer = connection_->buffer;
  // Most small answers arrived with their head: parse them here, without an
  // operation or a completion through the scheduler.
  while (buffer.size() > 0 && !parser.is_done()) {
    error_code ec;
    const auto n = parser.put(buffer.data(), ec);
    buffer.consume(n);
    if (ec == http::error::need_more || n == 0) break;  // the rest needs a read
    if (ec) return on_read_body(ec, 0);
  }
  if (parser.is_done()) {
    auto owner = owner_.lock();  // the caller's handler holds it too
    return listener_.on_upstream_body();
  }
  arm(worker_.config().timeouts.upstream_response);
  http::async_read(connection_->stream, buffer, parser, bind(&UpstreamRequest::on_read_body));
}

void UpstreamRequest::on_read_body(error_code ec, std::size_t) {
  if (ec) {
    ec = timed(ec);
    if (ec == beast::error::timeout) return failed(UpstreamError::response_timeout, ec);
    if (ec == http::error::body_limit) return failed(UpstreamError::response_too_large, ec);
    if (is_http_error(ec) && ec != http::error::partial_message)
      return failed(UpstreamError::bad_response, ec);
    return failed(UpstreamError::reset, ec);
  }
  deadline_ = std::chrono::steady_clock::time_point::max();
  auto owner = owner_.lock();  // the caller's handler holds it too
  listener_.on_upstream_body();
}

bool UpstreamRequest::retry_on_fresh_connection(error_code ec) {
  // A pooled connection the upstream closed while idle fails before any byte of
  // a response: most likely the request was not processed.
  if (!reused_ || retried_ || !trip_.retryable || request_incomplete_) return false;
  if (exchange_->upstream_parser && exchange_->upstream_parser->got_some()) return false;
  if (ec == beast::error::timeout) return false;
  retried_ = true;
  ++worker_.stats().upstream_retries;
  spdlog::debug("conn {}: pooled connection to {} was stale ({}), retrying on a new one",
                connection_id_, trip_.upstream->origin, ec.message());
  exchange_->upstream_parser.reset();
  do_resolve();
  return true;
}

void UpstreamRequest::failed(UpstreamError error, error_code ec) {
  spdlog::log(worker_.should_log_upstream_failure() ? spdlog::level::warn : spdlog::level::debug,
              "conn {}: upstream {} ({}): {}: {}", connection_id_, trip_.upstream->name,
              trip_.upstream->origin, describe(error), ec.message());
  abandon();
  auto owner = owner_.lock();  // the caller's handler holds it too
  listener_.on_upstream_failed(error, ec);
}

void UpstreamRequest::finish(bool reusable) {
  deadline_ = std::chrono::steady_clock::time_point::max();
  if (connection_ && reusable && !request_incomplete_)
    worker_.pool().release(std::move(connection_));
  connection_.reset();
}

bool UpstreamRequest::idle() const {
  return !connection_ && (!resolution_ || resolution_->handlers_pending == 0);
}

void UpstreamRequest::abandon() {
  deadline_ = std::chrono::steady_clock::time_point::max();
  connection_.reset();
  if (resolution_) resolution_->resolver.cancel();
}

}  // namespace figshift::proxy
