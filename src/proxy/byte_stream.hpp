#pragma once
// One side's byte stream, client or upstream: plain TCP or TLS over TCP. It
// models Asio's AsyncReadStream/AsyncWriteStream, so Beast's HTTP algorithms
// and the body pump are compiled once for both kinds and both sides; each
// operation costs one branch to pick the layer.
// Thread-safety: none (one session's). One read and one write may be pending
// at once (a tunnel or a streamed upload does both), as TlsStream allows.

#include <boost/asio/ssl/context.hpp>
#include <utility>
#include <variant>

#include "proxy/drained_read.hpp"
#include "proxy/io_types.hpp"
#include "proxy/tls_stream.hpp"

namespace figshift::proxy {

class ByteStream {
 public:
  using Plain = TcpSocket;
  using Tls = TlsStream;
  using executor_type = Plain::executor_type;

  // `tls` null: plain TCP; else the TLS context (outlives the stream): the
  // listener's server context for a client, the upstream client context.
  ByteStream(TcpSocket socket, boost::asio::ssl::context* tls)
      : stream_(make(std::move(socket), tls)) {}
  ByteStream(Executor ex, boost::asio::ssl::context* tls) : ByteStream(TcpSocket(ex), tls) {}

  bool is_tls() const { return std::holds_alternative<Tls>(stream_); }
  Tls& tls() { return std::get<Tls>(stream_); }
  // The TCP layer: connect, wait, cancel, shutdown and close.
  Plain& tcp() {
    if (auto* plain = std::get_if<Plain>(&stream_)) return *plain;
    return std::get<Tls>(stream_).next_layer();
  }
  executor_type get_executor() { return tcp().get_executor(); }
  // Bytes already received that a wait for readability would not see.
  bool has_buffered_input() const {
    const auto* tls = std::get_if<Tls>(&stream_);
    return tls && tls->has_buffered_input();
  }
  void release_idle_buffers() {
    if (auto* tls = std::get_if<Tls>(&stream_)) tls->release_idle_buffers();
  }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (auto* plain = std::get_if<Plain>(&stream_))
      return async_read_some_drained(*plain, buffers, std::forward<Handler>(handler));
    return std::get<Tls>(stream_).async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (auto* plain = std::get_if<Plain>(&stream_))
      return plain->async_write_some(buffers, std::forward<Handler>(handler));
    return std::get<Tls>(stream_).async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  static std::variant<Plain, Tls> make(TcpSocket socket, boost::asio::ssl::context* tls) {
    if (tls) return std::variant<Plain, Tls>(std::in_place_type<Tls>, std::move(socket), *tls);
    return std::variant<Plain, Tls>(std::in_place_type<Plain>, std::move(socket));
  }

  std::variant<Plain, Tls> stream_;
};

}  // namespace figshift::proxy
