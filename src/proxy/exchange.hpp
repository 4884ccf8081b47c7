#pragma once
// The buffers of one request/response exchange. A session holds one only while
// a request is in flight (or unread bytes wait), so an idle keep-alive
// connection costs none of it, not even a read buffer;
// each worker recycles them (ExchangePool), and the parsed messages live in
// the exchange's arena, so the steady state calls malloc for no head, field or
// body. Thread-safety: none; one worker's only.

#include <array>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <limits>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/body_budget.hpp"
#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {

using RequestParser = http::request_parser<Body, Allocator>;
using ResponseParser = http::response_parser<Body, Allocator>;
// A chunked body is decoded through these, into the body pump's buffer: the
// parsers above, converted after their head (Beast moves the head over).
using RequestBodyParser = http::request_parser<http::buffer_body, Allocator>;
using ResponseBodyParser = http::response_parser<http::buffer_body, Allocator>;

#if defined(__SANITIZE_ADDRESS__)  // GCC, and Clang since 9 with -fsanitize=address
#define FIGSHIFT_EXCHANGE_ARENA_ON_HEAP 1
#endif

struct Exchange {
#ifdef FIGSHIFT_EXCHANGE_ARENA_ON_HEAP
  // Every arena allocation from the heap, freed by reset(): AddressSanitizer
  // then reports a message used after its exchange was reset.
  static constexpr std::size_t inline_bytes = 0;
#else
  static constexpr std::size_t inline_bytes = 4096;
#endif
  // What the parsers allocate (each field, each body) comes from here: a bump
  // allocator over arena_block, which spills to the heap once the exchange's
  // messages outgrow it (a large head or body) and is emptied at once by
  // reset(); space freed before then is not reused (a growing body leaves its
  // smaller copies until the end). First, so that it outlives the parsers.
  alignas(std::max_align_t) std::array<std::byte, inline_bytes> arena_block;
  std::pmr::monotonic_buffer_resource arena = make_arena(arena_block);

  // The client's bytes. A session gives its Exchange back only when this holds
  // nothing unread (no pipelined request), so no byte is ever lost.
  boost::beast::flat_buffer read_buffer;
  std::optional<RequestParser> request_parser;
  std::string upstream_head;  // the request head sent upstream
  std::string response_head;  // the response head sent to the client
  // Its message is what the client gets, once read whole (no copy is made).
  std::optional<ResponseParser> upstream_parser;
  // A chunked body being streamed: the parser above, moved here after its head.
  std::optional<RequestBodyParser> request_body_parser;
  std::optional<ResponseBodyParser> upstream_body_parser;
  Response own_response;  // one of the proxy's own (an error, a redirect)
  // What the client gets (its body is sent as is): own_response or the
  // upstream's; null until one is chosen.
  const Response* response = nullptr;
  unsigned interim_responses = 0;  // 1xx skipped before the upstream's real response
  BodyBudget::Lease body_lease;    // the request body's bytes, reserved before it is read

  RequestParser& start_request() {
    return request_parser.emplace(std::piecewise_construct, in_arena(), in_arena());
  }
  ResponseParser& start_upstream_response() {
    return upstream_parser.emplace(std::piecewise_construct, in_arena(), in_arena());
  }
  // The request's head, wherever its parser is now.
  const http::request_header<Fields>& request_head() const {
    if (request_body_parser) return request_body_parser->get().base();
    return request_parser->get().base();
  }
  RequestBodyParser& stream_request_body() {
    request_body_parser.emplace(std::move(*request_parser));
    request_parser.reset();
    return *request_body_parser;
  }
  ResponseBodyParser& stream_upstream_body() {
    upstream_body_parser.emplace(std::move(*upstream_parser));
    upstream_parser.reset();
    return *upstream_body_parser;
  }
  const Response& respond_with(Response own) {
    own_response = std::move(own);
    return *(response = &own_response);
  }

  // Ready for the next request; keeps capacity (unless a buffer grew unusually large).
  void reset() {
    response = nullptr;
    interim_responses = 0;
    body_lease.reset();
    own_response = {};
    request_body_parser.reset();
    upstream_body_parser.reset();
    read_buffer.max_size(std::numeric_limits<std::size_t>::max());  // bounded while chunks stream
    request_parser.reset();
    upstream_parser.reset();
    arena.release();  // after every message that lived in it is gone
    for (auto* head : {&upstream_head, &response_head})
      if (head->capacity() > max_kept_bytes) std::string().swap(*head);
    if (read_buffer.size() == 0 && read_buffer.capacity() > max_kept_bytes)
      read_buffer.shrink_to_fit();
  }

  static constexpr std::size_t max_kept_bytes = 16 * 1024;

 private:
  // The arguments that make a parser's message (its body, then its fields) allocate here.
  std::tuple<Allocator> in_arena() {
    return std::tuple<Allocator>(Allocator(&arena));
  }
  static std::pmr::monotonic_buffer_resource make_arena(
      std::array<std::byte, inline_bytes>& block) {
    if constexpr (inline_bytes == 0)
      return std::pmr::monotonic_buffer_resource();
    else
      return std::pmr::monotonic_buffer_resource(block.data(), block.size());
  }
};

class ExchangePool {
 public:
  explicit ExchangePool(std::size_t max_idle) : max_idle_(max_idle) {}

  std::unique_ptr<Exchange> take() {
    if (idle_.empty()) return std::make_unique<Exchange>();
    auto exchange = std::move(idle_.back());
    idle_.pop_back();
    return exchange;
  }

  // What its read_buffer still holds is dropped: a session gives it back between
  // requests only when empty, or when its connection is over.
  void give(std::unique_ptr<Exchange> exchange) {
    if (!exchange || idle_.size() >= max_idle_) return;
    exchange->read_buffer.clear();
    exchange->reset();
    idle_.push_back(std::move(exchange));
  }

 private:
  std::size_t max_idle_;
  std::vector<std::unique_ptr<Exchange>> idle_;
};

}  // namespace figshift::proxy
