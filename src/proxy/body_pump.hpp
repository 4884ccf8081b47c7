#pragma once
// Moves one message body, or one direction of a tunnel, from a source stream
// to a sink stream through one fixed buffer. It reads again only once the sink
// has taken the previous piece: memory does not depend on the body's size, and
// a slow reader slows the writer down to its pace (flow control). Every piece
// is written as soon as it is read, so a server-sent event or one line of an
// NDJSON stream reaches the client when the upstream sends it.
//
// The source's framing decides where the body ends: a Content-Length (raw
// bytes, counted), chunked (decoded by Beast's parser), the connection's end
// (a response without a length; a tunnel). The sink's framing is as read, or
// re-framed as chunked (one chunk per piece, then the last chunk; trailers are
// not passed on). Bytes past the body's end stay in the source's buffer (a
// pipelined request).
//
// Thread-safety: none; one session's, on its worker's thread. Lifetime: owned
// by its session, which passes itself as `owner` to start(): every pending
// handler holds it, so the pump outlives its operations (the pump itself keeps
// only a weak reference, so that a handler destroyed unrun frees the session).

#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "proxy/byte_stream.hpp"
#include "proxy/exchange.hpp"

namespace figshift::proxy {

class BodyPump {
 public:
  using error_code = boost::system::error_code;
  using ms = std::chrono::milliseconds;

  enum class End : std::uint8_t {
    complete,        // the body ended by its framing (a tunnel: the source closed) and was written
    source_closed,   // the source closed before its framing said the body ended: truncated
    source_failed,   // a read failed, or the chunk framing was malformed
    too_large,       // past `limit`
    sink_failed,     // a write failed: the reader went away
    source_timeout,  // nothing (or too little) arrived in time
    sink_timeout,    // the reader took nothing in time
  };

  class Listener {
   public:
    // Called once per start(), on the worker's thread, with the owner still held.
    virtual void on_pump_end(BodyPump& pump, End end, error_code ec) = 0;

   protected:
    ~Listener() = default;
  };

  struct Spec {
    enum class Read : std::uint8_t { length, chunked, until_close };
    ByteStream* source = nullptr;
    boost::beast::flat_buffer* source_buffer = nullptr;  // read first: bytes already received
    ByteStream* sink = nullptr;
    Read read = Read::until_close;
    std::uint64_t length = 0;  // Read::length: the body's
    // Read::chunked: the parser, its head read, that decodes the chunks (one of the two).
    RequestBodyParser* request_parser = nullptr;
    ResponseBodyParser* response_parser = nullptr;
    std::uint64_t limit = 0;  // most bytes of body (0: none); Read::chunked: the parser's
    bool chunked_output = false;
    // Written to the sink before the body (a response head): at once, not with
    // the first piece, so a client sees the head of an event stream before its first event.
    boost::asio::const_buffer prefix;
    // Bytes taken from the source are added here as they go (a tunnel's counter).
    std::uint64_t* counter = nullptr;
    // Each wait for the source / the sink (0: none; a tunnel's idle time is its session's).
    ms read_timeout{0};
    ms write_timeout{0};
    // A source must also average this many bytes per second once read_timeout
    // has passed (0: no minimum): a slow drip is cut off like a stall.
    std::uint64_t min_bytes_per_s = 0;
  };

  BodyPump(Listener& listener, std::size_t buffer_bytes);

  void start(const Spec& spec, std::shared_ptr<void> owner);
  bool running() const { return running_; }
  // Body bytes taken from the source so far (not counting chunk framing).
  std::uint64_t bytes() const { return bytes_; }
  std::chrono::steady_clock::time_point last_progress() const { return last_progress_; }
  // Called by the session's tick: past the deadline, the pending read or write
  // is cancelled and the pump ends with source_timeout or sink_timeout.
  void on_tick(std::chrono::steady_clock::time_point now);
  // Ends the pump early: its pending operation fails (the session closes the sockets).
  void abandon() { abandoned_ = true; }

 private:
  void do_read();
  template <typename Parser>
  void read_chunks(Parser& parser);
  void on_read(error_code ec, std::size_t n);
  void do_write(std::size_t n);
  void on_write(error_code ec, std::size_t);
  bool source_done() const;
  void end(End end, error_code ec);
  void arm(ms timeout, std::chrono::steady_clock::time_point cap);

  Listener& listener_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_;
  Spec spec_;
  // Weak, as in UpstreamRequest: only pending handlers hold the session.
  std::weak_ptr<void> owner_;
  bool running_ = false;
  std::uint64_t bytes_ = 0;
  std::uint64_t remaining_ = 0;  // Read::length
  bool eof_ = false;             // the source closed where that ends the body
  bool reading_ = false;
  bool timed_out_ = false;
  bool abandoned_ = false;
  bool prefix_pending_ = false;
  char chunk_size_[20];  // a chunk's size line (hex, CRLF)
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_progress_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

}  // namespace figshift::proxy
