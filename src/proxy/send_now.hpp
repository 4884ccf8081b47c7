#pragma once
// Sends what a socket takes right away, without an asynchronous
// operation: a proxied head and a small body nearly always fit the socket
// buffer, and the async path costs an operation, a completion posted through
// the scheduler and a composed write per message. The socket must be in
// non-blocking mode (a full buffer is never waited for here).
// Thread-safety: none; the caller's socket.

#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>

#include "proxy/byte_stream.hpp"
#include "proxy/http_rewrite.hpp"
#include "proxy/io_types.hpp"

namespace figshift::proxy {

// true: done, all of `wire` sent or `ec` failed; false: the rest of `wire`
// (consumed past what was sent) must go through async_write.
inline bool send_now(TcpSocket& socket, HeadAndBody& wire, boost::system::error_code& ec) {
  if (!socket.non_blocking()) return false;  // setting it failed: never block the worker
  const std::size_t total = wire.size();
  const std::size_t sent = socket.write_some(wire, ec);
  if (ec) {
    if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return true;
    ec = {};
    return false;
  }
  if (sent == total) return true;
  wire.consume(sent);
  return false;
}

// The same for either kind of stream: over TLS the bytes are encrypted into
// one record (or a few) and sent at once. False: call send_rest().
inline bool send_now(ByteStream& stream, HeadAndBody& wire, boost::system::error_code& ec) {
  if (stream.is_tls()) return stream.tls().write_now(wire, ec);
  return send_now(stream.tcp(), wire, ec);
}

// What send_now() left, asynchronously: the rest of `wire`, or over TLS the
// ciphertext still waiting when all of `wire` was encrypted.
template <typename Handler>
void send_rest(ByteStream& stream, const HeadAndBody& wire, Handler&& handler) {
  if (wire.size() == 0 && stream.is_tls())
    return stream.tls().async_flush(std::forward<Handler>(handler));
  boost::asio::async_write(stream, wire, std::forward<Handler>(handler));
}

}  // namespace figshift::proxy
