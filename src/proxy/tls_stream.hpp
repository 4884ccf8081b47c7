#pragma once
// TLS over one TCP socket, for both sides (a listener's client connections and
// upstream connections), in place of Asio's ssl::stream. OpenSSL reads
// ciphertext through a BIO of our own straight from the buffer the socket read
// filled, and writes it into a buffer that goes to the socket in one send: no
// BIO pair in between, so one copy less each way, and no per-connection ring
// buffers. An idle connection holds no buffers: release_idle_buffers() drops
// ours and OpenSSL's record buffers (SSL_free_buffers) when a client
// connection parks, so an idle keep-alive TLS connection costs its SSL object
// and session (~15 KiB) instead of Asio's ~73 KiB. A busy one keeps them, as
// a pooled upstream connection does (no allocation per record).
//
// It models AsyncReadStream/AsyncWriteStream. One read and one write may be
// pending at once (a tunnel does both); a handshake or a shutdown runs alone.
// Handlers are never called from inside the initiating call.
// Thread-safety: none (one session's, on its worker's thread). Lifetime: the
// stream must outlive its pending operations, as any Asio I/O object; it may be
// moved only while none is pending.

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>

#include "proxy/drained_read.hpp"
#include "proxy/io_types.hpp"

namespace figshift::proxy {

namespace tls_detail {

using error_code = boost::system::error_code;

// What an OpenSSL call left to do.
enum class Next {
  done,        // finished: `bytes` are the result
  need_input,  // read more ciphertext from the socket, then call again
  failed,      // `ec` says why
};

struct Step {
  Next next = Next::done;
  std::size_t bytes = 0;
  error_code ec;
};

// The connection's state: heap-held so that a move of the stream leaves
// pending operations' pointers valid.
class Core {
 public:
  Core(TcpSocket socket, boost::asio::ssl::context& context);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  TcpSocket socket;
  SSL* ssl = nullptr;

  // The OpenSSL steps. Output they make waits in the output buffer.
  Step handshake();
  Step read(boost::asio::mutable_buffer buffer);
  // Encrypts up to max_write_bytes of `buffers` (small pieces coalesced into
  // one record); `bytes` = plaintext taken.
  template <typename ConstBuffers>
  Step write(const ConstBuffers& buffers);
  Step shutdown();

  // Ciphertext input: where the socket read goes, and what it filled.
  boost::asio::mutable_buffer input_space();
  void input_filled(std::size_t bytes) { in_end_ = bytes; }
  // A failed socket read as the stream reports it: EOF without close_notify
  // is stream_truncated, as with Asio's ssl::stream.
  error_code input_error(error_code ec) const;

  // Ciphertext output: sends what the socket takes now (never waits). True
  // when nothing is left to wait for (or `ec` failed); false: send
  // output_to_write() asynchronously, then call output_written(). While such a
  // write is in flight, new output waits behind it and its writer sends it next.
  bool flush_now(error_code& ec);
  void send_best_effort();
  boost::asio::const_buffer output_to_write();
  void output_written();

  bool has_buffered_input() const;
  void release_idle_buffers();
  bool writing() const { return writing_; }

  // The BIO's side.
  std::size_t take_input(char* out, std::size_t size) {
    const std::size_t n = std::min(size, in_end_ - in_begin_);
    if (n == 0) return 0;  // in_ may not exist yet (memcpy from null is undefined even for 0)
    std::memcpy(out, in_.get() + in_begin_, n);
    in_begin_ += n;
    taken_ += n;
    return n;
  }
  void put_output(const char* data, std::size_t size) { out_.append(data, size); }

 private:
  Step encrypt(const void* data, std::size_t size);
  Step failure(int ssl_result);
  // Calls an OpenSSL step and notes whether it left part of a record inside
  // OpenSSL (SSL_has_pending does not count a consumed record header).
  template <typename Call>
  Step track(Call call);

  std::unique_ptr<char[]> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
  std::string out_;           // ciphertext not yet handed to the socket
  std::string sending_;       // ciphertext of the asynchronous write in flight
  std::size_t out_sent_ = 0;  // of out_, already sent by flush_now
  std::size_t taken_ = 0;     // input OpenSSL took during the current step
  bool partial_record_ = false;
  bool writing_ = false;   // sending_ is in flight
  std::string coalesced_;  // small write pieces joined into one record
};

// Plaintext taken by one write_some: big enough that a 64 KiB pump chunk is
// one send, small enough to bound the output buffer.
inline constexpr std::size_t max_write_bytes = 64 * 1024;
// Pieces up to this size are joined into one record (a head and a small body).
inline constexpr std::size_t coalesce_bytes = 16 * 1024;

template <typename ConstBuffers>
Step Core::write(const ConstBuffers& buffers) {
  namespace asio = boost::asio;
  const std::size_t total = asio::buffer_size(buffers);
  auto first = asio::buffer_sequence_begin(buffers);
  const auto end = asio::buffer_sequence_end(buffers);
  while (first != end && asio::const_buffer(*first).size() == 0) ++first;
  if (first == end) return {};
  if (total <= coalesce_bytes && asio::const_buffer(*first).size() < total) {
    coalesced_.resize(total);
    asio::buffer_copy(asio::buffer(coalesced_), buffers);
    return encrypt(coalesced_.data(), coalesced_.size());
  }
  Step step;
  for (auto it = first; it != end && step.bytes < max_write_bytes; ++it) {
    const asio::const_buffer piece(*it);
    const auto taken = encrypt(piece.data(), std::min(piece.size(), max_write_bytes - step.bytes));
    if (taken.next == Next::failed) return step.bytes ? step : taken;
    step.bytes += taken.bytes;
  }
  return step;
}

template <typename Call>
Step Core::track(Call call) {
  taken_ = 0;
  Step step = call();
  // Bytes taken without a record to show for them are a record's start,
  // buffered inside OpenSSL until the rest arrives; a finished record ends that.
  if (step.next == Next::need_input)
    partial_record_ = partial_record_ || taken_ > 0;
  else if (step.next == Next::done)
    partial_record_ = false;
  return step;
}

// The asynchronous operations: each runs its Core step, sends what the step
// made and reads ciphertext when the step needs it, until the step is done. A
// step that finished inside the initiating call completes through the executor.
enum class OpState { start, reading, writing, posted };

template <typename Stepper>
struct Op {
  Core* core;
  Stepper step;
  OpState state = OpState::start;
  Step result;

  template <typename Self>
  void operator()(Self& self, error_code ec = {}, std::size_t bytes = 0) {
    switch (state) {
      case OpState::posted:
        return complete(self);
      case OpState::reading:
        if (ec) return finish(self, {Next::failed, 0, core->input_error(ec)});
        core->input_filled(bytes);
        break;
      case OpState::writing:
        core->output_written();
        if (ec) return finish(self, {Next::failed, 0, ec});
        return send_then_continue(self);
      case OpState::start:
        break;
    }
    result = step(*core);
    send_then_continue(self);
  }

  // Output first: the peer may be waiting for our flight before it answers.
  template <typename Self>
  void send_then_continue(Self& self) {
    if (result.next == Next::failed || !Stepper::waits_to_send) {
      core->send_best_effort();  // an alert, or what a read made: see Core::read
    } else if (error_code ec; !core->flush_now(ec)) {
      state = OpState::writing;
      return boost::asio::async_write(core->socket, core->output_to_write(), std::move(self));
    } else if (ec) {
      result = {Next::failed, 0, ec};
    }
    if (result.next != Next::need_input) return finish(self, result);
    state = OpState::reading;
    async_read_some_drained(core->socket, core->input_space(), std::move(self));
  }

  template <typename Self>
  void finish(Self& self, Step step_result) {
    result = step_result;
    if (state != OpState::start) return complete(self);
    state = OpState::posted;
    boost::asio::post(std::move(self));
  }

  template <typename Self>
  void complete(Self& self) {
    if constexpr (Stepper::has_bytes)
      self.complete(result.ec, result.bytes);
    else
      self.complete(result.ec);
  }
};

// waits_to_send: the operation ends only when its output is on the socket.
// Only operations that run alone or are the one write may wait to send; a read
// (which may run beside a write) sends what it made only if the socket takes it now.
struct HandshakeStep {
  static constexpr bool has_bytes = false, waits_to_send = true;
  Step operator()(Core& core) const { return core.handshake(); }
};
struct ReadStep {
  static constexpr bool has_bytes = true, waits_to_send = false;
  boost::asio::mutable_buffer buffer;
  Step operator()(Core& core) const { return core.read(buffer); }
};
template <typename ConstBuffers>
struct WriteStep {
  static constexpr bool has_bytes = true, waits_to_send = true;
  ConstBuffers buffers;
  Step operator()(Core& core) const { return core.write(buffers); }
};
struct ShutdownStep {
  static constexpr bool has_bytes = false, waits_to_send = true;
  Step operator()(Core& core) const { return core.shutdown(); }
};

}  // namespace tls_detail

class TlsStream {
 public:
  using executor_type = TcpSocket::executor_type;
  using error_code = boost::system::error_code;
  enum class Role { client, server };

  TlsStream(TcpSocket socket, boost::asio::ssl::context& context)
      : core_(std::make_unique<tls_detail::Core>(std::move(socket), context)) {}

  SSL* native_handle() { return core_->ssl; }
  TcpSocket& next_layer() { return core_->socket; }
  executor_type get_executor() { return core_->socket.get_executor(); }

  // Bytes received but not yet read by the application (ciphertext or
  // plaintext): a wait for socket readability would not see them.
  bool has_buffered_input() const { return core_->has_buffered_input(); }
  // Between requests, with nothing buffered: give the buffers back.
  void release_idle_buffers() { core_->release_idle_buffers(); }

  template <typename Handler>
  auto async_handshake(Role role, Handler&& handler) {
    if (role == Role::server)
      SSL_set_accept_state(core_->ssl);
    else
      SSL_set_connect_state(core_->ssl);
    return run<void(error_code)>(tls_detail::HandshakeStep{}, std::forward<Handler>(handler));
  }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return run<void(error_code, std::size_t)>(tls_detail::ReadStep{first_buffer(buffers)},
                                              std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return run<void(error_code, std::size_t)>(tls_detail::WriteStep<ConstBuffers>{buffers},
                                              std::forward<Handler>(handler));
  }

  // The synchronous fast path of a write (see send_now.hpp): encrypts what
  // write_some would take of `wire` (consumed by that much) and sends what the
  // socket takes now. True: done (all of it sent, or `ec` failed). False: the
  // rest goes asynchronously: async_write of what is left of `wire`, or
  // async_flush() when nothing is left of it but ciphertext still waits.
  template <typename Wire>
  bool write_now(Wire& wire, error_code& ec) {
    if (core_->writing()) return false;  // behind a write in flight: keep the order
    const tls_detail::Step step = core_->write(wire);
    if (step.next == tls_detail::Next::failed) {
      core_->send_best_effort();  // an alert, if OpenSSL made one
      ec = step.ec;
      return true;
    }
    wire.consume(step.bytes);
    const bool sent = core_->flush_now(ec);
    return ec || (sent && wire.size() == 0);
  }

  // Sends the ciphertext that write_now() left; completes as a write of 0 bytes.
  template <typename Handler>
  auto async_flush(Handler&& handler) {
    return async_write_some(boost::asio::const_buffer(), std::forward<Handler>(handler));
  }

  // Sends close_notify and reads until the peer's (or EOF, or an error).
  template <typename Handler>
  auto async_shutdown(Handler&& handler) {
    return run<void(error_code)>(tls_detail::ShutdownStep{}, std::forward<Handler>(handler));
  }

 private:
  template <typename Signature, typename Stepper, typename Handler>
  auto run(Stepper step, Handler&& handler) {
    return boost::asio::async_compose<Handler, Signature>(
        tls_detail::Op<Stepper>{core_.get(), std::move(step), tls_detail::OpState::start, {}},
        handler, core_->socket);
  }

  template <typename MutableBuffers>
  static boost::asio::mutable_buffer first_buffer(const MutableBuffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it)
      if (boost::asio::mutable_buffer piece(*it); piece.size()) return piece;
    return {};
  }

  std::unique_ptr<tls_detail::Core> core_;
};

}  // namespace figshift::proxy
