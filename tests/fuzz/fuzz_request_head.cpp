// A whole request (head and maybe a body) through Beast's request parser with
// the proxy's limits, then the routing decision on a fixed Snapshot and the
// upstream request built from it:
//  - no crash, no sanitizer report;
//  - decide() always names an upstream of the Snapshot and a target starting with '/';
//  - the upstream request serialises into bytes that parse back to one
//    request with the same target and body and nothing left over (what we
//    send cannot be framed differently by the upstream).
//
// The first input byte picks the Snapshot (split 0, 50 or 100; with or without
// base paths and replacements; user-key basic, header, cookie or jwt with
// pins and 100 or 10000 buckets, #17); the rest is the bytes a client sent.
//  - the bucket is below the Snapshot's bucket count; a pinned user is in
//    the pin's group; a user is counted (user_hash) exactly when it has a bucket.

#include <spdlog/spdlog.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "figshift/config.hpp"
#include "figshift/identity.hpp"
#include "figshift/routing.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "fuzz_support.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http_rewrite.hpp"
#include "proxy/request_checks.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using figshift::fuzz::as_view;

const figshift::Snapshot& snapshot(unsigned pick) {
  static const auto snapshots = [] {
    std::vector<std::shared_ptr<const figshift::Snapshot>> out;
    for (const char* split : {"0", "50", "100"}) {
      // Who is the user (#17): each key mode, pins, and 10000 buckets with decimals.
      for (const char* user_key : {"header:X-User", "cookie:sid", "jwt", "jwt:uid"}) {
        const bool fine = user_key[0] != 'j';
        out.push_back(figshift::build_snapshot({
            {"APIGW_A_URL", "http://legacy.example:8080"},
            {"APIGW_B1_URL", "http://b1.example"},
            {"traffic-split", fine && split[0] == '5' ? "33.33" : split},
            {"buckets", fine ? "10000" : "100"},
            {"user-key", user_key},
            {"pin:alice", "new"},
            {"pin:bob", "legacy"},
            {"route:/", "B1"},
        }));
      }
      out.push_back(figshift::build_snapshot({
          {"APIGW_A_URL", "http://legacy.example:8080"},
          {"APIGW_B1_URL", "http://b1.example"},
          {"APIGW_B2_URL", "https://b2.example"},
          {"traffic-split", split},
          {"route:/", "B1"},
          {"route:/orders", "B2"},
          {"route:/users/", "B1"},
      }));
      out.push_back(figshift::build_snapshot({
          {"APIGW_A_URL", "https://legacy.example/stage/"},
          {"APIGW_B1_URL", "https://b1.execute-api.eu-west-1.amazonaws.com/prod"},
          {"APIGW_B2_URL", "http://[::1]:9000/v2"},
          {"traffic-split", split},
          {"hash-salt", "s\xC3\xA9l"},
          {"route:/", "B2 /api"},
          {"route:/orders", "B1 /v2/orders"},
          {"route:/a/b", "B2 /"},
          {"route:/x/", "B1 /y/"},
      }));
    }
    return out;
  }();
  return *snapshots[pick % snapshots.size()];
}

using figshift::proxy::Request;
using figshift::proxy::RequestParser;

// Feeds `bytes` the way the proxy's reads do; true when a whole request was read.
bool parse(std::string_view bytes, RequestParser& parser, std::size_t& used) {
  const figshift::Config defaults;
  parser.header_limit(defaults.limits.header_bytes);
  parser.body_limit(64 * 1024);  // the proxy allows 10 MiB; inputs are far smaller
  used = 0;
  beast::error_code ec;
  while (used < bytes.size() && !parser.is_done()) {
    const std::size_t n =
        parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      if (n == 0) break;
      ec = {};
      continue;
    }
    if (ec) return false;
  }
  if (!parser.is_done() && parser.is_header_done() && !ec) {
    parser.put_eof(ec);  // the client closed: a body without length ends here
  }
  return !ec && parser.is_done();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const figshift::Snapshot& snap = snapshot(data[0]);
  const std::string_view bytes = as_view(data + 1, size - 1);

  // Parsed into a recycled exchange's arena, as the proxy parses requests.
  static figshift::proxy::Exchange exchange;
  exchange.reset();
  RequestParser& parser = exchange.start_request();
  std::size_t used = 0;
  const bool complete = parse(bytes, parser, used);
  if (!parser.is_header_done()) return 0;
  Request& request = parser.get();
  // The proxy refuses these before routing: the same function it calls.
  if (!figshift::proxy::request_problem(request.base()).empty()) return 0;

  // The proxy's reader of user keys (one per worker); a secret of 32 'k's as
  // key "h1", so a seed can carry a valid HS256 token.
  static figshift::TokenStats token_stats;
  static figshift::UserKeyReader reader({}, token_stats);
  static const bool keyed = [] {
    std::string error;
    reader.set_keys(figshift::parse_jwks(
        R"({"keys":[{"kty":"oct","kid":"h1","k":"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"}]})",
        error));
    return error.empty();
  }();
  FUZZ_CHECK(keyed);
  constexpr std::int64_t now_ms = 1'700'000'000'000;
  const figshift::Decision decision =
      figshift::decide(figshift::RequestHead{request.target(), request[http::field::authorization],
                                             reader.user_field(request, snap, now_ms)},
                       snap, now_ms);
  FUZZ_CHECK(decision.upstream != nullptr);
  FUZZ_CHECK(decision.upstream >= snap.upstreams.data() &&
             decision.upstream < snap.upstreams.data() + snap.upstreams.size());
  FUZZ_CHECK(!decision.target.empty() && decision.target.front() == '/');
  FUZZ_CHECK(decision.bucket >= -1 && decision.bucket < snap.buckets);
  FUZZ_CHECK((decision.bucket == -1) == (decision.user_hash == 0));
  if (decision.pinned) FUZZ_CHECK(decision.bucket != -1);
  // Nothing an upstream could resolve out of a route is forwarded.
  FUZZ_CHECK(figshift::path_problem(figshift::split_target(decision.target).path).empty());
  if (decision.bucket == -1) FUZZ_CHECK(decision.group == figshift::Group::legacy);
  if (!decision.pinned && decision.bucket >= 0)
    FUZZ_CHECK((decision.group == figshift::Group::migrated) ==
               (decision.bucket < snap.threshold_at(now_ms)));
  if (decision.group == figshift::Group::legacy)
    FUZZ_CHECK(decision.upstream == &snap.upstreams[snap.legacy]);
  if (!complete) return 0;

  // What goes to the upstream parses back as exactly one request, the same one.
  std::string sent;
  // A complete request whose body was read whole, as the session sends it.
  const bool framed = parser.content_length() || parser.chunked() || !request.body().empty();
  figshift::proxy::write_upstream_head(
      request, *decision.upstream, decision.target, "192.0.2.1", "http", (data[0] & 1) != 0,
      framed ? figshift::proxy::BodyFraming::of_length(request.body().size())
             : figshift::proxy::BodyFraming{},
      !framed && figshift::proxy::is_websocket_upgrade(request.base()), sent);
  sent += request.body();
  RequestParser reparser;
  std::size_t reused = 0;
  const bool reparsed = parse(sent, reparser, reused);
  if (!reparsed) std::fprintf(stderr, "upstream request does not parse back:\n%s\n", sent.c_str());
  FUZZ_CHECK(reparsed);
  FUZZ_CHECK(reused == sent.size());
  FUZZ_CHECK(reparser.get().target() == decision.target);
  const auto& forwarded = reparser.get();
  FUZZ_CHECK(forwarded.body() == request.body());
  FUZZ_CHECK(forwarded.method_string() == request.method_string());
  FUZZ_CHECK(forwarded.count(http::field::host) == 1);
  FUZZ_CHECK(forwarded[http::field::host] == decision.upstream->host_header);
  FUZZ_CHECK(forwarded.count(http::field::transfer_encoding) == 0);
  FUZZ_CHECK(forwarded.count(http::field::content_length) <= 1);
  return 0;
}
