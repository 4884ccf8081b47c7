// The checks a request head passes before it is routed (request_checks.hpp):
// the same functions the session and the request-head fuzz target call.
#include "proxy/request_checks.hpp"

#include <gtest/gtest.h>

#include <string>

namespace figshift::proxy {
namespace {

Request head(http::verb method, std::string target, unsigned version = 11) {
  Request r{method, target, version};
  r.set(http::field::host, "shop.example");
  return r;
}

TEST(RequestChecks, TargetForms) {
  EXPECT_TRUE(routable_target("/orders"));
  EXPECT_TRUE(routable_target("http://shop.example/orders"));
  EXPECT_TRUE(routable_target("HTTPS://shop.example/"));
  EXPECT_FALSE(routable_target("*"));
  EXPECT_FALSE(routable_target("shop.example:443"));
  EXPECT_FALSE(routable_target("ftp://shop.example/x"));
}

TEST(RequestChecks, HostValues) {
  EXPECT_TRUE(valid_host("shop.example:8080"));
  EXPECT_TRUE(valid_host("[::1]:80"));
  EXPECT_FALSE(valid_host("a/b"));
  EXPECT_FALSE(valid_host("user@host"));
  EXPECT_FALSE(valid_host("a b"));
}

TEST(RequestChecks, FramingProblems) {
  auto r = head(http::verb::post, "/x");
  EXPECT_EQ(framing_problem(r, 11), "");
  r.insert(http::field::transfer_encoding, "gzip");
  EXPECT_EQ(framing_problem(r, 11), "unsupported Transfer-Encoding (only chunked)");
  r.set(http::field::transfer_encoding, "chunked");
  EXPECT_EQ(framing_problem(r, 10), "Transfer-Encoding in an HTTP/1.0 request");
  r.insert(http::field::transfer_encoding, "chunked");
  EXPECT_EQ(framing_problem(r, 11), "repeated Transfer-Encoding header");
  auto two_hosts = head(http::verb::get, "/");
  two_hosts.insert(http::field::host, "other.example");
  EXPECT_EQ(framing_problem(two_hosts, 11), "more than one Host header");
  Request no_host{http::verb::get, "/", 11};
  EXPECT_EQ(framing_problem(no_host, 11), "missing Host header");
  EXPECT_EQ(framing_problem(no_host, 10), "");
  auto two_auth = head(http::verb::get, "/");
  two_auth.insert(http::field::authorization, "Basic YTpi");
  two_auth.insert(http::field::authorization, "Basic Yzpk");
  EXPECT_EQ(framing_problem(two_auth, 11), "more than one Authorization header");
}

TEST(RequestChecks, RequestProblemChecksTargetFramingAndPath) {
  EXPECT_EQ(request_problem(head(http::verb::get, "/orders/1")), "");
  EXPECT_EQ(request_problem(head(http::verb::get, "*")), "unsupported request target");
  EXPECT_NE(request_problem(head(http::verb::get, "/orders/..%2fadmin")), "");
  EXPECT_NE(request_problem(head(http::verb::get, "/a\\b")), "");
}

TEST(RequestChecks, WebSocketHandshake) {
  auto r = head(http::verb::get, "/ws");
  r.set(http::field::upgrade, "websocket");
  r.set(http::field::connection, "Upgrade");
  EXPECT_TRUE(is_websocket_upgrade(r));
  r.set(http::field::connection, "keep-alive, upgrade");  // a token among others
  EXPECT_TRUE(is_websocket_upgrade(r));
  r.set(http::field::upgrade, "WebSocket");  // case-insensitive
  EXPECT_TRUE(is_websocket_upgrade(r));

  auto no_connection = r;
  no_connection.erase(http::field::connection);
  EXPECT_FALSE(is_websocket_upgrade(no_connection)) << "Upgrade alone is not a request to switch";
  auto other_protocol = r;
  other_protocol.set(http::field::upgrade, "h2c");
  EXPECT_FALSE(is_websocket_upgrade(other_protocol));
  auto post = r;
  post.method(http::verb::post);
  EXPECT_FALSE(is_websocket_upgrade(post));
  auto http10 = r;
  http10.version(10);
  EXPECT_FALSE(is_websocket_upgrade(http10));
}

}  // namespace
}  // namespace figshift::proxy
