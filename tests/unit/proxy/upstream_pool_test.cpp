// UpstreamPool keeps only connections that can be reused.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>

#include "proxy/upstream_pool.hpp"

namespace figshift::proxy {
namespace {

TEST(ProxyUpstreamPool, AClosedConnectionIsNotPooled) {
  boost::asio::io_context ioc;
  UpstreamPool pool(std::chrono::seconds(30), 8);

  auto open = std::make_unique<UpstreamConnection>(ioc.get_executor(), nullptr, "http://a");
  open->tcp().open(boost::asio::ip::tcp::v4());
  pool.release(std::move(open));
  EXPECT_EQ(pool.idle_count(), 1u);

  // E.g. closed by the session's deadline just as its response completed.
  auto closed = std::make_unique<UpstreamConnection>(ioc.get_executor(), nullptr, "http://a");
  pool.release(std::move(closed));
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_NE(pool.acquire("http://a"), nullptr);
  EXPECT_EQ(pool.acquire("http://a"), nullptr);
}

}  // namespace
}  // namespace figshift::proxy
