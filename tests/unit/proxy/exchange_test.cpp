// ExchangePool: what a session gives back is clean for the next connection,
// whatever state the last one left it in (a regression: a client cut off
// mid-head left its bytes for the next connection, which then got a 400).
#include "proxy/exchange.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <string>

namespace figshift::proxy {
namespace {

void put(boost::beast::flat_buffer& buffer, std::string_view bytes) {
  auto out = buffer.prepare(bytes.size());
  boost::asio::buffer_copy(out, boost::asio::buffer(bytes.data(), bytes.size()));
  buffer.commit(bytes.size());
}

TEST(ProxyExchangePool, AGivenBackExchangeHoldsNothingOfTheLastConnection) {
  ExchangePool pool(4);
  auto exchange = pool.take();
  put(exchange->read_buffer, "GET /orders/1 HTTP/1.1\r\nHost: x\r\n");  // a head cut off
  auto& parser = exchange->request_parser.emplace();
  boost::beast::error_code ec;
  parser.put(exchange->read_buffer.data(), ec);
  exchange->upstream_parser.emplace();
  exchange->response.body() = "a response body";
  Exchange* given = exchange.get();
  pool.give(std::move(exchange));

  auto again = pool.take();
  ASSERT_EQ(again.get(), given) << "the pool should recycle the exchange";
  EXPECT_EQ(again->read_buffer.size(), 0u)
      << boost::beast::buffers_to_string(again->read_buffer.data());
  EXPECT_FALSE(again->request_parser.has_value());
  EXPECT_FALSE(again->upstream_parser.has_value());
  EXPECT_TRUE(again->response.body().empty());
}

TEST(ProxyExchangePool, AnUnusuallyLargeReadBufferIsNotKept) {
  ExchangePool pool(4);
  auto exchange = pool.take();
  put(exchange->read_buffer, std::string(64 * 1024, 'x'));
  pool.give(std::move(exchange));
  auto again = pool.take();
  EXPECT_LE(again->read_buffer.capacity(), Exchange::max_kept_bytes);
}

TEST(ProxyExchangePool, KeepsAtMostItsLimit) {
  ExchangePool pool(1);
  auto a = pool.take();
  auto b = pool.take();
  Exchange* kept = a.get();
  pool.give(std::move(a));
  pool.give(std::move(b));  // beyond the limit: freed
  EXPECT_EQ(pool.take().get(), kept);
  EXPECT_NE(pool.take().get(), nullptr);  // a new one
}

}  // namespace
}  // namespace figshift::proxy
