#pragma once
// One worker thread's world: its io_context, acceptors, upstream pool, snapshot
// pointer and live sessions. Thread-safety: everything but publish(), drain()
// and the constructor runs on the worker's own thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "figshift/config.hpp"
#include "figshift/identity.hpp"
#include "figshift/routing.hpp"
#include "figshift/telemetry/access_log.hpp"
#include "figshift/telemetry/stats.hpp"
#include "proxy/body_budget.hpp"
#include "proxy/exchange.hpp"
#include "proxy/io_types.hpp"
#include "proxy/session_list.hpp"
#include "proxy/upstream_pool.hpp"

namespace figshift::proxy {

class ClientSession;

// One traffic listen address; `tls` (owned by the Server) makes it HTTPS.
struct Listener {
  asio::ip::tcp::endpoint endpoint;
  asio::ssl::context* tls = nullptr;
};

class Worker {
 public:
  Worker(unsigned index, const Config& config, asio::ssl::context& tls_context,
         std::shared_ptr<const Snapshot> initial, AccessLog* access_log);

  // Opens one SO_REUSEPORT acceptor per endpoint (throws on failure).
  void listen(const std::vector<Listener>& listeners);
  void run();  // on the worker thread, until drained or stopped
  void publish(std::shared_ptr<const Snapshot> snapshot);  // any thread
  void publish_keys(std::shared_ptr<const JwtKeySet> keys);  // any thread (#17)
  void drain();                                            // any thread
  void stop() { ioc_.stop(); }

  std::vector<asio::ip::tcp::endpoint> local_endpoints() const;

  // Called by sessions, on this worker's thread.
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  const Config& config() const { return config_; }
  UpstreamPool& pool() { return pool_; }
  ExchangePool& exchanges() { return exchanges_; }
  BodyBudget& body_budget() { return body_budget_; }
  asio::ssl::context& tls_context() { return tls_context_; }
  TrafficStats& stats() { return stats_; }
  // Who is the user (#17): header, cookie and verified-token lookups, cached per worker.
  UserKeyReader& user_keys() { return user_keys_; }
  // Counts the decision's user (a hash, never the value) as seen on its upstream (#17).
  void record_user(const Decision& decision, std::int64_t now_ms) {
    if (decision.user_hash == 0) return;
    // The current snapshot's upstreams by index, without a lookup by name; a
    // request still on an older snapshot looks its upstream up by name.
    const Upstream* first = snapshot_->upstreams.data();
    const bool current = std::less_equal<>{}(first, decision.upstream) &&
                         std::less<>{}(decision.upstream, first + user_windows_.size());
    UniqueUsersWindow& users = current ? *user_windows_[decision.upstream - first]
                                       : stats_.unique_users[decision.upstream->name];
    users.record(decision.user_hash, now_ms);
  }
  AccessLogBuffer* access_log() { return access_log_ ? &*access_log_ : nullptr; }  // null: off
  // A copy of this worker's counters; call on the worker's thread.
  TrafficStats collect() const;
  bool draining() const { return draining_; }
  std::uint64_t next_connection_id() { return (next_id_++ << 8) | index_; }
  void add_session(ClientSession& session);
  void remove_session(ClientSession& session);
  // Upstream failures are logged at warn level only now and then, so that an
  // outage does not take the logger's lock on every request.
  bool should_log_upstream_failure() { return upstream_failures_logged_++ % 100 == 0; }
  asio::io_context& io_context() { return ioc_; }

 private:
  void do_accept(std::size_t acceptor);
  void on_accept(std::size_t acceptor, boost::system::error_code ec, TcpSocket socket);
  void schedule_sweep();
  void schedule_deadline_check();
  void schedule_access_log_flush();

  unsigned index_;
  const Config& config_;
  asio::ssl::context& tls_context_;
  // Declared before ioc_ so they outlive it: destroying ioc_ destroys queued
  // handlers, whose sessions unregister themselves here.
  SessionList<ClientSession> sessions_;
  BodyBudget body_budget_;       // before exchanges_: their leases give bytes back to it
  ExchangePool exchanges_{256};  // sessions give theirs back when destroyed
  std::uint64_t next_id_ = 1;
  std::uint64_t upstream_failures_logged_ = 0;
  // One thread runs it; other threads only post (publish, drain, stats) and
  // stop, which keep the scheduler's lock: the reactor's per-socket locks go.
  asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::vector<TcpAcceptor> acceptors_;
  std::vector<asio::ssl::context*> acceptor_tls_;  // per acceptor; null: plain HTTP
  std::vector<std::unique_ptr<Timer>> accept_backoff_;
  Timer sweep_timer_;
  // Every session deadline is checked at this interval: a timeout fires at most
  // one tick late (never early), and no I/O operation arms a timer of its own.
  std::chrono::milliseconds deadline_tick_;
  Timer deadline_timer_;
  UpstreamPool pool_;
  std::shared_ptr<const Snapshot> snapshot_;
  TrafficStats stats_;
  UserKeyReader user_keys_;  // after stats_: it counts into stats_.tokens
  // stats_.unique_users of snapshot_->upstreams[i] (map nodes never move).
  std::vector<UniqueUsersWindow*> user_windows_;
  void index_user_windows();
  std::optional<AccessLogBuffer> access_log_;
  Timer access_log_timer_;
  bool draining_ = false;
};

}  // namespace figshift::proxy
