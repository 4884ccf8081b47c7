#pragma once
// One client connection, request after request, in the phases of a proxied
// request (after Pingora's life of a request):
//   1. request filter: read the head, check it (request_checks.hpp), read a
//      small body whole (client_session.cpp);
//   2. upstream peer: route with the worker's current snapshot (decide());
//   3. upstream request: UpstreamRequest connects and sends the head (and a
//      body held in memory); a longer body follows through a BodyPump
//      (client_session_exchange.cpp);
//   4. response filter: the upstream's head rewritten for the client; a small
//      body read whole and sent with it, a longer one streamed through a
//      BodyPump; a WebSocket handshake answered 101 becomes a two-way tunnel;
//   5. logging: counters and the access log line once the response is out
//      (client_session_response.cpp), then the next request or a lingering close.
// The client side's byte stream, deadline and ways to end are ClientConnection's.
// Owns itself (enable_shared_from_this); lives on its worker's thread only.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "figshift/routing.hpp"
#include "figshift/telemetry/access_log.hpp"
#include "figshift/telemetry/stats.hpp"
#include "proxy/body_pump.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http_rewrite.hpp"
#include "proxy/session_list.hpp"
#include "proxy/upstream_error.hpp"
#include "proxy/upstream_request.hpp"

namespace figshift::proxy {

class Worker;

class ClientSession : public std::enable_shared_from_this<ClientSession>,
                      private UpstreamRequest::Listener,
                      private BodyPump::Listener {
 public:
  // `tls`: the listener's server context, or null for plain HTTP.
  ClientSession(Worker& worker, TcpSocket socket, asio::ssl::context* tls);
  ~ClientSession();
  void start();
  // Drain: closes the connection now if it is between requests, else after the
  // response; a tunnel lasts until the process exits at timeouts.drain_ms.
  void on_drain();
  // Called by the worker's tick: past the deadline, the pending operation is
  // cancelled and its handler sees beast::error::timeout (as from tcp_stream);
  // a kept-alive connection idle for park_idle_after gives up its read buffer.
  void on_tick(std::chrono::steady_clock::time_point now);

  SessionList<ClientSession>::Hook list_hook;  // the worker's list of live sessions

 private:
  using error_code = boost::system::error_code;
  // How the request's body travels.
  enum class BodyMode : std::uint8_t { none, buffered, streamed };

  // client_session.cpp: the client side and the request filter.
  void do_tls_handshake();
  void on_tls_handshake(error_code ec);
  void next_request();
  void do_wait_request();
  void on_wait_request(error_code ec);
  void park();
  void do_read_header();
  void on_read_header(error_code ec, std::size_t);
  void on_read_header_error(error_code ec, bool parked);
  void do_continue();
  void on_continue(error_code ec, std::size_t);
  void do_read_body();
  void on_read_body(error_code ec, std::size_t);
  void route();

  // client_session_exchange.cpp: the upstream request, streamed bodies and tunnels.
  void on_upstream_sent() override;
  void on_upstream_head() override;
  void on_upstream_body() override;
  void on_upstream_failed(UpstreamError error, error_code ec) override;
  void on_pump_end(BodyPump& pump, BodyPump::End end, error_code ec) override;
  void start_request_pump();
  void on_request_pump_end(BodyPump::End end, error_code ec);
  void stream_response();
  void on_response_pump_end(BodyPump::End end, error_code ec);
  void start_tunnel();
  void on_tunnel_end(BodyPump& pump, BodyPump::End end);
  void do_write_head(void (ClientSession::*next)());
  BodyPump& pump(std::unique_ptr<BodyPump>& slot);

  // client_session_response.cpp: responses, logging and the end of a connection.
  void do_write(Response response);         // one of the proxy's own responses
  void do_write_prepared(bool keep_alive);  // the exchange's response, its head written
  void on_write(error_code ec, std::size_t);
  void count_response(unsigned status);
  void end_exchange();
  void respond_error(http::status status, std::string_view message);
  void fail(error_code ec, const char* what);
  void write_access_log(AccessLogBuffer& log);
  void close();
  // This request's buffers, taken from the worker's pool on first use.
  Exchange& exchange();
  // The request in flight (only between do_read_header and the end of its body).
  RequestParser& request_parser() { return *exchange().request_parser; }

  Worker& worker_;
  std::uint64_t id_;
  std::chrono::steady_clock::time_point idle_since_;  // when the last request began waiting
  ClientConnection client_;

  // What a routed request needs: made for a request, kept while the client's
  // next request follows at once (a hot connection), given back whenever the
  // connection waits for readability (do_wait_request: parked, and also
  // between the requests of a client that pauses), so that an idle
  // connection's session holds none of it (~230 bytes of the ~900 an idle
  // connection cost). A client that pauses between requests therefore pays
  // one allocation per request for it.
  struct Routing {
    Routing(Worker& worker, UpstreamRequest::Listener& listener, std::uint64_t connection_id)
        : upstream(worker, listener, connection_id) {}
    // The snapshot the request was routed with stays alive until the response is written.
    std::shared_ptr<const Snapshot> snapshot;
    Decision decision;
    UpstreamStats* upstream_stats = nullptr;  // this request's upstream's counters
    // user-key header, cookie or token claim the request was routed by, kept only
    // with access_log.include_username (Basic usernames are decoded at log time).
    std::string logged_user;
    UpstreamRequest upstream;
  };
  std::unique_ptr<Routing> routing_;  // set whenever routed_ is
  std::chrono::steady_clock::time_point request_started_;
  // Made on a connection's first streamed body or tunnel, kept for its next ones.
  std::unique_ptr<BodyPump> request_pump_;   // client to upstream
  std::unique_ptr<BodyPump> response_pump_;  // upstream to client
  std::unique_ptr<Exchange> exchange_;       // while a request is in flight; see exchange()
  std::uint64_t response_bytes_ = 0;         // body bytes of the response, for the access log
  unsigned response_status_ = 0;
  unsigned client_version_ = 11;
  BodyMode request_body_ = BodyMode::none;

  // Flags together, so that an idle connection's session stays small.
  bool first_request_ = true;
  bool reading_idle_ = false;  // waiting for a request on a kept-alive connection
  // The client sent its last request within park_idle_after of the response
  // before it: the next one is read with a buffer (see next_request).
  bool hot_ = false;
  bool parking_ = false;  // the idle read is being cancelled, to wait without a buffer
  bool close_after_write_ = false;
  bool routed_ = false;
  bool head_request_ = false;
  bool keep_alive_ = false;
  bool upgrade_ = false;  // a WebSocket handshake (see is_websocket_upgrade)
  bool tunnel_ = false;   // after the upstream's 101: bytes both ways
};

}  // namespace figshift::proxy
