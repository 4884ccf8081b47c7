#include "proxy/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "proxy/client_session.hpp"
#include "proxy/drained_read.hpp"

namespace figshift::proxy {
namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// After an accept error (EMFILE, ENFILE, ENOBUFS) the listener pauses this long
// instead of spinning; connections already open keep being served meanwhile.
constexpr std::chrono::milliseconds accept_error_pause{50};

// A session count only this thread touches, and a snapshot owned through a
// control block private to this worker: copying it per request never writes
// a cache line that another worker reads (Envoy's thread-local slot idea).
std::shared_ptr<const Snapshot> worker_local(std::shared_ptr<const Snapshot> global) {
  const Snapshot* raw = global.get();
  return {std::make_shared<std::shared_ptr<const Snapshot>>(std::move(global)), raw};
}

// A tenth of the shortest data-path timeout, within [10 ms, 100 ms]: late by
// at most 10 % (or 100 ms), and at most 100 wake-ups a second when idle.
std::chrono::milliseconds deadline_tick_for(const Config& config) {
  const auto& t = config.timeouts;
  const auto shortest = std::min({t.client_header, t.client_idle, t.client_body, t.client_write,
                                  t.upstream_connect, t.upstream_response});
  return std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(shortest) / 10,
                    std::chrono::milliseconds(10), std::chrono::milliseconds(100));
}

// Each worker's equal share of limits.buffered_body_bytes, but never less than
// one body of limits.body_bytes: on a many-core machine a small budget split
// N ways would otherwise refuse every body that the size limit allows.
std::uint64_t body_budget_share(const Config& config) {
  return std::max<std::uint64_t>(config.limits.buffered_body_bytes / std::max(config.workers, 1u),
                                 config.limits.body_bytes);
}

JwtPolicy jwt_policy(const Config& config) {
  if (!config.jwt) return {};
  return {config.jwt->issuer, config.jwt->audience, config.jwt->leeway_s, config.jwt->cache};
}

}  // namespace

Worker::Worker(unsigned index, const Config& config, asio::ssl::context& tls_context,
               std::shared_ptr<const Snapshot> initial, AccessLog* access_log)
    : index_(index),
      config_(config),
      tls_context_(tls_context),
      body_budget_(body_budget_share(config)),
      sweep_timer_(ioc_),
      deadline_tick_(deadline_tick_for(config)),
      deadline_timer_(ioc_),
      pool_(config.timeouts.upstream_idle, config.limits.upstream_idle_per_origin),
      snapshot_(worker_local(std::move(initial))),
      user_keys_(jwt_policy(config), stats_.tokens),
      access_log_timer_(ioc_) {
  if (access_log) access_log_.emplace(*access_log);
  index_user_windows();
}

void Worker::index_user_windows() {
  user_windows_.clear();
  for (const auto& upstream : snapshot_->upstreams)
    user_windows_.push_back(&stats_.unique_users[upstream.name]);
}

void Worker::listen(const std::vector<Listener>& listeners) {
  for (const auto& [endpoint, tls] : listeners) {
    TcpAcceptor acceptor(ioc_.get_executor());
    const auto where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.set_option(reuse_port(true), ec);
    // Accepted sockets inherit both from the listener: no system call per
    // connection for them. TCP_INQ: see drained_read.hpp.
    if (!ec) acceptor.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!ec) enable_receive_queue_hint(acceptor.native_handle());
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
    acceptors_.push_back(std::move(acceptor));
    acceptor_tls_.push_back(tls);
    accept_backoff_.push_back(std::make_unique<Timer>(ioc_.get_executor()));
  }
  for (std::size_t i = 0; i < acceptors_.size(); ++i) do_accept(i);
  schedule_sweep();
  schedule_deadline_check();
  if (access_log_) schedule_access_log_flush();
}

std::vector<asio::ip::tcp::endpoint> Worker::local_endpoints() const {
  std::vector<asio::ip::tcp::endpoint> out;
  for (const auto& acceptor : acceptors_) out.push_back(acceptor.local_endpoint());
  return out;
}

void Worker::run() {
  ioc_.run();
  if (access_log_) access_log_->flush();
}

void Worker::do_accept(std::size_t acceptor) {
  acceptors_[acceptor].async_accept(
      [this, acceptor](boost::system::error_code ec, TcpSocket socket) {
        on_accept(acceptor, ec, std::move(socket));
      });
}

void Worker::on_accept(std::size_t acceptor, boost::system::error_code ec, TcpSocket socket) {
  // The acceptor was closed by drain.
  if (ec == asio::error::operation_aborted || !acceptors_[acceptor].is_open()) return;
  if (ec) {
    // An accept error never stops the listener: pause, then accept again.
    if (stats_.accept_errors++ % 1000 == 0)
      spdlog::warn("worker {}: accept failed: {} (pausing {} ms)", index_, ec.message(),
                   accept_error_pause.count());
    auto& timer = *accept_backoff_[acceptor];
    timer.expires_after(accept_error_pause);
    timer.async_wait([this, acceptor](boost::system::error_code timer_ec) {
      if (!timer_ec && !draining_) do_accept(acceptor);
    });
    return;
  }
  if (sessions_.size() >= config_.limits.max_connections) {
    ++stats_.connections_refused;
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    ++stats_.connections_accepted;
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);  // for send_now
    std::make_shared<ClientSession>(*this, std::move(socket), acceptor_tls_[acceptor])->start();
  }
  do_accept(acceptor);
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(config_.timeouts.upstream_idle);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || draining_) return;
    pool_.sweep();
    schedule_sweep();
  });
}

void Worker::schedule_deadline_check() {
  deadline_timer_.expires_after(deadline_tick_);
  deadline_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    sessions_.for_each([now](ClientSession& session) { session.on_tick(now); });
    // Draining: the tick outlives the listeners only as long as sessions do.
    if (draining_ && sessions_.empty()) return;
    schedule_deadline_check();
  });
}

void Worker::schedule_access_log_flush() {
  access_log_timer_.expires_after(config_.access_log.flush_interval);
  access_log_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    access_log_->flush();
    if (!draining_) schedule_access_log_flush();
  });
}

void Worker::publish(std::shared_ptr<const Snapshot> snapshot) {
  asio::post(ioc_, [this, snapshot = std::move(snapshot)]() mutable {
    snapshot_ = worker_local(std::move(snapshot));
    index_user_windows();
  });
}

void Worker::publish_keys(std::shared_ptr<const JwtKeySet> keys) {
  asio::post(ioc_,
             [this, keys = std::move(keys)]() mutable { user_keys_.set_keys(std::move(keys)); });
}

void Worker::drain() {
  asio::post(ioc_, [this] {
    draining_ = true;
    boost::system::error_code ignored;
    for (auto& acceptor : acceptors_) acceptor.close(ignored);
    for (auto& timer : accept_backoff_) timer->cancel();
    sweep_timer_.cancel();
    access_log_timer_.cancel();
    pool_.clear();
    if (sessions_.empty()) deadline_timer_.cancel();
    sessions_.for_each([](ClientSession& session) { session.on_drain(); });
  });
}

TrafficStats Worker::collect() const {
  TrafficStats copy = stats_;
  copy.active_connections = sessions_.size();
  copy.upstream_idle_connections = pool_.idle_count();
  copy.body_budget_rejections = body_budget_.rejections();
  copy.buffered_body_bytes = body_budget_.in_use();
  return copy;
}

void Worker::add_session(ClientSession& session) {
  sessions_.push_front(session);
}

void Worker::remove_session(ClientSession& session) {
  sessions_.erase(session);
}

}  // namespace figshift::proxy
