#pragma once
// The buffers of one request/response exchange. A session holds one only while
// a request is in flight, so an idle keep-alive connection costs none of it;
// each worker recycles them (ExchangePool), so the steady state allocates no
// head strings or parsers. Thread-safety: none; one worker's only.

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {

struct Exchange {
  std::string upstream_head;  // the request head sent upstream
  std::string response_head;  // the response head sent to the client
  Response response;          // what the client gets (its body is sent as is)
  std::optional<http::response_parser<http::string_body>> upstream_parser;
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

  // Keeps the head strings' capacity (unless one grew unusually large); drops bodies.
  void give(std::unique_ptr<Exchange> exchange) {
    if (!exchange || idle_.size() >= max_idle_) return;
    exchange->response = {};
    exchange->upstream_parser.reset();
    for (auto* head : {&exchange->upstream_head, &exchange->response_head})
      if (head->capacity() > max_kept_head_bytes) std::string().swap(*head);
    idle_.push_back(std::move(exchange));
  }

 private:
  static constexpr std::size_t max_kept_head_bytes = 16 * 1024;
  std::size_t max_idle_;
  std::vector<std::unique_ptr<Exchange>> idle_;
};

}  // namespace figshift::proxy
