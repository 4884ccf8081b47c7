// Regression (found by fuzz_request_head, input tests/fuzz/crashes/fuzz_request_head/):
// a request with a method Beast has no verb for ("LOST", the new HTTP "QUERY")
// made the upstream request's construction call method(verb::unknown), which throws; the
// exception left the worker's io_context::run() and terminated the daemon.
// The method must be forwarded as sent.

#include <gtest/gtest.h>

#include <boost/beast/http/verb.hpp>
#include <string>

#include "figshift/store/upstream_url.hpp"
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
    std::string head;
    ASSERT_NO_THROW(write_upstream_head(client, upstream, "/prod/orders", "192.0.2.1", "http", false, head))
        << method;
    EXPECT_EQ(head.substr(0, head.find("\r\nX-")),
              std::string(method) + " /prod/orders HTTP/1.1\r\nHost: b1.example:8080");
  }
}

TEST(RegressionUnknownMethod, KnownMethodsAreUnchanged) {
  const Upstream upstream = parse_upstream_url("A", "http://a.example");
  Request client{http::verb::purge, "/x", 11};
  client.set(http::field::host, "shop.example");
  std::string head;
  write_upstream_head(client, upstream, "/x", "192.0.2.1", "http", false, head);
  EXPECT_EQ(head.substr(0, head.find("\r\n")), "PURGE /x HTTP/1.1");
}

}  // namespace
}  // namespace figshift::proxy
