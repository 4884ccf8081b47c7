#pragma once
// The buffers of one request/response exchange. A session holds one only while
// a request is in flight (or unread bytes wait), so an idle keep-alive
// connection costs none of it, not even a read buffer;
// each worker recycles them (ExchangePool), and the parsed messages live in
// the exchange's arena, so the steady state calls malloc for no head, field or
// body. Thread-safety: none; one worker's only.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {

using RequestParser = http::request_parser<Body, Allocator>;
using ResponseParser = http::response_parser<Body, Allocator>;

struct Exchange {
  // What the parsers allocate (each field, each body) comes from here: a bump
  // allocator over arena_block that spills to the heap only for a head or body
  // larger than the block, and is emptied at once by reset(). First, so that
  // it outlives the parsers.
  alignas(std::max_align_t) std::byte arena_block[4096];
  std::pmr::monotonic_buffer_resource arena{arena_block, sizeof arena_block};

  // The client's bytes. A session gives its Exchange back only when this holds
  // nothing unread (no pipelined request), so no byte is ever lost.
  boost::beast::flat_buffer read_buffer;
  std::optional<RequestParser> request_parser;
  std::string upstream_head;  // the request head sent upstream
  std::string response_head;  // the response head sent to the client
  // Its message is what the client gets, once read whole (no copy is made).
  std::optional<ResponseParser> upstream_parser;
  Response own_response;  // one of the proxy's own (an error, a redirect)
  // What the client gets (its body is sent as is): own_response or the
  // upstream's; null until one is chosen.
  const Response* response = nullptr;

  RequestParser& start_request() {
    return request_parser.emplace(std::piecewise_construct, in_arena(), in_arena());
  }
  ResponseParser& start_upstream_response() {
    return upstream_parser.emplace(std::piecewise_construct, in_arena(), in_arena());
  }
  const Response& respond_with(Response own) {
    own_response = std::move(own);
    return *(response = &own_response);
  }

  // Ready for the next request; keeps capacity (unless a buffer grew unusually large).
  void reset() {
    response = nullptr;
    own_response = {};
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
  std::tuple<Allocator> in_arena() { return std::tuple<Allocator>(Allocator(&arena)); }
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
