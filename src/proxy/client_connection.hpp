#pragma once
// The client side of a session: the connection's byte stream (plain or TLS),
// who the peer is (its address; whether it is one of trusted_proxies), the
// deadline of whatever the session waits on from the client, and the ways a
// connection ends: a lingering close after a response that closes it, or at once.
// Thread-safety: none; one session's, on its worker's thread. Lifetime: a
// member of its session; linger() holds the owner it is given until it is done.

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "figshift/config.hpp"
#include "proxy/byte_stream.hpp"

namespace figshift::proxy {

class ClientConnection {
 public:
  using error_code = boost::system::error_code;
  using time_point = std::chrono::steady_clock::time_point;

  // `tls`: the listener's server context, or null for plain HTTP.
  ClientConnection(TcpSocket socket, boost::asio::ssl::context* tls,
                   const std::vector<IpNetwork>& trusted_proxies);

  ByteStream& stream() { return stream_; }
  bool is_tls() const { return stream_.is_tls(); }
  TcpSocket& tcp() { return stream_.tcp(); }
  const std::string& ip() const { return ip_; }  // empty when the peer was already gone
  // Its X-Forwarded-For and friends may be passed on (see write_upstream_head).
  bool trusted_peer() const { return trusted_peer_; }

  // Every client-side wait sets the deadline for what it waits on. Returns now.
  time_point arm(std::chrono::milliseconds timeout);
  // No client-side wait of the session's own (a body pump keeps its own deadline).
  void disarm() { deadline_ = time_point::max(); }
  // Once the deadline has passed any failure reads as a timeout; before, as it is.
  error_code timed(error_code ec) const;
  // Past the deadline the pending operation is cancelled (its handler sees
  // operation_aborted, which timed() turns into a timeout). Not disarmed: an
  // operation started later without a fresh deadline is cancelled on the next
  // tick too, so nothing ever waits unbounded.
  void on_tick(time_point now);
  void cancel();

  // Ends the connection after a response that closes it: TLS sends
  // close_notify and waits (at most `write_timeout`) for the peer's; plain TCP
  // half-closes and reads until the client closes (at most `read_timeout`), so
  // that unread request bytes do not make the kernel reset the connection and
  // destroy the response before the client read it.
  void linger(std::chrono::milliseconds write_timeout, std::chrono::milliseconds read_timeout,
              std::shared_ptr<void> owner);
  void close();

 private:
  void do_linger_read(std::shared_ptr<void> owner);

  ByteStream stream_;
  std::string ip_;
  time_point deadline_ = time_point::max();
  std::unique_ptr<char[]> linger_buffer_;  // only while lingering
  bool timed_out_ = false;
  bool trusted_peer_ = false;
};

}  // namespace figshift::proxy
