// Header rewriting between client and upstream (RFC 9110 §7.6.1 hop-by-hop
// fields, §7.6.3 intermediaries) and the proxy's own JSON errors.
#include "proxy/http_rewrite.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "figshift/store/upstream_url.hpp"

namespace figshift::proxy {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Every field in serialization order, as (name, value).
Headers fields_of(const Fields& fields) {
  Headers out;
  for (const auto& f : fields)
    out.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return out;
}

std::vector<std::string> values_of(const Fields& fields, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : fields)
    if (boost::beast::iequals(f.name_string(), name)) out.emplace_back(f.value());
  return out;
}

bool has(const Fields& fields, std::string_view name) {
  return fields.find(name) != fields.end();
}

Upstream upstream_b1() {
  Upstream u;
  u.name = "B1";
  u.url = "https://b1.example:8443/prod";
  u.tls = true;
  u.host = "b1.example";
  u.port = 8443;
  u.host_header = "b1.example:8443";
  u.base_path = "/prod";
  u.origin = "https://b1.example:8443";
  return u;
}

// A body read whole, as the session frames it: with its length whenever the
// client sent one (Content-Length or chunked), else none.
BodyFraming read_whole(const Request& client) {
  if (client.count(http::field::content_length) || client.count(http::field::transfer_encoding) ||
      !client.body().empty())
    return BodyFraming::of_length(client.body().size());
  return {};
}

// What an upstream parses from write_upstream_head's bytes plus the client's body.
void make_upstream_request(const Request& client, Request& out, const Upstream& upstream,
                           std::string_view target, std::string_view client_ip,
                           std::string_view client_proto, bool trusted_peer = false) {
  std::string wire = "stale bytes that must be replaced";
  write_upstream_head(client, upstream, target, client_ip, client_proto, trusted_peer,
                      read_whole(client), false, wire);
  wire += client.body();
  http::request_parser<Body, Allocator> parser;
  parser.eager(true);
  boost::system::error_code ec;
  const auto used = parser.put(boost::asio::buffer(wire), ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << wire;
  ASSERT_TRUE(parser.is_done()) << wire;
  ASSERT_EQ(used, wire.size()) << "bytes after the request: " << wire;
  out = parser.release();
}

// What a client parses from write_client_head's bytes plus the upstream's body.
void make_client_response(Response& res, bool head_request, unsigned client_version,
                          bool keep_alive, std::string_view debug_header,
                          std::string_view upstream_name) {
  std::string wire = "stale bytes that must be replaced";
  write_client_head(res, head_request, client_version, keep_alive,
                    BodyFraming::of_length(res.body().size()), debug_header, upstream_name, wire);
  const auto status = res.result_int();
  if (!head_request && status != 204 && status != 304) wire += res.body();
  http::response_parser<Body, Allocator> parser;
  parser.eager(true);
  if (head_request) parser.skip(true);
  boost::system::error_code ec;
  const auto used = parser.put(boost::asio::buffer(wire), ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << wire;
  ASSERT_TRUE(parser.is_done()) << "the head does not frame the body: " << wire;
  ASSERT_EQ(used, wire.size()) << "bytes after the response: " << wire;
  res = parser.release();
}

// The fields write_upstream_head/write_client_head drop as hop-by-hop.
void remove_hop_by_hop(Fields& fields) {
  std::vector<std::string> doomed;
  for (const auto& field : fields)
    if (is_hop_by_hop(fields, field)) doomed.emplace_back(field.name_string());
  for (const auto& name : doomed) fields.erase(name);
}

const std::vector<std::string> hop_by_hop = {"Connection", "Keep-Alive", "Proxy-Connection",
                                             "TE",         "Trailer",    "Transfer-Encoding",
                                             "Upgrade"};

// ---- remove_hop_by_hop ---------------------------------------------------

TEST(ProxyHopByHop, RemovesTheStandardHopByHopFields) {
  Fields f;
  f.insert("Accept", "*/*");
  f.insert("Connection", "keep-alive");
  f.insert("Keep-Alive", "timeout=5");
  f.insert("Proxy-Connection", "keep-alive");
  f.insert("TE", "trailers");
  f.insert("Trailer", "Expires");
  f.insert("Transfer-Encoding", "chunked");
  f.insert("Upgrade", "websocket");
  f.insert("X-Request-Id", "42");
  remove_hop_by_hop(f);
  EXPECT_EQ(fields_of(f), (Headers{{"Accept", "*/*"}, {"X-Request-Id", "42"}}));
}

TEST(ProxyHopByHop, NamesAreCaseInsensitive) {
  Fields f;
  f.insert("CONNECTION", "close");
  f.insert("keep-alive", "timeout=5");
  f.insert("transfer-ENCODING", "chunked");
  f.insert("te", "trailers");
  f.insert("Host", "a.example");
  remove_hop_by_hop(f);
  EXPECT_EQ(fields_of(f), (Headers{{"Host", "a.example"}}));
}

TEST(ProxyHopByHop, RemovesFieldsNamedInConnection) {
  Fields f;
  f.insert("Connection", "close, X-Private ,x-trace-hop");
  f.insert("X-Private", "secret");
  f.insert("X-TRACE-HOP", "1");
  f.insert("X-Trace-Hop", "2");
  f.insert("X-Public", "kept");
  f.insert("X-Private-Not", "kept too");
  remove_hop_by_hop(f);
  EXPECT_EQ(fields_of(f), (Headers{{"X-Public", "kept"}, {"X-Private-Not", "kept too"}}));
}

TEST(ProxyHopByHop, EveryConnectionFieldLineCounts) {
  Fields f;
  f.insert("Connection", "X-One");
  f.insert("Accept", "*/*");
  f.insert("connection", "x-two, , X-Three");
  f.insert("X-One", "1");
  f.insert("X-Two", "2");
  f.insert("X-Three", "3");
  f.insert("X-Four", "4");
  remove_hop_by_hop(f);
  EXPECT_EQ(fields_of(f), (Headers{{"Accept", "*/*"}, {"X-Four", "4"}}));
}

TEST(ProxyHopByHop, LeavesEndToEndFieldsAlone) {
  Fields f;
  f.insert("Authorization", "Basic dXNlcjpwdw==");
  f.insert("Content-Length", "3");
  f.insert("Set-Cookie", "a=1");
  f.insert("Set-Cookie", "b=2");
  f.insert("Proxy-Authorization", "Basic eDp5");  // hop-by-hop in meaning, but not listed
  const Headers before = fields_of(f);
  remove_hop_by_hop(f);
  EXPECT_EQ(fields_of(f), before);
}

// ---- make_upstream_request -----------------------------------------------

Request client_get() {
  Request r{http::verb::get, "/orders/7?x=1", 11};
  r.set(http::field::host, "shop.example");
  r.set(http::field::accept, "application/json");
  return r;
}

TEST(ProxyUpstreamRequest, MethodTargetVersionAndHost) {
  Request client = client_get();
  client.version(10);
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/prod/v2/orders/7?x=1", "192.0.2.1", "http");
  EXPECT_EQ(out.method(), http::verb::get);
  EXPECT_EQ(out.target(), "/prod/v2/orders/7?x=1");
  EXPECT_EQ(out.version(), 11);
  EXPECT_EQ(values_of(out.base(), "Host"), std::vector<std::string>{"b1.example:8443"});
  EXPECT_EQ(values_of(out.base(), "Accept"), std::vector<std::string>{"application/json"});
}

TEST(ProxyUpstreamRequest, HostHeaderWithoutDefaultPort) {
  Upstream u = upstream_b1();
  u.port = 443;
  u.host_header = "b1.example";
  Request client = client_get();
  Request out;
  make_upstream_request(client, out, u, "/", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "Host"), std::vector<std::string>{"b1.example"});
}

TEST(ProxyUpstreamRequest, ForwardedHeaders) {
  Request client = client_get();
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "https");
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"), std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-Proto"), std::vector<std::string>{"https"});
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-Host"), std::vector<std::string>{"shop.example"});
}

TEST(ProxyUpstreamRequest, AppendsToAnExistingXForwardedForFromATrustedProxy) {
  Request client = client_get();
  client.set("x-forwarded-for", "203.0.113.9, 198.51.100.2");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http", true);
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"),
            std::vector<std::string>{"203.0.113.9, 198.51.100.2, 192.0.2.1"});
}

// RFC 9110 §5.3: several field lines of a list field are one comma-joined list.
TEST(ProxyUpstreamRequest, AppendsToEveryXForwardedForLineFromATrustedProxy) {
  Request client = client_get();
  client.insert("X-Forwarded-For", "203.0.113.9");
  client.insert("X-Forwarded-For", "198.51.100.2");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http", true);
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"),
            std::vector<std::string>{"203.0.113.9, 198.51.100.2, 192.0.2.1"});
}

// Issue #18, finding 8: a client's own forwarding fields would let it pose as
// any address to an upstream that trusts them.
TEST(ProxyUpstreamRequest, UntrustedClientsForwardingFieldsAreReplaced) {
  Request client = client_get();
  client.insert("X-Forwarded-For", "203.0.113.9");
  client.insert(http::field::forwarded, "for=203.0.113.9;proto=https");
  client.insert("X-Real-IP", "203.0.113.9");
  client.insert("X-Forwarded-Port", "443");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"), std::vector<std::string>{"192.0.2.1"});
  EXPECT_FALSE(has(out.base(), "Forwarded"));
  EXPECT_FALSE(has(out.base(), "X-Real-IP"));
  EXPECT_FALSE(has(out.base(), "X-Forwarded-Port"));
}

TEST(ProxyUpstreamRequest, TrustedProxysForwardingFieldsPassOn) {
  Request client = client_get();
  client.insert(http::field::forwarded, "for=203.0.113.9;proto=https");
  client.insert("X-Real-IP", "203.0.113.9");
  client.insert("X-Forwarded-Port", "443");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http", true);
  EXPECT_EQ(values_of(out.base(), "Forwarded"),
            std::vector<std::string>{"for=203.0.113.9;proto=https"});
  EXPECT_EQ(values_of(out.base(), "X-Real-IP"), std::vector<std::string>{"203.0.113.9"});
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-Port"), std::vector<std::string>{"443"});
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"), std::vector<std::string>{"192.0.2.1"});
}

TEST(ProxyUpstreamRequest, ClientSuppliedProtoAndHostAreReplaced) {
  Request client = client_get();
  client.set("X-Forwarded-Proto", "https");
  client.set("X-Forwarded-Host", "spoofed.example");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-Proto"), std::vector<std::string>{"http"});
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-Host"), std::vector<std::string>{"shop.example"});
}

TEST(ProxyUpstreamRequest, AuthorizationIsKeptByteForByte) {
  for (const std::string value : {"Basic dXNlcjQyOnNlY3JldA==", "basic   dXNlcjQyOnNlY3JldA",
                                  "Bearer a.b.c", "Basic Wm/DqzpwdzE="}) {
    Request client = client_get();
    client.set(http::field::authorization, value);
    Request out;
    make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
    EXPECT_EQ(values_of(out.base(), "Authorization"), std::vector<std::string>{value});
  }
}

TEST(ProxyUpstreamRequest, DuplicateEndToEndFieldsAreKeptInOrder) {
  Request client = client_get();
  client.insert("X-Tag", "one");
  client.insert("Cookie", "a=1");
  client.insert("X-Tag", "two");
  client.insert("Cookie", "b=2");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "X-Tag"), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(values_of(out.base(), "Cookie"), (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(ProxyUpstreamRequest, HopByHopFieldsAreNotForwarded) {
  Request client = client_get();
  client.set(http::field::connection, "keep-alive, X-Hop");
  client.set("X-Hop", "1");
  client.set(http::field::keep_alive, "timeout=5");
  client.set(http::field::te, "trailers");
  client.set(http::field::upgrade, "h2c");
  client.set(http::field::proxy_connection, "keep-alive");
  client.set("X-End", "2");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  for (const auto& name : hop_by_hop)
    if (name != "Connection") EXPECT_FALSE(has(out.base(), name)) << name;
  EXPECT_FALSE(has(out.base(), "X-Hop"));
  EXPECT_EQ(values_of(out.base(), "X-End"), std::vector<std::string>{"2"});
  // The upstream leg is keep-alive: at most a Connection without "close".
  for (const auto& v : values_of(out.base(), "Connection"))
    EXPECT_EQ(boost::beast::iequals(v, "close"), false) << v;
  EXPECT_TRUE(out.keep_alive());
}

TEST(ProxyUpstreamRequest, ClientConnectionCloseDoesNotCloseTheUpstream) {
  Request client = client_get();
  client.set(http::field::connection, "close");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_TRUE(out.keep_alive());
  for (const auto& v : values_of(out.base(), "Connection")) EXPECT_NE(v, "close");
}

TEST(ProxyUpstreamRequest, BodyIsMovedWithItsContentLength) {
  Request client{http::verb::post, "/orders", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::content_type, "application/json");
  client.body() = R"({"item":7})";
  client.prepare_payload();
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/prod/orders", "192.0.2.1", "http");
  EXPECT_EQ(out.body(), R"({"item":7})");
  EXPECT_EQ(values_of(out.base(), "Content-Length"), std::vector<std::string>{"10"});
  EXPECT_EQ(values_of(out.base(), "Content-Type"), std::vector<std::string>{"application/json"});
  EXPECT_FALSE(has(out.base(), "Transfer-Encoding"));
}

TEST(ProxyUpstreamRequest, ChunkedRequestIsSentWithAContentLength) {
  Request client{http::verb::put, "/orders/7", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::transfer_encoding, "chunked");
  client.body() = "hello, world";  // already de-chunked by the parser
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/orders/7", "192.0.2.1", "http");
  EXPECT_EQ(out.body(), "hello, world");
  EXPECT_EQ(values_of(out.base(), "Content-Length"), std::vector<std::string>{"12"});
  EXPECT_FALSE(has(out.base(), "Transfer-Encoding"));
  EXPECT_FALSE(out.chunked());
}

TEST(ProxyUpstreamRequest, EmptyChunkedBodyStillGetsContentLengthZero) {
  Request client{http::verb::post, "/orders", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::transfer_encoding, "chunked");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/orders", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "Content-Length"), std::vector<std::string>{"0"});
  EXPECT_FALSE(has(out.base(), "Transfer-Encoding"));
}

TEST(ProxyUpstreamRequest, ExplicitZeroContentLengthIsKept) {
  Request client{http::verb::post, "/orders", 11};
  client.set(http::field::host, "shop.example");
  client.content_length(0);
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/orders", "192.0.2.1", "http");
  EXPECT_EQ(values_of(out.base(), "Content-Length"), std::vector<std::string>{"0"});
}

TEST(ProxyUpstreamRequest, BodilessGetGetsNoContentLength) {
  Request client = client_get();
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_FALSE(has(out.base(), "Content-Length"));
  EXPECT_FALSE(has(out.base(), "Transfer-Encoding"));
  EXPECT_TRUE(out.body().empty());
}

TEST(ProxyUpstreamRequest, ReusedOutputStartsClean) {
  Request first = client_get();
  first.set("X-Only-First", "1");
  Request out;
  make_upstream_request(first, out, upstream_b1(), "/a", "192.0.2.1", "http");
  Request second = client_get();
  make_upstream_request(second, out, upstream_b1(), "/b", "192.0.2.2", "http");
  EXPECT_FALSE(has(out.base(), "X-Only-First"));
  EXPECT_EQ(values_of(out.base(), "X-Forwarded-For"), std::vector<std::string>{"192.0.2.2"});
  EXPECT_EQ(out.target(), "/b");
}

TEST(ProxyUpstreamRequest, UnknownMethodIsKept) {
  Request client = client_get();
  client.method_string("PURGE");
  Request out;
  make_upstream_request(client, out, upstream_b1(), "/", "192.0.2.1", "http");
  EXPECT_EQ(out.method_string(), "PURGE");
}

// ---- make_client_response ------------------------------------------------

Response upstream_response(http::status status, std::string body) {
  Response r{status, 11};
  r.set(http::field::content_type, "text/plain");
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

TEST(ProxyClientResponse, DebugHeaderNamesTheUpstream) {
  Response r = upstream_response(http::status::ok, "hi");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_EQ(values_of(r.base(), "X-Figshift-Upstream"), std::vector<std::string>{"B1"});
}

TEST(ProxyClientResponse, DebugHeaderFromTheUpstreamIsOverwritten) {
  Response r = upstream_response(http::status::ok, "hi");
  r.insert("x-figshift-upstream", "spoof");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "A");
  EXPECT_EQ(values_of(r.base(), "x-figshift-upstream"), std::vector<std::string>{"A"});
}

TEST(ProxyClientResponse, NoDebugHeaderWhenTurnedOff) {
  Response r = upstream_response(http::status::ok, "hi");
  const Headers before = fields_of(r.base());
  make_client_response(r, false, 11, true, "", "B1");
  EXPECT_FALSE(has(r.base(), "x-figshift-upstream"));
  for (const auto& [name, value] : fields_of(r.base())) EXPECT_NE(value, "B1") << name;
}

TEST(ProxyClientResponse, HopByHopFieldsAreRemoved) {
  Response r = upstream_response(http::status::ok, "hello");
  r.set(http::field::connection, "keep-alive, X-Upstream-Hop");
  r.set("X-Upstream-Hop", "1");
  r.set(http::field::keep_alive, "timeout=4");
  r.set(http::field::upgrade, "h2");
  r.set(http::field::trailer, "Expires");
  r.set(http::field::proxy_connection, "keep-alive");
  r.set("X-End", "kept");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  for (const auto& name :
       {"Keep-Alive", "Upgrade", "Trailer", "Proxy-Connection", "X-Upstream-Hop"})
    EXPECT_FALSE(has(r.base(), name)) << name;
  EXPECT_EQ(values_of(r.base(), "X-End"), std::vector<std::string>{"kept"});
  EXPECT_EQ(r.body(), "hello");
}

TEST(ProxyClientResponse, ChunkedUpstreamResponseGetsAContentLength) {
  Response r{http::status::ok, 11};
  r.set(http::field::transfer_encoding, "chunked");
  r.body() = "0123456789";
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_FALSE(has(r.base(), "Transfer-Encoding"));
  EXPECT_EQ(values_of(r.base(), "Content-Length"), std::vector<std::string>{"10"});
}

TEST(ProxyClientResponse, HeadKeepsTheUpstreamsContentLength) {
  Response r{http::status::ok, 11};
  r.set(http::field::content_length, "1234");  // the GET body's length; HEAD carries none
  make_client_response(r, true, 11, true, "x-figshift-upstream", "A");
  EXPECT_EQ(values_of(r.base(), "Content-Length"), std::vector<std::string>{"1234"});
  EXPECT_TRUE(r.body().empty());
}

TEST(ProxyClientResponse, HeadWithoutContentLengthGetsNone) {
  Response r{http::status::ok, 11};
  r.set(http::field::transfer_encoding, "chunked");
  make_client_response(r, true, 11, true, "x-figshift-upstream", "A");
  EXPECT_FALSE(has(r.base(), "Content-Length"));
  EXPECT_FALSE(has(r.base(), "Transfer-Encoding"));
}

TEST(ProxyClientResponse, NoContentHasNoContentLength) {
  Response r{http::status::no_content, 11};
  r.set(http::field::content_length, "0");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_FALSE(has(r.base(), "Content-Length"));
  EXPECT_FALSE(has(r.base(), "Transfer-Encoding"));

  Response bare{http::status::no_content, 11};
  make_client_response(bare, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_FALSE(has(bare.base(), "Content-Length"));
}

TEST(ProxyClientResponse, NotModifiedAddsNoContentLength) {
  Response r{http::status::not_modified, 11};
  r.set(http::field::etag, "\"x\"");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_FALSE(has(r.base(), "Content-Length"));
  EXPECT_EQ(values_of(r.base(), "ETag"), std::vector<std::string>{"\"x\""});
}

TEST(ProxyClientResponse, OrdinaryBodyLengthIsTheBodysSize) {
  Response r = upstream_response(http::status::not_found, "missing");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_EQ(r.result(), http::status::not_found);
  EXPECT_EQ(values_of(r.base(), "Content-Length"), std::vector<std::string>{"7"});
  EXPECT_EQ(r.body(), "missing");
}

TEST(ProxyClientResponse, KeepAliveFalseClosesTheConnection) {
  Response r = upstream_response(http::status::ok, "x");
  make_client_response(r, false, 11, false, "x-figshift-upstream", "B1");
  EXPECT_EQ(values_of(r.base(), "Connection"), std::vector<std::string>{"close"});
  EXPECT_FALSE(r.keep_alive());
}

TEST(ProxyClientResponse, UpstreamCloseDoesNotCloseTheClient) {
  Response r = upstream_response(http::status::ok, "x");
  r.set(http::field::connection, "close");
  make_client_response(r, false, 11, true, "x-figshift-upstream", "B1");
  EXPECT_TRUE(r.keep_alive());
  for (const auto& v : values_of(r.base(), "Connection")) EXPECT_NE(v, "close");
}

TEST(ProxyClientResponse, Http10ClientGetsAnHttp10Response) {
  Response r = upstream_response(http::status::ok, "x");
  make_client_response(r, false, 10, true, "x-figshift-upstream", "B1");
  EXPECT_EQ(r.version(), 10);
  EXPECT_TRUE(r.keep_alive());
  EXPECT_EQ(values_of(r.base(), "Connection"), std::vector<std::string>{"keep-alive"});

  Response closing = upstream_response(http::status::ok, "x");
  make_client_response(closing, false, 10, false, "x-figshift-upstream", "B1");
  EXPECT_FALSE(closing.keep_alive());
}

// ---- json_error ------------------------------------------------------------

TEST(ProxyJsonError, BodyIsAnErrorObject) {
  const Response r = json_error(http::status::bad_gateway, "upstream unreachable", 11, true);
  EXPECT_EQ(r.result(), http::status::bad_gateway);
  EXPECT_EQ(r.version(), 11);
  const auto body = nlohmann::json::parse(r.body());
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body.size(), 1u);
  EXPECT_EQ(body["error"], "upstream unreachable");
  EXPECT_EQ(values_of(r.base(), "Content-Type"), std::vector<std::string>{"application/json"});
  EXPECT_EQ(values_of(r.base(), "Content-Length"),
            std::vector<std::string>{std::to_string(r.body().size())});
  EXPECT_TRUE(r.keep_alive());
}

TEST(ProxyJsonError, MessageIsEscaped) {
  const std::string message = "bad \"quote\" \\ and\nnewline \t Zo\xC3\xAB";
  const Response r = json_error(http::status::bad_request, message, 11, false);
  EXPECT_EQ(nlohmann::json::parse(r.body())["error"], message);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_EQ(values_of(r.base(), "Connection"), std::vector<std::string>{"close"});
}

TEST(ProxyJsonError, EveryStatusTheProxyAnswers) {
  for (auto status : {http::status::bad_request, http::status::payload_too_large,
                      http::status::request_header_fields_too_large, http::status::bad_gateway,
                      http::status::gateway_timeout, http::status::service_unavailable}) {
    const Response r = json_error(status, "x", 10, false);
    EXPECT_EQ(r.result(), status);
    EXPECT_EQ(r.version(), 10);
    EXPECT_EQ(nlohmann::json::parse(r.body())["error"], "x");
  }
}

// What a partial write leaves of head + body must be exactly the unsent bytes.
TEST(ProxyHeadAndBody, ConsumeLeavesExactlyTheUnsentBytes) {
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n", body = "{\"ok\":true}";
  const std::string all = head + body;
  for (std::size_t sent = 0; sent <= all.size(); ++sent) {
    HeadAndBody wire(head, body);
    wire.consume(sent);
    std::string rest;
    for (const auto& part : wire) rest.append(static_cast<const char*>(part.data()), part.size());
    EXPECT_EQ(rest, all.substr(sent)) << "after " << sent << " bytes";
    EXPECT_EQ(wire.size(), all.size() - sent);
  }
}

// The data path's field lookups (first_field / field_value) must answer what
// Beast's own lookup by name answers.
TEST(ProxyFieldLookup, AgreesWithBeastsLookupByName) {
  Fields fields;
  fields.insert("HOST", "first.example");  // any spelling is the known field
  fields.insert("X-Other", "1");
  fields.insert(http::field::host, "second.example");
  fields.insert("authorization", "Basic YWxpY2U6eA==");
  for (auto name : {http::field::host, http::field::authorization, http::field::expect,
                    http::field::connection}) {
    EXPECT_EQ(field_value(fields, name), fields[name]) << http::to_string(name);
    EXPECT_EQ(first_field(fields, name) == fields.end(), fields.find(name) == fields.end());
  }
  EXPECT_EQ(field_value(fields, http::field::host), "first.example");
  EXPECT_EQ(field_value(fields, http::field::expect), "");
}


// ---- methods Beast has no verb for (RegressionUnknownMethod) ----------------
// Regression (found by fuzz_request_head, input tests/fuzz/crashes/fuzz_request_head/):
// a request with a method Beast has no verb for ("LOST", the new HTTP "QUERY")
// made the upstream request's construction call method(verb::unknown), which throws; the
// exception left the worker's io_context::run() and terminated the daemon.
// The method must be forwarded as sent.

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
    ASSERT_NO_THROW(write_upstream_head(client, upstream, "/prod/orders", "192.0.2.1", "http", false,
                                        {}, false, head))
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
  write_upstream_head(client, upstream, "/x", "192.0.2.1", "http", false, {}, false, head);
  EXPECT_EQ(head.substr(0, head.find("\r\n")), "PURGE /x HTTP/1.1");
}


// --- #15: streamed bodies and WebSocket handshakes ---------------------------

// A head as a client of ours parses it: fields by lower-case name.
std::vector<std::string> head_lines(const std::string& head) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (true) {
    const auto end = head.find("\r\n", at);
    if (end == std::string::npos || end == at) break;
    out.push_back(head.substr(at, end - at));
    at = end + 2;
  }
  return out;
}

bool has_line(const std::string& head, std::string_view line) {
  for (const auto& l : head_lines(head))
    if (boost::beast::iequals(l, line)) return true;
  return false;
}

bool has_name(const std::string& head, std::string_view name) {
  for (const auto& l : head_lines(head))
    if (l.size() > name.size() && l[name.size()] == ':' &&
        boost::beast::iequals(std::string_view(l).substr(0, name.size()), name))
      return true;
  return false;
}

TEST(StreamedFraming, ChunkedRequestBodyGoesOnChunked) {
  const Upstream upstream = parse_upstream_url("A", "http://a.example");
  Request client{http::verb::post, "/up", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::transfer_encoding, "chunked");
  std::string head;
  write_upstream_head(client, upstream, "/up", "192.0.2.1", "http", false, BodyFraming::chunked(),
                      false, head);
  EXPECT_TRUE(has_line(head, "Transfer-Encoding: chunked")) << head;
  EXPECT_FALSE(has_name(head, "Content-Length")) << head;
  EXPECT_EQ(head.find("Transfer-Encoding"), head.rfind("Transfer-Encoding")) << "once: " << head;
}

TEST(StreamedFraming, LongBodyKeepsItsLength) {
  const Upstream upstream = parse_upstream_url("A", "http://a.example");
  Request client{http::verb::put, "/up", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::content_length, "1073741824");
  std::string head;
  write_upstream_head(client, upstream, "/up", "192.0.2.1", "http", false,
                      BodyFraming::of_length(1073741824), false, head);
  EXPECT_TRUE(has_line(head, "Content-Length: 1073741824")) << head;
  EXPECT_FALSE(has_name(head, "Transfer-Encoding")) << head;
}

TEST(StreamedFraming, WebSocketHandshakeKeepsItsUpgradeOnlyWhenAsked) {
  const Upstream upstream = parse_upstream_url("A", "http://a.example");
  Request client{http::verb::get, "/ws", 11};
  client.set(http::field::host, "shop.example");
  client.set(http::field::connection, "keep-alive, Upgrade");
  client.set(http::field::upgrade, "websocket");
  client.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  std::string head;
  write_upstream_head(client, upstream, "/ws", "192.0.2.1", "http", false, {}, true, head);
  EXPECT_TRUE(has_line(head, "Connection: upgrade")) << head;
  EXPECT_TRUE(has_line(head, "Upgrade: websocket")) << head;
  EXPECT_TRUE(has_line(head, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")) << head;
  write_upstream_head(client, upstream, "/ws", "192.0.2.1", "http", false, {}, false, head);
  EXPECT_FALSE(has_name(head, "Upgrade")) << "hop-by-hop unless it is a handshake: " << head;
  EXPECT_FALSE(has_name(head, "Connection")) << head;
}

TEST(StreamedFraming, SwitchingProtocolsRelaysTheUpgrade) {
  Response res{http::status::switching_protocols, 11};
  res.set(http::field::upgrade, "websocket");
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string head;
  write_client_head(res, false, 11, true, {}, "x-figshift-upstream", "A", head);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 101 ")) << head;
  EXPECT_TRUE(has_line(head, "Connection: upgrade")) << head;
  EXPECT_TRUE(has_line(head, "Upgrade: websocket")) << head;
  EXPECT_TRUE(has_line(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) << head;
  EXPECT_FALSE(has_name(head, "Content-Length")) << head;
}

TEST(StreamedFraming, ResponseFramingAsTold) {
  Response res{http::status::ok, 11};
  res.set(http::field::transfer_encoding, "chunked");
  res.set(http::field::content_type, "text/event-stream");
  std::string head;
  write_client_head(res, false, 11, true, BodyFraming::chunked(), "", "A", head);
  EXPECT_TRUE(has_line(head, "Transfer-Encoding: chunked")) << head;
  EXPECT_FALSE(has_name(head, "Content-Length")) << head;
  // Ended by the close, for an HTTP/1.0 client: no length at all, and no keep-alive.
  write_client_head(res, false, 10, false, {BodyFraming::Kind::until_close, 0}, "", "A", head);
  EXPECT_FALSE(has_name(head, "Transfer-Encoding")) << head;
  EXPECT_FALSE(has_name(head, "Content-Length")) << head;
  EXPECT_FALSE(has_line(head, "Connection: keep-alive")) << head;
}

}  // namespace
}  // namespace figshift::proxy
