#include "proxy/body_pump.hpp"

#include <algorithm>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <string_view>
#include <utility>

#include "proxy/chunk_framing.hpp"
#include "proxy/coarse_clock.hpp"

namespace figshift::proxy {
namespace {

namespace asio = boost::asio;

// Up to four pieces of one write, empty ones left out. Not a std::array: see HeadAndBody.
struct WriteParts {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  void add(asio::const_buffer b) {
    if (b.size() > 0) parts[count++] = b;
  }
  void add(std::string_view s) { add(asio::buffer(s.data(), s.size())); }
  const_iterator begin() const { return parts; }
  const_iterator end() const { return parts + count; }
  asio::const_buffer parts[4];
  std::size_t count = 0;
};

// The end of a read that stops a body short of its framing: the peer closed or reset.
bool is_truncation(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == http::error::partial_message ||
         ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

BodyPump::BodyPump(Listener& listener, std::size_t buffer_bytes)
    : listener_(listener), capacity_(buffer_bytes) {}

void BodyPump::start(const Spec& spec, std::shared_ptr<void> owner) {
  spec_ = spec;
  owner_ = owner;
  running_ = true;
  // Held only while running: a kept-alive connection that streamed once keeps no buffer.
  if (!buffer_) buffer_ = std::make_unique<char[]>(capacity_);
  bytes_ = 0;
  remaining_ = spec.read == Spec::Read::length ? spec.length : 0;
  eof_ = reading_ = timed_out_ = abandoned_ = false;
  prefix_pending_ = spec.prefix.size() > 0;
  started_ = last_progress_ = std::chrono::steady_clock::now();
  // The prefix goes first, on its own; a body that ended already needs only its end.
  if (prefix_pending_ || source_done()) return do_write(0);
  do_read();
}

bool BodyPump::source_done() const {
  switch (spec_.read) {
    case Spec::Read::length:
      return remaining_ == 0;
    case Spec::Read::chunked:
      return spec_.request_parser ? spec_.request_parser->is_done()
                                  : spec_.response_parser->is_done();
    case Spec::Read::until_close:
      return eof_;
  }
  return true;
}

void BodyPump::arm(ms timeout, std::chrono::steady_clock::time_point cap) {
  // A tick that passed an earlier deadline just as its operation completed
  // cancelled nothing: that operation succeeded, and this one is judged afresh.
  timed_out_ = false;
  if (timeout.count() == 0) {
    deadline_ = std::chrono::steady_clock::time_point::max();
    return;
  }
  deadline_ = std::min(coarse_now() + timeout, cap);
}

void BodyPump::on_tick(std::chrono::steady_clock::time_point now) {
  if (!running_ || now < deadline_) return;
  timed_out_ = true;
  deadline_ = std::chrono::steady_clock::time_point::max();
  error_code ignored;
  (reading_ ? spec_.source : spec_.sink)->tcp().cancel(ignored);
}

void BodyPump::do_read() {
  reading_ = true;
  auto cap = std::chrono::steady_clock::time_point::max();
  if (spec_.min_bytes_per_s > 0)  // the time the bytes so far allow at the minimum rate
    cap = started_ + spec_.read_timeout +
          std::chrono::milliseconds(bytes_ * 1000 / spec_.min_bytes_per_s);
  arm(spec_.read_timeout, cap);

  if (spec_.read == Spec::Read::chunked) {
    if (spec_.request_parser) return read_chunks(*spec_.request_parser);
    return read_chunks(*spec_.response_parser);
  }

  std::size_t want = capacity_;
  if (spec_.read == Spec::Read::length)
    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, remaining_));
  // Bytes that came with the head (or the 101) are the body's first: no system call.
  if (auto& received = *spec_.source_buffer; received.size() > 0) {
    const auto n = asio::buffer_copy(asio::buffer(buffer_.get(), want), received.data());
    received.consume(n);
    return on_read({}, n);
  }
  spec_.source->async_read_some(
      asio::buffer(buffer_.get(), want),
      [this, owner = owner_.lock()](error_code ec, std::size_t n) { on_read(ec, n); });
}

template <typename Parser>
void BodyPump::read_chunks(Parser& parser) {
  auto& body = parser.get().body();
  body.data = buffer_.get();
  body.size = capacity_;
  body.more = true;
  http::async_read_some(*spec_.source, *spec_.source_buffer, parser,
                        [this, &parser, owner = owner_.lock()](error_code ec, std::size_t) {
                          // need_buffer: the buffer is full, which is what was asked for.
                          if (ec == http::error::need_buffer) ec = {};
                          on_read(ec, capacity_ - parser.get().body().size);
                        });
}

void BodyPump::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (abandoned_) return end(End::source_failed, ec ? ec : asio::error::operation_aborted);
  if (ec) {
    if (timed_out_) return end(End::source_timeout, ec);
    if (ec == asio::error::eof && spec_.read == Spec::Read::until_close) {
      eof_ = true;  // the end of a body (or a tunnel direction) that the close delimits
      return do_write(0);
    }
    if (ec == http::error::body_limit) return end(End::too_large, ec);
    if (is_truncation(ec)) return end(End::source_closed, ec);
    return end(End::source_failed, ec);
  }
  bytes_ += n;
  if (spec_.counter) *spec_.counter += n;
  if (spec_.read == Spec::Read::length) remaining_ -= n;
  if (spec_.limit > 0 && bytes_ > spec_.limit) return end(End::too_large, http::error::body_limit);
  last_progress_ = coarse_now();
  do_write(n);
}

void BodyPump::do_write(std::size_t n) {
  const bool last = source_done();
  WriteParts parts;
  if (std::exchange(prefix_pending_, false)) parts.add(spec_.prefix);
  if (spec_.chunked_output) {
    const auto frame = frame_chunk(std::string_view(buffer_.get(), n), last, chunk_size_);
    for (std::size_t i = 0; i < frame.count; ++i) parts.add(frame.parts[i]);
  } else {
    parts.add(asio::buffer(buffer_.get(), n));
  }
  if (parts.count == 0) {
    if (last) return end(End::complete, {});
    return do_read();  // e.g. a read that took only a chunk's size line
  }
  arm(spec_.write_timeout, std::chrono::steady_clock::time_point::max());
  asio::async_write(*spec_.sink, parts,
                    [this, owner = owner_.lock()](error_code ec, std::size_t) { on_write(ec, 0); });
}

void BodyPump::on_write(error_code ec, std::size_t) {
  if (abandoned_) return end(End::sink_failed, ec ? ec : asio::error::operation_aborted);
  if (ec) return end(timed_out_ ? End::sink_timeout : End::sink_failed, ec);
  last_progress_ = coarse_now();
  if (source_done()) return end(End::complete, {});
  do_read();
}

void BodyPump::end(End end, error_code ec) {
  deadline_ = std::chrono::steady_clock::time_point::max();
  buffer_.reset();  // nothing is pending on it now
  running_ = false;
  auto owner = owner_.lock();  // the session stays alive through the call
  listener_.on_pump_end(*this, end, ec);
}

}  // namespace figshift::proxy
