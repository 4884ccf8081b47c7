#include "proxy/client_connection.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>

#include "proxy/coarse_clock.hpp"

namespace figshift::proxy {
namespace {

namespace asio = boost::asio;
constexpr std::size_t linger_buffer_bytes = 4096;

}  // namespace

ClientConnection::ClientConnection(TcpSocket socket, asio::ssl::context* tls,
                                   const std::vector<IpNetwork>& trusted_proxies)
    : stream_(std::move(socket), tls) {
  error_code ec;
  auto remote = stream_.tcp().remote_endpoint(ec);
  if (ec) return;
  auto address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  ip_ = address.to_string();
  if (trusted_proxies.empty()) return;
  const auto v6 = address.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4())
                                  : address.to_v6();
  const auto bytes = v6.to_bytes();
  trusted_peer_ = std::any_of(trusted_proxies.begin(), trusted_proxies.end(),
                              [&](const IpNetwork& n) { return n.contains(bytes); });
}

ClientConnection::time_point ClientConnection::arm(std::chrono::milliseconds timeout) {
  const auto now = coarse_now();
  deadline_ = now + timeout;
  timed_out_ = false;
  return now;
}

ClientConnection::error_code ClientConnection::timed(error_code ec) const {
  // Past the deadline any failure is the deadline's doing: its cancel ends the
  // operation with operation_aborted.
  if (timed_out_ && ec) return boost::beast::error::timeout;
  return ec;
}

void ClientConnection::on_tick(time_point now) {
  if (now < deadline_) return;
  timed_out_ = true;
  cancel();
}

void ClientConnection::cancel() {
  error_code ignored;
  stream_.tcp().cancel(ignored);
}

void ClientConnection::linger(std::chrono::milliseconds write_timeout,
                              std::chrono::milliseconds read_timeout, std::shared_ptr<void> owner) {
  if (stream_.is_tls()) {
    // TLS ends with close_notify both ways; the peer's close_notify, EOF, a
    // reset or the deadline: done either way.
    arm(write_timeout);
    return stream_.tls().async_shutdown([this, owner](error_code) { close(); });
  }
  error_code ec;
  stream_.tcp().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) return close();
  arm(read_timeout);
  linger_buffer_ = std::make_unique<char[]>(linger_buffer_bytes);
  do_linger_read(std::move(owner));
}

void ClientConnection::do_linger_read(std::shared_ptr<void> owner) {
  stream_.async_read_some(asio::buffer(linger_buffer_.get(), linger_buffer_bytes),
                          [this, owner](error_code ec, std::size_t) {
                            // EOF, timeout or reset: the client is done either way.
                            if (ec) return close();
                            do_linger_read(std::move(owner));
                          });
}

void ClientConnection::close() {
  deadline_ = time_point::max();
  linger_buffer_.reset();
  error_code ec;
  stream_.tcp().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_.tcp().close(ec);
}

}  // namespace figshift::proxy
