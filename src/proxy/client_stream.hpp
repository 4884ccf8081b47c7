#pragma once
// A client connection's byte stream: plain TCP or TLS over TCP, chosen per
// listener at accept. It models Asio's AsyncReadStream/AsyncWriteStream, so
// Beast's HTTP algorithms are compiled once for both kinds; each operation
// costs one branch to pick the layer. Thread-safety: none (one session's).

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <utility>
#include <variant>

#include "proxy/io_types.hpp"

namespace figshift::proxy {

class ClientStream {
 public:
  using Plain = TcpSocket;
  using Tls = boost::beast::ssl_stream<TcpSocket>;
  using executor_type = Plain::executor_type;

  // `tls` null: plain HTTP; else the listener's server context (outlives the stream).
  ClientStream(TcpSocket socket, boost::asio::ssl::context* tls)
      : stream_(make(std::move(socket), tls)) {}

  bool is_tls() const { return std::holds_alternative<Tls>(stream_); }
  Tls& tls() { return std::get<Tls>(stream_); }
  // The TCP layer: wait, cancel, shutdown and close.
  Plain& tcp() {
    if (auto* plain = std::get_if<Plain>(&stream_)) return *plain;
    return std::get<Tls>(stream_).next_layer();
  }
  executor_type get_executor() { return tcp().get_executor(); }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (auto* plain = std::get_if<Plain>(&stream_))
      return plain->async_read_some(buffers, std::forward<Handler>(handler));
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
