// UpstreamError -> the client's status: timeouts are 504, everything else 502
// (docs/design.md §3).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "proxy/upstream_error.hpp"

namespace figshift::proxy {
namespace {

namespace http = boost::beast::http;

TEST(ProxyUpstreamError, TimeoutsAreGatewayTimeout) {
  EXPECT_EQ(status_for(UpstreamError::connect_timeout), http::status::gateway_timeout);
  EXPECT_EQ(status_for(UpstreamError::response_timeout), http::status::gateway_timeout);
}

TEST(ProxyUpstreamError, EverythingElseIsBadGateway) {
  for (auto e : {UpstreamError::dns_failed, UpstreamError::connect_failed,
                 UpstreamError::tls_failed, UpstreamError::reset, UpstreamError::bad_response,
                 UpstreamError::response_too_large})
    EXPECT_EQ(status_for(e), http::status::bad_gateway) << describe(e);
}

TEST(ProxyUpstreamError, EveryErrorHasItsOwnDescription) {
  std::set<std::string> seen;
  for (auto e : {UpstreamError::dns_failed, UpstreamError::connect_failed,
                 UpstreamError::connect_timeout, UpstreamError::tls_failed, UpstreamError::reset,
                 UpstreamError::bad_response, UpstreamError::response_too_large,
                 UpstreamError::response_timeout}) {
    const std::string text(describe(e));
    EXPECT_FALSE(text.empty());
    EXPECT_TRUE(seen.insert(text).second) << text;
  }
}

}  // namespace
}  // namespace figshift::proxy
