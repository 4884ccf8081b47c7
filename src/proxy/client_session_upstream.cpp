// The upstream half of a ClientSession: pooled connection or DNS + connect +
// TLS handshake, then one request/response exchange, with one retry when a
// pooled connection turns out to have been closed by the upstream.
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>

#include "figshift/telemetry/stats.hpp"
#include "proxy/client_session.hpp"
#include "proxy/send_now.hpp"
#include "proxy/worker.hpp"

namespace figshift::proxy {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

UpstreamErrorKind error_kind(UpstreamError error) {
  switch (error) {
    case UpstreamError::dns_failed:
    case UpstreamError::connect_failed:
      return UpstreamErrorKind::connect;
    case UpstreamError::connect_timeout:
    case UpstreamError::response_timeout:
      return UpstreamErrorKind::timeout;
    case UpstreamError::tls_failed:
      return UpstreamErrorKind::tls;
    case UpstreamError::reset:
      return UpstreamErrorKind::reset;
    case UpstreamError::bad_response:
    case UpstreamError::response_too_large:
      return UpstreamErrorKind::bad_response;
  }
  return UpstreamErrorKind::reset;
}

// Beast stores a field's length in 16 bits and throws beyond it: a head limit
// below that keeps every single field under it.
constexpr std::uint32_t min_upstream_header_bytes = 60 * 1024;
// Interim 1xx responses skipped before the real one; an upstream that sends
// more is broken (each is parsed into the exchange's arena, kept until the end).
constexpr unsigned max_interim_responses = 16;

}  // namespace

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
  arm(worker_.config().timeouts.upstream_connect);  // DNS, connect and TLS handshake

  error_code ec;
  auto address = asio::ip::make_address(upstream.host, ec);
  if (!ec) {  // an IP literal needs no DNS
    const std::array<asio::ip::tcp::endpoint, 1> endpoint{{{address, upstream.port}}};
    return asio::async_connect(
        upstream_->tcp(), endpoint,
        beast::bind_front_handler(&ClientSession::on_connect, shared_from_this()));
  }
  if (!resolution_) resolution_ = std::make_unique<Resolution>(stream_.get_executor());
  const std::uint64_t lookup = ++resolution_->generation;
  resolution_->deadline.expires_after(worker_.config().timeouts.upstream_connect);
  // Cancelling cannot interrupt a getaddrinfo already running on Asio's
  // resolver thread, so the deadline answers the client itself and the late
  // result is ignored (by generation). The timer must not keep the session alive.
  resolution_->deadline.async_wait([weak = weak_from_this(), lookup](error_code timer_ec) {
    auto self = weak.lock();
    if (!self || timer_ec || self->resolution_->generation != lookup) return;
    ++self->resolution_->generation;
    self->upstream_failed(UpstreamError::connect_timeout, asio::error::timed_out);
  });
  resolution_->resolver.async_resolve(
      upstream.host, std::to_string(upstream.port),
      beast::bind_front_handler(&ClientSession::on_resolve, shared_from_this(), lookup));
}

void ClientSession::on_resolve(std::uint64_t lookup, error_code ec,
                               TcpResolver::results_type results) {
  if (lookup != resolution_->generation) return;  // answered already by the deadline
  ++resolution_->generation;
  resolution_->deadline.cancel();
  if (ec) return upstream_failed(UpstreamError::dns_failed, ec);
  asio::async_connect(upstream_->tcp(), results,
                      beast::bind_front_handler(&ClientSession::on_connect, shared_from_this()));
}

void ClientSession::on_connect(error_code ec, const asio::ip::tcp::endpoint&) {
  ec = timed(ec);
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::connect_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::connect_failed, ec);
  upstream_->tcp().set_option(asio::ip::tcp::no_delay(true), ec);
  upstream_->tcp().non_blocking(true, ec);  // for send_now
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
  ec = timed(ec);
  if (ec == beast::error::timeout) return upstream_failed(UpstreamError::connect_timeout, ec);
  if (ec) return upstream_failed(UpstreamError::tls_failed, ec);
  do_upstream_write();
}

void ClientSession::do_upstream_write() {
  arm(worker_.config().timeouts.upstream_response);  // the write and the whole response
  exchange().upstream_parser.reset();
  HeadAndBody wire(exchange().upstream_head, request_parser().get().body());
  if (error_code ec; !upstream_->is_tls() && send_now(upstream_->tcp(), wire, ec))
    return on_upstream_write(ec, 0);
  upstream_->visit([&](auto& stream) {
    asio::async_write(
        stream, wire,
        beast::bind_front_handler(&ClientSession::on_upstream_write, shared_from_this()));
  });
}

void ClientSession::on_upstream_write(error_code ec, std::size_t) {
  if (ec) {
    ec = timed(ec);
    if (retry_on_fresh_connection(ec)) return;
    if (ec == beast::error::timeout) return upstream_failed(UpstreamError::response_timeout, ec);
    return upstream_failed(UpstreamError::reset, ec);
  }
  // Not read at once: Asio 1.81 tries every read before waiting for epoll,
  // and right after the request went out that recv finds nothing (EAGAIN, a
  // wasted system call). Posted, it runs after whatever else is ready on this
  // worker, by which time the response has often arrived (scripts/bench.sh
  // load: failed recvs per request 2.0 -> 1.3).
  asio::post(stream_.get_executor(),
             beast::bind_front_handler(&ClientSession::do_upstream_read, shared_from_this()));
}

void ClientSession::do_upstream_read() {
  const auto& limits = worker_.config().limits;
  auto& parser = exchange().start_upstream_response();
  parser.header_limit(std::max(limits.header_bytes, min_upstream_header_bytes));
  parser.body_limit(limits.response_body_bytes);
  // A response to HEAD announces a body it does not carry.
  if (head_request_) parser.skip(true);
  upstream_->visit([&](auto& stream) {
    http::async_read(
        stream, upstream_->buffer, parser,
        beast::bind_front_handler(&ClientSession::on_upstream_read, shared_from_this()));
  });
}

void ClientSession::on_upstream_read(error_code ec, std::size_t) {
  if (ec) {  // the success path compares nothing: error_code comparisons are not free
    ec = timed(ec);
    if (retry_on_fresh_connection(ec)) return;
    if (ec == beast::error::timeout) return upstream_failed(UpstreamError::response_timeout, ec);
    if (ec == http::error::body_limit)
      return upstream_failed(UpstreamError::response_too_large, ec);
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset)
      return upstream_failed(UpstreamError::reset, ec);
    if (is_http_error(ec)) return upstream_failed(UpstreamError::bad_response, ec);
    return upstream_failed(UpstreamError::reset, ec);
  }

  auto& x = exchange();
  auto& parser = *x.upstream_parser;
  const auto status = parser.get().result_int();
  // An interim 1xx (103 Early Hints, an unsolicited 100) precedes the real
  // response on the same connection: skip it and read on. 101 would switch
  // protocols, which we never asked for (Upgrade is hop-by-hop).
  if (status == 101) return upstream_failed(UpstreamError::bad_response, ec);
  if (status / 100 == 1) {
    if (++x.interim_responses > max_interim_responses)
      return upstream_failed(UpstreamError::bad_response, ec);
    return do_upstream_read();
  }

  // Reusable only when the response ended by its framing and nothing extra followed it.
  const bool reusable = parser.keep_alive() && upstream_->buffer.size() == 0;
  x.response = &parser.get();
  if (reusable) worker_.pool().release(std::move(upstream_));
  upstream_.reset();
  upstream_stats_->latency.observe(seconds_since(upstream_started_));
  const bool keep_alive = keep_alive_ && !worker_.draining();
  write_client_head(*x.response, head_request_, client_version_, keep_alive,
                    worker_.config().debug_header, decision_.upstream->name, x.response_head);
  do_write_prepared(keep_alive);
}

bool ClientSession::retry_on_fresh_connection(error_code ec) {
  // A pooled connection the upstream closed while idle fails before any byte of
  // a response: most likely the request was not processed.
  if (!upstream_reused_ || retried_) return false;
  // Even then, only a method that is safe to repeat (RFC 9110 §9.2.2): the
  // upstream may have acted on a POST before the connection broke.
  switch (request_parser().get().method()) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      break;
    default:
      return false;
  }
  if (exchange().upstream_parser && exchange().upstream_parser->got_some()) return false;
  if (ec == beast::error::timeout) return false;
  retried_ = true;
  ++worker_.stats().upstream_retries;
  spdlog::debug("conn {}: pooled connection to {} was stale ({}), retrying on a new one", id_,
                decision_.upstream->origin, ec.message());
  do_resolve();
  return true;
}

void ClientSession::upstream_failed(UpstreamError error, error_code ec) {
  spdlog::log(worker_.should_log_upstream_failure() ? spdlog::level::warn : spdlog::level::debug,
              "conn {}: upstream {} ({}): {}: {}", id_, decision_.upstream->name,
              decision_.upstream->origin, describe(error), ec.message());
  upstream_.reset();
  if (resolution_) resolution_->resolver.cancel();
  auto& stats = *upstream_stats_;
  ++stats.errors[static_cast<std::size_t>(error_kind(error))];
  stats.latency.observe(seconds_since(upstream_started_));
  auto response = json_error(status_for(error), describe(error), client_version_,
                             keep_alive_ && !worker_.draining());
  if (!worker_.config().debug_header.empty())
    response.set(worker_.config().debug_header, decision_.upstream->name);
  if (head_request_) response.body().clear();  // keeps Content-Length, as HEAD must
  do_write(std::move(response));
}

}  // namespace figshift::proxy
