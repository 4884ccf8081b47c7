#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "proxy/coarse_clock.hpp"

namespace figshift::proxy {

UpstreamConnection::UpstreamConnection(Executor ex, asio::ssl::context* tls_context,
                                       std::string origin_)
    : stream(ex, tls_context), origin(std::move(origin_)) {}

UpstreamPool::UpstreamPool(std::chrono::milliseconds idle_timeout, std::size_t max_idle_per_origin)
    : idle_timeout_(idle_timeout), max_idle_per_origin_(max_idle_per_origin) {}

namespace {

// An idle keep-alive connection has nothing to read: recv finds EAGAIN. EOF
// (the upstream closed it), an error, or bytes (a TLS close_notify, junk)
// mean it is not fit for a request that cannot be sent twice.
bool looks_alive(TcpSocket& socket) {
  char byte;
  const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<UpstreamConnection> UpstreamPool::acquire(const std::string& origin,
                                                          bool check_alive) {
  auto it = idle_.find(origin);
  if (it == idle_.end()) return nullptr;
  auto& list = it->second;
  const auto now = coarse_now();
  // Most recently used first: it is the least likely to have been closed by the upstream.
  while (!list.empty()) {
    auto connection = std::move(list.back());
    list.pop_back();
    if (now - connection->idle_since >= idle_timeout_) continue;
    // Bytes an idle connection's TLS layer already holds (a close_notify, an
    // alert) are no answer to anything: the connection is done.
    if (connection->stream.has_buffered_input()) continue;
    if (check_alive && !looks_alive(connection->tcp())) continue;
    return connection;
  }
  return nullptr;
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> connection) {
  // Closed meanwhile (a deadline can close it as its response completes): not reusable.
  if (!connection->tcp().is_open()) return;
  auto& list = idle_[connection->origin];
  if (list.size() >= max_idle_per_origin_) return;  // dropping it closes it
  connection->idle_since = coarse_now();
  list.push_back(std::move(connection));
}

void UpstreamPool::sweep() {
  const auto now = coarse_now();
  for (auto& [origin, list] : idle_)
    std::erase_if(list, [&](const auto& c) { return now - c->idle_since >= idle_timeout_; });
}

void UpstreamPool::clear() {
  idle_.clear();
}

std::size_t UpstreamPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [origin, list] : idle_) n += list.size();
  return n;
}

}  // namespace figshift::proxy
