#include "proxy/tls_stream.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/ssl/error.hpp>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

namespace figshift::proxy::tls_detail {
namespace asio = boost::asio;

namespace {

// Ciphertext read per receive: a full TLS record and its header, as Asio's
// ssl::stream reads.
constexpr std::size_t input_bytes = 17 * 1024;
// Output capacity kept after a flush; a bigger buffer (a streamed chunk) is
// given back rather than held by an idle connection.
constexpr std::size_t kept_output_bytes = 16 * 1024;

// SSL_get_error needs an empty error queue before each call. Clearing an empty
// queue walks all of its slots (2 % of a kept-alive TLS request's CPU); looking costs less.
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

Core* core_of(BIO* bio) {
  return static_cast<Core*>(BIO_get_data(bio));
}

// The BIO between OpenSSL and the Core: reads come out of the input buffer,
// writes go into the output buffer. It never touches the socket itself, so
// OpenSSL never blocks and never sees a system call's error.
BIO_METHOD* bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "figshift tls");
    if (!m) throw std::bad_alloc();
    BIO_meth_set_write_ex(m, [](BIO* bio, const char* data, std::size_t size, std::size_t* done) {
      try {
        core_of(bio)->put_output(data, size);
      } catch (const std::bad_alloc&) {
        return 0;  // OpenSSL reports a failed write; an exception must not cross C
      }
      *done = size;
      return 1;
    });
    BIO_meth_set_read_ex(m, [](BIO* bio, char* out, std::size_t size, std::size_t* done) {
      BIO_clear_retry_flags(bio);
      *done = core_of(bio)->take_input(out, size);
      if (*done) return 1;
      BIO_set_retry_read(bio);  // SSL_ERROR_WANT_READ: the Core reads the socket
      return 0;
    });
    BIO_meth_set_ctrl(m, [](BIO*, int command, long, void*) -> long {
      return command == BIO_CTRL_FLUSH ? 1 : 0;  // output is sent by the Core
    });
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

}  // namespace

Core::Core(TcpSocket s, asio::ssl::context& context) : socket(std::move(s)) {
  ssl = SSL_new(context.native_handle());
  BIO* bio = ssl ? BIO_new(bio_method()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by the SSL from here on
  // AUTO_RETRY (OpenSSL's default, made explicit): SSL_read handles
  // post-handshake messages itself and reads on; see input_space().
  SSL_set_mode(ssl, SSL_MODE_AUTO_RETRY);
  // A TLS 1.2 peer asking to renegotiate is told no (a warning alert; the
  // connection goes on): this stream does not write while a handshake runs
  // inside a read. Here, not in each context, since it is the stream's rule.
  SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
}

Core::~Core() {
  SSL_free(ssl);
}

Step Core::failure(int ssl_result) {
  switch (SSL_get_error(ssl, ssl_result)) {
    case SSL_ERROR_WANT_READ:
      return {Next::need_input, 0, {}};
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end
      return {Next::failed, 0, asio::error::eof};
    default:
      break;
  }
  // Asio's convention, which the sessions test for (e.g. SSL_R_HTTP_REQUEST).
  if (const unsigned long error = ERR_get_error())
    return {Next::failed, 0, error_code(static_cast<int>(error), asio::error::get_ssl_category())};
  return {Next::failed, 0, asio::ssl::error::stream_truncated};
}

Step Core::handshake() {
  clear_errors();
  const int r = SSL_do_handshake(ssl);
  return r == 1 ? Step{} : failure(r);
}

Step Core::read(asio::mutable_buffer buffer) {
  if (buffer.size() == 0) return {};
  clear_errors();
  return track([&] {
    std::size_t bytes = 0;
    const int r = SSL_read_ex(ssl, buffer.data(), buffer.size(), &bytes);
    // A read may make output too (the answer to a KeyUpdate); it goes out with
    // the op's best-effort send, else behind the next write.
    return r == 1 ? Step{Next::done, bytes, {}} : failure(r);
  });
}

Step Core::encrypt(const void* data, std::size_t size) {
  clear_errors();
  std::size_t bytes = 0;
  const int r = SSL_write_ex(ssl, data, size, &bytes);
  if (r == 1) return {Next::done, bytes, {}};
  auto step = failure(r);
  // Only a TLS 1.2 renegotiation makes a write wait for input, and a read may
  // be pending beside it: refused rather than two reads into one buffer.
  if (step.next == Next::need_input) return {Next::failed, 0, asio::error::operation_not_supported};
  return step;
}

Step Core::shutdown() {
  if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
    clear_errors();
    const int r = SSL_shutdown(ssl);
    if (r == 1) return {};  // the peer's close_notify had come already
    if (r < 0) return failure(r);
  }
  // Ours is queued; read until the peer's. Data still in flight is dropped:
  // nobody will read it.
  char discard[512];
  for (;;) {
    clear_errors();
    std::size_t bytes = 0;
    const int r = SSL_read_ex(ssl, discard, sizeof discard, &bytes);
    if (r == 1) continue;
    auto step = failure(r);
    if (step.ec == asio::error::eof) return {};
    return step;
  }
}

asio::mutable_buffer Core::input_space() {
  // Only asked for after OpenSSL wanted more than our BIO had: nothing unread
  // is dropped here (AUTO_RETRY keeps OpenSSL reading past post-handshake
  // messages instead of returning with records left in in_).
  assert(in_begin_ == in_end_);
  if (!in_) in_ = std::make_unique<char[]>(input_bytes);
  in_begin_ = in_end_ = 0;
  return {in_.get(), input_bytes};
}

error_code Core::input_error(error_code ec) const {
  if (ec != asio::error::eof) return ec;
  return (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) ? ec : asio::ssl::error::stream_truncated;
}

bool Core::flush_now(error_code& ec) {
  // Behind a write in flight: its writer sends this next (order is kept).
  if (writing_) return true;
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(socket.native_handle(), out_.data() + out_sent_,
                             out_.size() - out_sent_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      out_sent_ += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    ec = error_code(errno, asio::error::get_system_category());
    break;
  }
  out_sent_ = 0;
  if (out_.capacity() > kept_output_bytes)
    std::string().swap(out_);
  else
    out_.clear();
  return true;
}

void Core::send_best_effort() {
  error_code ignored;
  flush_now(ignored);  // what the socket does not take now stays queued
}

asio::const_buffer Core::output_to_write() {
  sending_.assign(out_, out_sent_);
  out_.clear();
  out_sent_ = 0;
  writing_ = true;
  return asio::buffer(sending_);
}

void Core::output_written() {
  writing_ = false;
  std::string().swap(sending_);  // the slow-peer case: do not keep its size
}

bool Core::has_buffered_input() const {
  return in_begin_ < in_end_ || partial_record_ || SSL_has_pending(ssl);
}

void Core::release_idle_buffers() {
  if (in_begin_ == in_end_) in_.reset();
  if (out_.empty()) std::string().swap(out_);
  std::string().swap(coalesced_);
  // OpenSSL's record buffers, when they hold nothing. Never with part of a
  // record inside: OpenSSL before 3.0.14 freed that too (CVE-2024-4741).
  if (!partial_record_) SSL_free_buffers(ssl);
}

}  // namespace figshift::proxy::tls_detail
