#pragma once
// The buffers of one request/response exchange. A session holds one only while
// a request is in flight (or unread bytes wait), so an idle keep-alive
// connection costs none of it, not even a read buffer;
// each worker recycles them (ExchangePool), so the steady state allocates no
// head strings or parsers. Thread-safety: none; one worker's only.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {

struct Exchange {
  // The client's bytes. A session gives its Exchange back only when this holds
  // nothing unread (no pipelined request), so no byte is ever lost.
  boost::beast::flat_buffer read_buffer;
  std::optional<http::request_parser<http::string_body>> request_parser;
  std::string upstream_head;  // the request head sent upstream
  std::string response_head;  // the response head sent to the client
  Response response;          // what the client gets (its body is sent as is)
  std::optional<http::response_parser<http::string_body>> upstream_parser;

  // Ready for the next request; keeps capacity (unless a buffer grew unusually large).
  void reset() {
    response = {};
    request_parser.reset();
    upstream_parser.reset();
    for (auto* head : {&upstream_head, &response_head})
      if (head->capacity() > max_kept_bytes) std::string().swap(*head);
    if (read_buffer.size() == 0 && read_buffer.capacity() > max_kept_bytes)
      read_buffer.shrink_to_fit();
  }

  static constexpr std::size_t max_kept_bytes = 16 * 1024;
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
