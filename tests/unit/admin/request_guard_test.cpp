// The admin listener's head checks (src/admin/request_guard.cpp): Host parsing
// and matching, Origin matching, Content-Type media types, and their order.
#include "admin/request_guard.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

namespace figshift::admin {
namespace {

using boost::asio::ip::make_address;

TEST(HostPart, StripsThePort) {
  EXPECT_EQ(host_part("127.0.0.1:9901"), "127.0.0.1");
  EXPECT_EQ(host_part("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(host_part("Example.COM:80"), "Example.COM");
  EXPECT_EQ(host_part("localhost:"), "localhost");  // RFC 3986 allows an empty port
  EXPECT_EQ(host_part("rebind.evil.example:9901"), "rebind.evil.example");
}

TEST(HostPart, Ipv6InBrackets) {
  EXPECT_EQ(host_part("[::1]:9901"), "::1");
  EXPECT_EQ(host_part("[::1]"), "::1");
  EXPECT_EQ(host_part("[2001:db8::7]:80"), "2001:db8::7");
  EXPECT_EQ(host_part("[::ffff:127.0.0.1]:1"), "::ffff:127.0.0.1");
}

TEST(HostPart, Malformed) {
  for (const char* bad : {"", ":9901", "::1", "[::1", "[]:80", "[::1]x", "[::1]:8x", "host:port",
                          "host:123456", "a:1:2", "[::1]:80:90"})
    EXPECT_EQ(host_part(bad), std::nullopt) << bad;
}

HostPolicy loopback(std::vector<std::string> names = {}) {
  return {make_address("127.0.0.1"), std::move(names)};
}

TEST(HostAllowed, ListenerAddressLocalhostAndConfiguredNames) {
  const auto policy = loopback({"figshift-admin.internal"});
  EXPECT_TRUE(host_allowed("127.0.0.1", policy));
  EXPECT_TRUE(host_allowed("localhost", policy));
  EXPECT_TRUE(host_allowed("LocalHost", policy));
  EXPECT_TRUE(host_allowed("figshift-admin.internal", policy));
  EXPECT_TRUE(host_allowed("FIGSHIFT-Admin.Internal", policy));
  EXPECT_FALSE(host_allowed("rebind.evil.example", policy));
  EXPECT_FALSE(host_allowed("figshift-admin.internal.evil.example", policy));
  EXPECT_FALSE(host_allowed("localhost.evil.example", policy));
  EXPECT_FALSE(host_allowed("127.0.0.2", policy)) << "another address than the listener's";
  EXPECT_FALSE(host_allowed("::1", policy));
  EXPECT_FALSE(host_allowed("127.0.0.1.nip.io", policy));
  EXPECT_FALSE(host_allowed("0x7f.0.0.1", policy)) << "not an IP literal inet_pton accepts: a name";
}

TEST(HostAllowed, AnyIpLiteralOnAnUnspecifiedListener) {
  for (const char* any : {"0.0.0.0", "::"}) {
    const HostPolicy policy{make_address(any), {}};
    EXPECT_TRUE(host_allowed("10.1.2.3", policy)) << any;
    EXPECT_TRUE(host_allowed("2001:db8::7", policy)) << any;
    EXPECT_TRUE(host_allowed("localhost", policy)) << any;
    EXPECT_FALSE(host_allowed("admin.example", policy)) << any;
  }
  const HostPolicy v6{make_address("::1"), {}};
  EXPECT_TRUE(host_allowed("::1", v6));
  EXPECT_FALSE(host_allowed("127.0.0.1", v6));
}

TEST(SameOrigin, ExactlyHttpPlusTheHostValue) {
  EXPECT_TRUE(same_origin("http://127.0.0.1:9901", "127.0.0.1:9901"));
  EXPECT_TRUE(same_origin("HTTP://LOCALHOST:9901", "localhost:9901"));
  EXPECT_TRUE(same_origin("http://[::1]:9901", "[::1]:9901"));
  EXPECT_FALSE(same_origin("null", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("http://evil.example", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("https://127.0.0.1:9901", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("http://127.0.0.1:9902", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("http://127.0.0.1", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("http://127.0.0.1:9901/", "127.0.0.1:9901"));
  EXPECT_FALSE(same_origin("http://", ""));
}

TEST(JsonMediaType, ParametersAndCase) {
  for (const char* ok :
       {"application/json", "application/json; charset=utf-8", "Application/JSON",
        " application/json ", "application/json;charset=UTF-8", "application/json;"})
    EXPECT_TRUE(is_json_media_type(ok)) << ok;
  for (const char* bad : {"", "text/plain", "application/jsonx", "application/json-seq",
                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                          "text/plain; application/json", "application/json, text/plain",
                          "application / json", "application/*"})
    EXPECT_FALSE(is_json_media_type(bad)) << bad;
}

TEST(Printable, ReplacesControlAndQuoteBytesAndCuts) {
  EXPECT_EQ(printable("a\"b\\c\x01\xff"), "a?b?c??");
  EXPECT_EQ(printable(std::string(120, 'x'), 100), std::string(100, 'x') + "...");
}

class CheckHead : public ::testing::Test {
 protected:
  RequestHead head(std::string_view method, std::string_view target,
                   std::string_view host = "127.0.0.1:9901") {
    RequestHead h;
    h.method = method;
    h.target = target;
    h.host = host;
    h.host_count = host.empty() ? 0 : 1;
    return h;
  }
  unsigned status(const RequestHead& h, std::string_view token = "") {
    const auto refusal = check_head(h, policy_, token);
    return refusal ? refusal->status : 0;
  }
  HostPolicy policy_ = loopback({"figshift-admin.internal"});
};

TEST_F(CheckHead, HostIsChecked) {
  EXPECT_EQ(status(head("GET", "/admin/kv")), 0u);
  EXPECT_EQ(status(head("GET", "/admin/kv", "localhost:9901")), 0u);
  EXPECT_EQ(status(head("GET", "/admin/kv", "figshift-admin.internal:9901")), 0u);
  EXPECT_EQ(status(head("GET", "/admin/kv", "rebind.evil.example:9901")), 403u);
  EXPECT_EQ(status(head("POST", "/admin/rollback", "rebind.evil.example:9901")), 403u);
  EXPECT_EQ(status(head("GET", "/", "rebind.evil.example")), 403u);
  EXPECT_EQ(status(head("GET", "/admin/kv", "a:b")), 400u);
  auto missing = head("GET", "/admin/kv", "");
  EXPECT_EQ(status(missing), 400u) << "HTTP/1.1 needs a Host";
  missing.version = 10;
  EXPECT_EQ(status(missing), 0u) << "HTTP/1.0 may omit it";
  auto two = head("GET", "/admin/kv");
  two.host_count = 2;
  EXPECT_EQ(status(two), 400u);
  const auto refusal = check_head(head("GET", "/admin/kv", "evil.example"), policy_, "");
  ASSERT_TRUE(refusal);
  EXPECT_NE(refusal->message.find("admin.allowed_hosts"), std::string::npos) << refusal->message;
}

TEST_F(CheckHead, HealthProbesAreExempt) {
  for (const char* path : {"/healthz", "/readyz", "/healthz?x=1"}) {
    auto h = head("GET", path, "lb.example");
    h.origin_count = 1;
    h.origin = "http://evil.example";
    EXPECT_EQ(status(h, "tok"), 0u) << path;
    h.method = "HEAD";
    EXPECT_EQ(status(h, "tok"), 0u) << path;
  }
  // Another method on them is no probe: the Host is checked, then 405 without a token.
  EXPECT_EQ(status(head("POST", "/healthz", "lb.example")), 403u);
  EXPECT_EQ(status(head("POST", "/healthz"), "tok"), 0u);
}

TEST_F(CheckHead, OriginMustBeTheListenersOwn) {
  auto h = head("POST", "/admin/kv");
  h.origin_count = 1;
  for (const char* foreign : {"http://evil.example", "null", "http://127.0.0.1:9902", ""}) {
    h.origin = foreign;
    EXPECT_EQ(status(h), 403u) << foreign;
  }
  h.origin = "http://127.0.0.1:9901";
  EXPECT_EQ(status(h), 0u);
  h.origin_count = 2;
  EXPECT_EQ(status(h), 403u);
}

TEST_F(CheckHead, TokenAfterHostAndOrigin) {
  auto h = head("GET", "/admin/status");
  EXPECT_EQ(status(h, "tok"), 401u);
  h.authorization = "Bearer tok";
  EXPECT_EQ(status(h, "tok"), 0u);
  h.host = "evil.example";
  EXPECT_EQ(status(h, "tok"), 403u) << "a foreign Host is refused even with the token";
  EXPECT_EQ(status(head("GET", "/"), "tok"), 0u) << "the dashboard page needs no token";
  const auto refusal = check_head(head("GET", "/admin/kv"), policy_, "tok");
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->message, "unauthorized");
}

TEST_F(CheckHead, PostBodiesMustBeJson) {
  auto h = head("POST", "/admin/kv");
  h.has_body = true;
  EXPECT_EQ(status(h), 415u) << "no Content-Type";
  h.content_type_count = 1;
  for (const char* simple : {"text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"}) {
    h.content_type = simple;
    EXPECT_EQ(status(h), 415u) << simple;
  }
  h.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(status(h), 0u);
  h.content_type_count = 2;
  EXPECT_EQ(status(h), 415u);

  auto rollback = head("POST", "/admin/rollback");
  EXPECT_EQ(status(rollback), 0u) << "an empty POST needs no Content-Type";
  rollback.content_type_count = 1;
  rollback.content_type = "text/plain";
  EXPECT_EQ(status(rollback), 415u) << "a present one must be JSON";

  auto put = head("PUT", "/admin/kv/hash-salt");
  put.has_body = true;
  put.content_type_count = 1;
  put.content_type = "text/plain";
  EXPECT_EQ(status(put), 0u) << "PUT's raw value body keeps a free Content-Type";

  auto unauthorized = head("POST", "/admin/kv");
  unauthorized.has_body = true;
  EXPECT_EQ(status(unauthorized, "tok"), 401u) << "the token is checked before the Content-Type";
}

}  // namespace
}  // namespace figshift::admin
