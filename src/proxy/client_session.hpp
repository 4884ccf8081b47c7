#pragma once
// One client connection: reads requests, routes each with the worker's current
// snapshot, forwards it upstream and writes the response back. Owns itself
// (enable_shared_from_this); lives on its worker's thread only. One .cpp per
// half: client_session.cpp (reading and routing a request),
// client_session_upstream.cpp (the upstream exchange) and
// client_session_response.cpp (writing the response, closing).

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "figshift/routing.hpp"
#include "figshift/telemetry/access_log.hpp"
#include "figshift/telemetry/stats.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http_rewrite.hpp"
#include "proxy/session_list.hpp"
#include "proxy/upstream_error.hpp"
#include "proxy/upstream_pool.hpp"

namespace figshift::proxy {

class Worker;

// An error from Beast's HTTP parser (malformed message), as opposed to an I/O error.
inline bool is_http_error(const boost::system::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  // `tls`: the listener's server context, or null for plain HTTP.
  ClientSession(Worker& worker, TcpSocket socket, asio::ssl::context* tls);
  ~ClientSession();
  void start();
  // Drain: closes the connection now if it is between requests, else after the response.
  void on_drain();
  // Called by the worker's tick: past the deadline, the pending operation is
  // cancelled and its handler sees beast::error::timeout (as from tcp_stream);
  // a kept-alive connection idle for park_idle_after gives up its read buffer.
  void on_tick(std::chrono::steady_clock::time_point now);

  SessionList<ClientSession>::Hook list_hook;  // the worker's list of live sessions

 private:
  using error_code = boost::system::error_code;

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

  void do_upstream();
  void do_resolve();
  void on_resolve(std::uint64_t lookup, error_code ec, TcpResolver::results_type results);
  void on_connect(error_code ec, const asio::ip::tcp::endpoint&);
  void on_handshake(error_code ec);
  void do_upstream_write();
  void on_upstream_write(error_code ec, std::size_t);
  void do_upstream_read();
  void on_upstream_read(error_code ec, std::size_t);
  bool retry_on_fresh_connection(error_code ec);
  void upstream_failed(UpstreamError error, error_code ec);

  void do_write(Response response);         // one of the proxy's own responses
  void do_write_prepared(bool keep_alive);  // the exchange's response, its head written
  void on_write(error_code ec, std::size_t);
  void do_linger();
  void on_tls_shutdown(error_code ec);
  void do_linger_read();
  void on_linger(error_code ec, std::size_t);
  void respond_error(http::status status, std::string_view message);
  void fail(error_code ec, const char* what);
  // Every I/O step sets the deadline for what it waits on. Returns now.
  std::chrono::steady_clock::time_point arm(std::chrono::milliseconds timeout);
  // Once the deadline has passed any failure reads as a timeout; before, as it is.
  error_code timed(error_code ec) const;
  void write_access_log(AccessLogBuffer& log);
  void close();
  // This request's buffers, taken from the worker's pool on first use.
  Exchange& exchange();
  // The request in flight (only between do_read_header and the end of its response).
  RequestParser& request_parser() { return *exchange().request_parser; }

  Worker& worker_;
  std::uint64_t id_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point idle_since_;  // when the last request began waiting
  ClientStream stream_;
  std::string client_ip_;

  // Per request: the snapshot it was routed with stays alive until the response is written.
  std::shared_ptr<const Snapshot> snapshot_;
  Decision decision_;
  UpstreamStats* upstream_stats_ = nullptr;  // this request's upstream's counters
  std::chrono::steady_clock::time_point upstream_started_;
  std::chrono::steady_clock::time_point request_started_;
  std::unique_ptr<UpstreamConnection> upstream_;
  // DNS, made on first use: most sessions reuse pooled connections or IP literals.
  struct Resolution {
    explicit Resolution(Executor ex) : resolver(ex), deadline(ex) {}
    TcpResolver resolver;
    Timer deadline;
    std::uint64_t generation = 0;  // a lookup's answer counts only while current
  };
  std::unique_ptr<Resolution> resolution_;
  std::unique_ptr<Exchange> exchange_;  // while a request is in flight; see exchange()
  unsigned client_version_ = 11;

  // Flags together, so that an idle connection's session stays small.
  bool timed_out_ = false;
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
  bool upstream_reused_ = false;
  bool retried_ = false;
  bool trusted_peer_ = false;  // its address is in trusted_proxies (see write_upstream_head)
};

}  // namespace figshift::proxy
