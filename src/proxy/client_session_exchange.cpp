// The exchange with the upstream, seen from a ClientSession: what the client
// gets once UpstreamRequest has sent the request and read the response head,
// the streamed bodies (one BodyPump per direction) and WebSocket tunnels. The
// request phases are client_session.cpp, the response's end client_session_response.cpp.
#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/string.hpp>
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

}  // namespace

// The most a read buffer may hold while a chunked body is decoded from it:
// Beast's parser puts no limit on a chunk's size line, its extensions or the
// trailers, and asks for more bytes until their line ends. Bounded, a line
// longer than a head may be ends in buffer_overflow (400 or a closed
// connection), instead of memory growing for as long as the peer sends.
static std::size_t chunk_line_bound(std::uint32_t header_bytes) {
  return 2 * 64 * 1024 + header_bytes;
}

BodyPump& ClientSession::pump(std::unique_ptr<BodyPump>& slot) {
  BodyPump::Listener& listener = *this;  // a private base: converted here, where it is visible
  if (!slot)
    slot = std::make_unique<BodyPump>(listener, worker_.config().limits.stream_buffer_bytes);
  return *slot;
}

void ClientSession::on_pump_end(BodyPump& pump, BodyPump::End end, error_code ec) {
  if (tunnel_) return on_tunnel_end(pump, end);
  if (&pump == request_pump_.get()) return on_request_pump_end(end, ec);
  on_response_pump_end(end, ec);
}

// --- the request body ---------------------------------------------------------

void ClientSession::on_upstream_sent() {
  if (request_body_ != BodyMode::streamed) return routing_->upstream.read_head(shared_from_this());
  // The client waits for a 100 before it sends the body: it gets one now that
  // the upstream is there to take it.
  if (beast::iequals(field_value(exchange().request_head(), http::field::expect), "100-continue"))
    return do_continue();
  start_request_pump();
}

void ClientSession::start_request_pump() {
  client_.disarm();  // the pump keeps its own deadlines from here (also after a 100 Continue)
  auto& x = exchange();
  const auto& limits = worker_.config().limits;
  BodyPump::Spec spec;
  spec.source = &client_.stream();
  spec.source_buffer = &x.read_buffer;
  spec.sink = &routing_->upstream.connection().stream;
  if (const auto length = request_parser().content_length()) {
    spec.read = BodyPump::Spec::Read::length;
    spec.length = *length;
  } else {  // chunked in, chunked out: each piece as it comes, never a complete body past the limit
    spec.read = BodyPump::Spec::Read::chunked;
    spec.request_parser = &x.stream_request_body();
    spec.request_parser->body_limit(limits.body_bytes);
    x.read_buffer.max_size(chunk_line_bound(limits.header_bytes));
    spec.chunked_output = true;
  }
  spec.read_timeout = worker_.config().timeouts.client_body;
  spec.write_timeout = worker_.config().timeouts.upstream_response;
  spec.min_bytes_per_s = limits.body_min_bytes_per_s;
  pump(request_pump_).start(spec, shared_from_this());
}

void ClientSession::on_request_pump_end(BodyPump::End end, error_code ec) {
  using End = BodyPump::End;
  if (end == End::complete) return routing_->upstream.read_head(shared_from_this());
  // Whatever broke, the upstream never gets the rest: it sees an incomplete
  // request (no last chunk, fewer bytes than announced) and a closed connection.
  // The client's connection ends after this exchange: the rest of its body is
  // never read.
  keep_alive_ = false;
  // The upstream closed instead of taking the body: it may have answered
  // first (a 413 for the size, a 401), which the client gets instead of a 502.
  // Any other write failure (a TLS error) is no sign of an answer.
  if (end == End::sink_failed && (ec == asio::error::connection_reset ||
                                  ec == asio::error::broken_pipe || ec == asio::error::eof)) {
    spdlog::debug("conn {}: upstream stopped taking the request body ({}); reading its answer", id_,
                  ec.message());
    return routing_->upstream.read_early_answer(shared_from_this());
  }
  routing_->upstream.abandon();
  switch (end) {
    case End::too_large:
      return respond_error(http::status::payload_too_large, "request body too large");
    case End::source_failed:
      if (is_http_error(ec))
        return respond_error(http::status::bad_request, "malformed request body");
      return fail(ec, "read request body");
    case End::source_closed:   // the client went away mid-body
    case End::source_timeout:  // too slow a body: as when read whole
      return close();
    case End::sink_failed:
    case End::sink_timeout:
      return on_upstream_failed(
          end == End::sink_timeout ? UpstreamError::response_timeout : UpstreamError::reset, ec);
    case End::complete:
      break;
  }
}

// --- the response --------------------------------------------------------------

void ClientSession::on_upstream_head() {
  auto& x = exchange();
  auto& parser = *x.upstream_parser;
  routing_->upstream_stats->latency.observe(seconds_since(routing_->upstream.started()));
  if (parser.get().result_int() == 101) return start_tunnel();  // only ever to an upgrade
  const auto length = parser.content_length();
  if (parser.is_done() || (length && *length <= worker_.config().limits.buffer_response_bytes))
    return routing_->upstream.read_body(shared_from_this());
  // An early answer (see read_early_answer) is passed on only whole: a client
  // still sending the body it was never asked to stop may read nothing until
  // it is done, which would stall a streamed answer until client_write_ms.
  if (routing_->upstream.request_incomplete()) {
    routing_->upstream.abandon();
    return on_upstream_failed(UpstreamError::reset, asio::error::message_size);
  }
  stream_response();
}

void ClientSession::on_upstream_body() {
  auto& x = exchange();
  auto& parser = *x.upstream_parser;
  // Reusable only when the response ended by its framing and nothing extra followed it.
  routing_->upstream.finish(parser.keep_alive() &&
                            routing_->upstream.connection().buffer.size() == 0);
  x.response = &parser.get();
  const bool keep_alive = keep_alive_ && !worker_.draining();
  write_client_head(parser.get(), head_request_, client_version_, keep_alive,
                    BodyFraming::of_length(parser.get().body().size()),
                    worker_.config().debug_header, routing_->decision.upstream->name,
                    x.response_head);
  do_write_prepared(keep_alive);
}

void ClientSession::on_upstream_failed(UpstreamError error, error_code) {
  auto& stats = *routing_->upstream_stats;
  ++stats.errors[static_cast<std::size_t>(error_kind(error))];
  stats.latency.observe(seconds_since(routing_->upstream.started()));
  // A streamed body not read to its end leaves the connection unusable.
  const bool keep_alive = keep_alive_ && !worker_.draining() && request_body_ != BodyMode::streamed;
  auto response = json_error(status_for(error), describe(error), client_version_, keep_alive);
  if (!worker_.config().debug_header.empty())
    response.set(worker_.config().debug_header, routing_->decision.upstream->name);
  if (head_request_) response.body().clear();  // keeps Content-Length, as HEAD must
  do_write(std::move(response));
}

void ClientSession::stream_response() {
  auto& x = exchange();
  auto& parser = *x.upstream_parser;
  const auto& limits = worker_.config().limits;
  BodyPump::Spec spec;
  spec.source = &routing_->upstream.connection().stream;
  spec.source_buffer = &routing_->upstream.connection().buffer;
  spec.sink = &client_.stream();
  spec.read_timeout = worker_.config().timeouts.upstream_response;
  spec.write_timeout = worker_.config().timeouts.client_write;
  BodyFraming framing;
  if (const auto length = parser.content_length()) {
    spec.read = BodyPump::Spec::Read::length;
    spec.length = *length;
    framing = BodyFraming::of_length(*length);
  } else {
    if (parser.chunked()) {
      spec.read = BodyPump::Spec::Read::chunked;
    } else {  // ends when the upstream closes
      spec.read = BodyPump::Spec::Read::until_close;
      spec.limit = limits.response_body_bytes;
    }
    // Re-framed for an HTTP/1.1 client, so its connection stays usable; an
    // HTTP/1.0 client reads until we close.
    spec.chunked_output = client_version_ >= 11;
    framing = spec.chunked_output ? BodyFraming::chunked()
                                  : BodyFraming{BodyFraming::Kind::until_close, 0};
  }
  const bool keep_alive =
      keep_alive_ && !worker_.draining() && framing.kind != BodyFraming::Kind::until_close;
  write_client_head(parser.get(), head_request_, client_version_, keep_alive, framing,
                    worker_.config().debug_header, routing_->decision.upstream->name,
                    x.response_head);
  close_after_write_ = !keep_alive;
  count_response(parser.get().result_int());
  ++worker_.stats().streamed_responses;
  if (spec.read == BodyPump::Spec::Read::chunked) {
    spec.response_parser = &x.stream_upstream_body();
    if (limits.response_body_bytes > 0)
      spec.response_parser->body_limit(limits.response_body_bytes);
    routing_->upstream.connection().buffer.max_size(
        chunk_line_bound(std::max<std::uint32_t>(limits.header_bytes, 60 * 1024)));
  }
  spec.prefix = asio::buffer(x.response_head);
  pump(response_pump_).start(spec, shared_from_this());
}

void ClientSession::on_response_pump_end(BodyPump::End end, error_code ec) {
  using End = BodyPump::End;
  auto& x = exchange();
  response_bytes_ = response_pump_->bytes();
  if (end == End::complete) {
    // Reusable when the body ended by its framing (Beast's keep_alive() is
    // false for one the close ends), with nothing behind it.
    const bool keep_alive = x.upstream_body_parser ? x.upstream_body_parser->keep_alive()
                                                   : x.upstream_parser->keep_alive();
    routing_->upstream.finish(keep_alive && routing_->upstream.connection().buffer.size() == 0);
    return end_exchange();
  }
  routing_->upstream.abandon();
  switch (end) {
    case End::sink_failed:
    case End::sink_timeout:
      return fail(ec, "write response body");
    default: {
      // The upstream failed mid-body: the client's connection is closed short of
      // the body's framing (fewer bytes than its length, no last chunk), so it
      // can tell; a truncated body is never passed off as complete.
      auto& stats = *routing_->upstream_stats;
      const auto kind = end == End::source_timeout  ? UpstreamErrorKind::timeout
                        : end == End::source_closed ? UpstreamErrorKind::reset
                                                    : UpstreamErrorKind::bad_response;
      ++stats.errors[static_cast<std::size_t>(kind)];
      return fail(ec, "read upstream response body");
    }
  }
}

// --- WebSocket tunnels -----------------------------------------------------------

void ClientSession::start_tunnel() {
  auto& x = exchange();
  auto& stats = worker_.stats();
  ++stats.tunnels_opened;
  ++stats.tunnels_open;
  tunnel_ = true;
  count_response(101);
  write_client_head(x.upstream_parser->get(), false, client_version_, true, {},
                    worker_.config().debug_header, routing_->decision.upstream->name,
                    x.response_head);
  auto& upstream = routing_->upstream.connection();
  // Bytes either side sent behind the handshake (already in a buffer) go first.
  BodyPump::Spec to_client;
  to_client.source = &upstream.stream;
  to_client.source_buffer = &upstream.buffer;
  to_client.sink = &client_.stream();
  to_client.prefix = asio::buffer(x.response_head);  // the 101
  to_client.counter = &stats.tunnel_bytes_to_client;
  BodyPump::Spec to_upstream;
  to_upstream.source = &client_.stream();
  to_upstream.source_buffer = &x.read_buffer;
  to_upstream.sink = &upstream.stream;
  to_upstream.counter = &stats.tunnel_bytes_to_upstream;
  client_.disarm();  // tunnel_idle_ms instead (on_tick)
  pump(response_pump_).start(to_client, shared_from_this());
  pump(request_pump_).start(to_upstream, shared_from_this());
}

void ClientSession::on_tunnel_end(BodyPump& pump, BodyPump::End end) {
  const bool to_upstream = &pump == request_pump_.get();
  BodyPump& other = to_upstream ? *response_pump_ : *request_pump_;
  error_code ignored;
  if (other.running()) {
    if (end == BodyPump::End::complete) {
      // One side closed its sending half (all it sent has been passed on):
      // pass its end on as ours, and let the other direction run until it
      // ends too (a WebSocket server still sends its Close; tunnel_idle_ms
      // bounds the wait).
      (to_upstream ? routing_->upstream.connection().tcp() : client_.tcp())
          .shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      return;
    }
    // A failure, or quiet both ways for tunnel_idle_ms: both directions end
    // now. The other pump is stopped even if its last operation succeeded.
    other.abandon();
    client_.cancel();
    routing_->upstream.connection().tcp().cancel(ignored);
    return;
  }
  tunnel_ = false;
  --worker_.stats().tunnels_open;
  response_bytes_ = response_pump_->bytes();
  close();
}

}  // namespace figshift::proxy
