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
  auto& parser = exchange->start_request();
  boost::beast::error_code ec;
  parser.put(exchange->read_buffer.data(), ec);
  exchange->start_upstream_response();
  Response own;
  own.body() = "a response body";
  exchange->respond_with(std::move(own));
  Exchange* given = exchange.get();
  pool.give(std::move(exchange));

  auto again = pool.take();
  ASSERT_EQ(again.get(), given) << "the pool should recycle the exchange";
  EXPECT_EQ(again->read_buffer.size(), 0u)
      << boost::beast::buffers_to_string(again->read_buffer.data());
  EXPECT_FALSE(again->request_parser.has_value());
  EXPECT_FALSE(again->upstream_parser.has_value());
  EXPECT_EQ(again->response, nullptr);
  EXPECT_TRUE(again->own_response.body().empty());
}

// What a parser stores comes from the exchange's arena, which reset() empties.
bool in_arena(const Exchange& exchange, std::string_view bytes) {
  const auto* begin = reinterpret_cast<const char*>(exchange.arena_block.data());
  return bytes.data() >= begin &&
         bytes.data() + bytes.size() <= begin + exchange.arena_block.size();
}

// A body longer than std::string keeps inline.
constexpr std::string_view body = "a body of some forty bytes, not inline";

std::string request_with_header(std::string_view value) {
  return "POST /orders HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(value) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

const Request& parse(Exchange& exchange, const std::string& bytes) {
  auto& parser = exchange.start_request();
  parser.header_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  return parser.get();
}

TEST(ProxyExchangeArena, ARequestIsParsedIntoTheArenaWhichResetEmpties) {
  if (Exchange::inline_bytes == 0) GTEST_SKIP() << "sanitizer build: the arena is on the heap";
  Exchange exchange;
  const Request& first = parse(exchange, request_with_header("small"));
  EXPECT_TRUE(in_arena(exchange, first[http::field::host]));
  EXPECT_TRUE(in_arena(exchange, first["X-Big"]));
  EXPECT_TRUE(in_arena(exchange, first.body()));
  EXPECT_EQ(first.body(), body);
  const char* where = first["X-Big"].data();

  exchange.reset();
  const Request& second = parse(exchange, request_with_header("small"));
  EXPECT_EQ(second["X-Big"].data(), where) << "the arena should start over after reset()";
}

// A head larger than the arena's block spills to the heap, intact, and the
// next request is back in the block.
TEST(ProxyExchangeArena, AHeadLargerThanTheBlockSpillsToTheHeap) {
  Exchange exchange;
  const std::string big(12 * 1024, 'v');
  const Request& request = parse(exchange, request_with_header(big));
  EXPECT_TRUE(request["X-Big"] == big);
  EXPECT_FALSE(in_arena(exchange, request["X-Big"]));
  EXPECT_EQ(request.body(), body);

  exchange.reset();
  const Request& next = parse(exchange, request_with_header("small"));
  EXPECT_EQ(next["X-Big"], "small");
  EXPECT_EQ(in_arena(exchange, next["X-Big"]), Exchange::inline_bytes > 0);
}

// A copy of a parsed message must not share the arena (it would dangle after
// reset()); a move keeps it, which is what lets the data path avoid copies.
TEST(ProxyExchangeArena, ACopyOfAParsedMessageIsOnTheHeap) {
  Exchange exchange;
  const Request& parsed = parse(exchange, request_with_header("copied"));
  const Request copy = parsed;
  EXPECT_EQ(copy.get_allocator().resource(), std::pmr::new_delete_resource());
  EXPECT_EQ(parsed.get_allocator().resource(), &exchange.arena);
  Request assigned;
  assigned = parsed;
  EXPECT_EQ(assigned.get_allocator().resource(), std::pmr::new_delete_resource());
  exchange.reset();
  EXPECT_EQ(copy["X-Big"], "copied");  // still readable: ASan would catch it otherwise
  EXPECT_EQ(assigned.body(), body);
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
  // Marks that survive give() (a kept string's capacity, under max_kept_bytes),
  // so an exchange can be told from a new one even when the allocator hands a
  // freed one's address out again.
  constexpr std::size_t a_mark = 4000;
  constexpr std::size_t b_mark = 8000;
  static_assert(b_mark <= Exchange::max_kept_bytes);
  a->upstream_head.reserve(a_mark);
  b->upstream_head.reserve(b_mark);
  ASSERT_LT(Exchange().upstream_head.capacity(), a_mark) << "a new exchange must not look marked";
  Exchange* kept = a.get();
  pool.give(std::move(a));
  pool.give(std::move(b));  // beyond the limit: freed

  auto first = pool.take();
  EXPECT_EQ(first.get(), kept);
  EXPECT_GE(first->upstream_head.capacity(), a_mark) << "the kept exchange is a";
  EXPECT_LT(first->upstream_head.capacity(), b_mark);
  auto second = pool.take();  // the pool is empty again: a new one
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second.get(), first.get());
  EXPECT_LT(second->upstream_head.capacity(), a_mark)
      << "b, given beyond the limit, was kept instead of freed";
}

}  // namespace
}  // namespace figshift::proxy
