#pragma once
// One request's trip to its upstream, after Envoy's router/upstream-request
// split: the session decides where a request goes and what the client gets;
// this object talks to the upstream. It takes a pooled connection or makes one
// (DNS, connect, TLS handshake), writes the request head (with a body read
// whole), reads the response head (skipping interim 1xx) and, when asked, the
// rest of a small body. A pooled connection found closed before any byte of a
// response is replaced by a fresh one, once, for a request that is safe to
// repeat and whose body is in memory: a streamed body is never retried.
// Failures are typed (UpstreamError); their statuses are the session's choice.
//
// Thread-safety: none; one session's, on its worker's thread. Lifetime: a
// member of its session, which passes itself as `owner` to start(): every
// pending handler holds it. At most one operation is pending at a time.

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "figshift/routing.hpp"
#include "proxy/exchange.hpp"
#include "proxy/upstream_error.hpp"
#include "proxy/upstream_pool.hpp"

namespace figshift::proxy {

class Worker;

class UpstreamRequest {
 public:
  using error_code = boost::system::error_code;

  class Listener {
   public:
    // The head (and a body held in memory) went out: a streamed body may follow;
    // call read_head() once it has.
    virtual void on_upstream_sent() = 0;
    // A final response head, or a 101, is in the exchange's upstream_parser.
    virtual void on_upstream_head() = 0;
    // read_body() finished: the whole body is in the exchange's upstream_parser.
    virtual void on_upstream_body() = 0;
    virtual void on_upstream_failed(UpstreamError error, error_code ec) = 0;

   protected:
    ~Listener() = default;
  };

  struct Trip {
    const Upstream* upstream = nullptr;
    std::string_view body;      // read whole (empty: none, or streamed after on_upstream_sent)
    bool retryable = false;     // safe to repeat, and no body to stream
    bool head_request = false;  // its response carries no body
    bool upgrade = false;       // a 101 answers it
  };

  UpstreamRequest(Worker& worker, Listener& listener, std::uint64_t connection_id);
  ~UpstreamRequest();

  // Sends exchange.upstream_head (+ trip.body) to trip.upstream.
  void start(const Trip& trip, Exchange& exchange, std::shared_ptr<void> owner);
  // Both after on_upstream_sent (read_body after on_upstream_head); `owner` as for start().
  void read_head(std::shared_ptr<void> owner);
  void read_body(std::shared_ptr<void> owner);
  // Sending a streamed body failed (the upstream stopped reading and closed):
  // the upstream may have answered first (a 413, a 401), as nginx and HTTP
  // allow (RFC 9112 §9.5). Reads that answer like read_head(); without one,
  // on_upstream_failed(reset). The connection is never pooled afterwards.
  void read_early_answer(std::shared_ptr<void> owner);
  bool request_incomplete() const { return request_incomplete_; }
  // Once the exchange is over: a connection whose response ended by its framing,
  // with nothing extra behind it, goes back to the pool; any other is closed.
  void finish(bool reusable);
  // Closes the connection (never pooled) and stops a DNS lookup.
  void abandon();
  UpstreamConnection& connection() { return *connection_; }
  bool connected() const { return connection_ != nullptr; }
  // No connection and no handler of its own pending (a DNS lookup abandoned by
  // its deadline still runs to its end): the listener may destroy it now, even
  // from inside one of its callbacks, which touch no member after calling the
  // listener.
  bool idle() const;
  std::chrono::steady_clock::time_point started() const { return started_; }
  // Past the deadline the connection is closed (a timed-out upstream is never reused).
  void on_tick(std::chrono::steady_clock::time_point now);

 private:
  void do_resolve();
  void on_resolve(std::uint64_t lookup, error_code ec,
                  boost::asio::ip::tcp::resolver::results_type results);
  void on_connect(error_code ec, const boost::asio::ip::tcp::endpoint&);
  void on_handshake(error_code ec);
  void do_write();
  void on_write(error_code ec, std::size_t);
  void do_read_head();
  void on_read_head(error_code ec, std::size_t);
  void on_read_body(error_code ec, std::size_t);
  bool retry_on_fresh_connection(error_code ec);
  void failed(UpstreamError error, error_code ec);
  void arm(std::chrono::milliseconds timeout);
  error_code timed(error_code ec) const;
  template <typename Handler>
  auto bind(Handler handler);

  Worker& worker_;
  Listener& listener_;
  std::uint64_t connection_id_;
  Trip trip_;
  Exchange* exchange_ = nullptr;
  // Weak: only the pending operation's handler holds the session. A handler
  // destroyed unrun (the io_context torn down at the end of a drain) then frees
  // it; a strong member would keep the session alive through itself.
  std::weak_ptr<void> owner_;
  std::unique_ptr<UpstreamConnection> connection_;
  // DNS, made on first use: most trips reuse pooled connections or IP literals.
  struct Resolution;
  std::unique_ptr<Resolution> resolution_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool timed_out_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool request_incomplete_ = false;  // read_early_answer(): the body did not all go out
};

}  // namespace figshift::proxy
