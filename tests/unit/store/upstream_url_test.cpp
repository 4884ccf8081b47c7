// parse_upstream_url: the APIGW_<NAME>_URL values of DESIGN.md §2.
#include <gtest/gtest.h>

#include <string>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/upstream_url.hpp"
#include "store_test_support.hpp"

namespace figshift {
namespace {

using store_test::contains;

TEST(StoreUpstreamUrl, PlainHttp) {
  const Upstream u = parse_upstream_url("A", "http://legacy.example");
  EXPECT_EQ(u.name, "A");
  EXPECT_EQ(u.url, "http://legacy.example");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "legacy.example");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.host_header, "legacy.example");
  EXPECT_EQ(u.base_path, "");
  EXPECT_EQ(u.origin, "http://legacy.example:80");
}

TEST(StoreUpstreamUrl, HttpsWithApiGatewayStage) {
  const Upstream u =
      parse_upstream_url("B1", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "abc123.execute-api.eu-west-1.amazonaws.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.host_header, "abc123.execute-api.eu-west-1.amazonaws.com");
  EXPECT_EQ(u.base_path, "/prod");
  EXPECT_EQ(u.origin, "https://abc123.execute-api.eu-west-1.amazonaws.com:443");
}

TEST(StoreUpstreamUrl, ExplicitPortGoesIntoTheHostHeader) {
  const Upstream u = parse_upstream_url("B2", "http://127.0.0.1:8081");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8081);
  EXPECT_EQ(u.host_header, "127.0.0.1:8081");
  EXPECT_EQ(u.origin, "http://127.0.0.1:8081");

  const Upstream s = parse_upstream_url("B3", "https://api.example:8443/v1");
  EXPECT_EQ(s.port, 8443);
  EXPECT_EQ(s.host_header, "api.example:8443");
  EXPECT_EQ(s.base_path, "/v1");
}

TEST(StoreUpstreamUrl, SpelledOutDefaultPortsAreLeftOutOfTheHostHeader) {
  const Upstream h = parse_upstream_url("A", "http://legacy.example:80");
  EXPECT_EQ(h.port, 80);
  EXPECT_EQ(h.host_header, "legacy.example");
  const Upstream s = parse_upstream_url("A", "https://legacy.example:443/");
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.host_header, "legacy.example");
  // The other scheme's default port is not a default here.
  EXPECT_EQ(parse_upstream_url("A", "https://legacy.example:80").host_header, "legacy.example:80");
  EXPECT_EQ(parse_upstream_url("A", "http://legacy.example:443").host_header,
            "legacy.example:443");
}

TEST(StoreUpstreamUrl, Ipv6Literal) {
  const Upstream u = parse_upstream_url("B1", "http://[::1]:8080/api");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.host_header, "[::1]:8080");
  EXPECT_EQ(u.base_path, "/api");
  EXPECT_EQ(u.origin, "http://[::1]:8080");

  const Upstream d = parse_upstream_url("B1", "https://[2001:db8::7]");
  EXPECT_EQ(d.host, "2001:db8::7");
  EXPECT_EQ(d.port, 443);
  EXPECT_EQ(d.host_header, "[2001:db8::7]");
}

TEST(StoreUpstreamUrl, TrailingSlashesOfTheBasePathAreDropped) {
  EXPECT_EQ(parse_upstream_url("A", "http://h.example/").base_path, "");
  EXPECT_EQ(parse_upstream_url("A", "http://h.example/prod/").base_path, "/prod");
  EXPECT_EQ(parse_upstream_url("A", "http://h.example/prod//").base_path, "/prod");
  EXPECT_EQ(parse_upstream_url("A", "http://h.example/a/b").base_path, "/a/b");
  EXPECT_EQ(parse_upstream_url("A", "http://h.example:81/stage/").base_path, "/stage");
}

TEST(StoreUpstreamUrl, PercentEncodedBasePathIsKeptAsWritten) {
  EXPECT_EQ(parse_upstream_url("A", "http://h.example/a%20b").base_path, "/a%20b");
}

TEST(StoreUpstreamUrl, RejectedForms) {
  for (const std::string url : {
           "",                               // empty
           "legacy.example",                 // no scheme
           "ftp://legacy.example",           // other scheme
           "http:/legacy.example",           // malformed scheme separator
           "http://",                        // empty host
           "https:///prod",                  // empty host with path
           "http://:8080",                   // empty host with port
           "http://legacy.example?x=1",      // query, no path
           "http://legacy.example/p?x=1",    // query
           "http://legacy.example/p#frag",   // fragment
           "http://legacy.example#frag",     // fragment, no path
           "http://user@legacy.example",     // userinfo
           "http://user:pw@legacy.example",  // userinfo with password
           "http://legacy.example:",         // empty port
           "http://legacy.example:0",        // port 0
           "http://legacy.example:65536",    // port too large
           "http://legacy.example:-1",       // negative port
           "http://legacy.example:80a",      // garbage port
           "http://legacy.example:+80",      // signed port
           "http://legacy.example: 80",      // spaced port
           "http://[::1",                    // unterminated IPv6
           "http://[::1]x",                  // garbage after IPv6
           "http://[]:80",                   // empty IPv6
           "http://[zz::1]",                 // not an IPv6 literal
           "http://legacy example",          // space in host
           "http://legacy.example/a b",      // space in path
           " http://legacy.example",         // leading space
       }) {
    try {
      const Upstream u = parse_upstream_url("B1", url);
      ADD_FAILURE() << "accepted \"" << url << "\" as host=" << u.host << " port=" << u.port
                    << " path=" << u.base_path;
    } catch (const InvalidStore& e) {
      EXPECT_TRUE(contains(e.what(), "APIGW_B1_URL")) << url << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace figshift
