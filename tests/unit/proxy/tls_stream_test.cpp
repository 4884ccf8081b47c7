// TlsStream over a real loopback TCP connection, both ends ours: the
// synchronous write path when the socket takes only part of the ciphertext
// (the integration tests cannot make loopback's send buffer small enough:
// the kernel sizes it from the 64 KiB loopback MSS).
#include "proxy/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// A P-256 key and a self-signed certificate for it, made in memory.
bool use_fresh_certificate(asio::ssl::context& context) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) return false;
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  const bool ok = X509_sign(cert, key, EVP_sha256()) > 0 &&
                  SSL_CTX_use_certificate(context.native_handle(), cert) == 1 &&
                  SSL_CTX_use_PrivateKey(context.native_handle(), key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

// Long enough for any of these exchanges; a test that would wait for bytes
// that never come fails at this deadline instead of hanging.
constexpr auto io_deadline = std::chrono::seconds(10);

std::string pattern(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 7 + (i >> 8)) & 0xff);
  return out;
}

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(use_fresh_certificate(server_context_));
    client_context_.set_verify_mode(asio::ssl::verify_none);
    TcpAcceptor acceptor(ioc_.get_executor(), {asio::ip::make_address("127.0.0.1"), 0});
    TcpSocket client(ioc_.get_executor());
    client.open(asio::ip::tcp::v4());
    // A small receive window (set before connect) and a small, fixed send
    // buffer: the socket takes a few KiB, not a 60 KB response.
    client.set_option(asio::socket_base::receive_buffer_size(4096));
    client.connect(acceptor.local_endpoint());
    TcpSocket server = acceptor.accept();
    server.set_option(asio::socket_base::send_buffer_size(4096));
    server_ = std::make_unique<TlsStream>(std::move(server), server_context_);
    client_ = std::make_unique<TlsStream>(std::move(client), client_context_);

    error_code server_ec = asio::error::would_block, client_ec = asio::error::would_block;
    server_->async_handshake(TlsStream::Role::server, [&](error_code ec) { server_ec = ec; });
    client_->async_handshake(TlsStream::Role::client, [&](error_code ec) { client_ec = ec; });
    ioc_.run_for(io_deadline);
    ioc_.restart();
    ASSERT_FALSE(server_ec) << server_ec.message();
    ASSERT_FALSE(client_ec) << client_ec.message();
  }

  // Reads exactly `n` plaintext bytes on the client side.
  std::string read_on_client(std::size_t n) {
    std::string got(n, '\0');
    error_code read_ec = asio::error::would_block;
    asio::async_read(*client_, asio::buffer(got),
                     [&](error_code ec, std::size_t) { read_ec = ec; });
    ioc_.run_for(io_deadline);
    ioc_.restart();
    EXPECT_FALSE(read_ec) << read_ec.message();
    return got;
  }

  asio::io_context ioc_;
  asio::ssl::context server_context_{asio::ssl::context::tls_server};
  asio::ssl::context client_context_{asio::ssl::context::tls_client};
  std::unique_ptr<TlsStream> server_, client_;
};

TEST_F(TlsStreamTest, WriteNowSendsASmallMessageAtOnce) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", body = "hello";
  HeadAndBody wire(head, body);
  error_code ec;
  EXPECT_TRUE(server_->write_now(wire, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(wire.size(), 0u);
  EXPECT_EQ(read_on_client(head.size() + body.size()), head + body);
}

TEST_F(TlsStreamTest, CiphertextTheSocketDidNotTakeGoesOutWithAsyncFlush) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n",
                    body = pattern(60000);
  HeadAndBody wire(head, body);
  error_code ec;
  // All of it is encrypted (under the 64 KiB a write takes), not all sent.
  EXPECT_FALSE(server_->write_now(wire, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(wire.size(), 0u);

  error_code flush_ec = asio::error::would_block;
  std::size_t flushed = 1;
  server_->async_flush([&](error_code e, std::size_t n) { flush_ec = e, flushed = n; });
  EXPECT_EQ(read_on_client(head.size() + body.size()), head + body);
  EXPECT_FALSE(flush_ec) << flush_ec.message();
  EXPECT_EQ(flushed, 0u);  // it wrote no more plaintext: write_now had taken it all

  // The stream goes on: the next message follows in order.
  HeadAndBody next(std::string_view("next"), std::string_view());
  EXPECT_TRUE(server_->write_now(next, ec));
  EXPECT_EQ(read_on_client(4), "next");
}

TEST_F(TlsStreamTest, WriteNowTakesAtMostOneWritesWorthAndLeavesTheRest) {
  const std::string body = pattern(200000);
  HeadAndBody wire(std::string_view(), body);
  error_code ec;
  EXPECT_FALSE(server_->write_now(wire, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(wire.size(), body.size() - tls_detail::max_write_bytes);
  // The rest by an ordinary asynchronous write, behind the ciphertext waiting.
  error_code write_ec = asio::error::would_block;
  asio::async_write(*server_, wire, [&](error_code e, std::size_t) { write_ec = e; });
  EXPECT_EQ(read_on_client(body.size()), body);
  EXPECT_FALSE(write_ec) << write_ec.message();
}

}  // namespace
}  // namespace figshift::proxy
