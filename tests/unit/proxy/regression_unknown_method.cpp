// Regression (found by fuzz_request_head, input tests/fuzz/crashes/fuzz_request_head/):
// a request with a method Beast has no verb for ("LOST", the new HTTP "QUERY")
// made make_upstream_request call method(verb::unknown), which throws; the
// exception left the worker's io_context::run() and terminated the daemon.
// The method must be forwarded as sent.

#include <gtest/gtest.h>

#include <boost/beast/http/verb.hpp>
#include <string>

#include "figshift/store.hpp"
#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {
namespace {

TEST(RegressionUnknownMethod, ExtensionMethodIsForwardedAsSent) {
  const Upstream upstream = parse_upstream_url("B1", "http://b1.example:8080/prod");
  for (const char* method : {"QUERY", "LOST", "X-CUSTOM"}) {
    Request client;
    client.method_string(method);
    client.target("/orders");
    client.version(11);
    client.set(http::field::host, "shop.example");
    ASSERT_EQ(client.method(), http::verb::unknown) << method;
    Request out;
    ASSERT_NO_THROW(make_upstream_request(client, out, upstream, "/prod/orders", "192.0.2.1", "http"))
        << method;
    EXPECT_EQ(out.method(), http::verb::unknown);
    EXPECT_EQ(out.method_string(), method);
    EXPECT_EQ(out.target(), "/prod/orders");
    EXPECT_EQ(out[http::field::host], "b1.example:8080");
  }
}

TEST(RegressionUnknownMethod, KnownMethodsAreUnchanged) {
  const Upstream upstream = parse_upstream_url("A", "http://a.example");
  Request client{http::verb::purge, "/x", 11};
  client.set(http::field::host, "shop.example");
  Request out;
  make_upstream_request(client, out, upstream, "/x", "192.0.2.1", "http");
  EXPECT_EQ(out.method(), http::verb::purge);
  EXPECT_EQ(out.method_string(), "PURGE");
}

}  // namespace
}  // namespace figshift::proxy
