#pragma once
// Per-worker keep-alive connections to upstreams, keyed by origin.
// Thread-safety: none; owned and used by one worker thread only.

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/byte_stream.hpp"

namespace figshift::proxy {

namespace beast = boost::beast;
namespace asio = boost::asio;

struct UpstreamConnection {
  UpstreamConnection(Executor ex, asio::ssl::context* tls_context, std::string origin);

  TcpSocket& tcp() { return stream.tcp(); }
  bool is_tls() const { return stream.is_tls(); }

  ByteStream stream;
  beast::flat_buffer buffer;
  std::string origin;
  std::chrono::steady_clock::time_point idle_since;
};

class UpstreamPool {
 public:
  UpstreamPool(std::chrono::milliseconds idle_timeout, std::size_t max_idle_per_origin);

  // A pooled idle connection to `origin`, or nullptr. `check_alive`: for a
  // request that cannot be retried, each candidate is first asked, with one
  // non-blocking peek, whether the upstream closed it while idle (EOF, an
  // error, or bytes nobody asked for): such a one is dropped, not handed out.
  std::unique_ptr<UpstreamConnection> acquire(const std::string& origin, bool check_alive = false);
  // Keeps a healthy keep-alive connection for reuse (or drops it when the pool is full).
  void release(std::unique_ptr<UpstreamConnection> connection);
  // Closes idle connections older than the idle timeout.
  void sweep();
  void clear();
  std::size_t idle_count() const;

 private:
  std::chrono::milliseconds idle_timeout_;
  std::size_t max_idle_per_origin_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
};

}  // namespace figshift::proxy
