#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "figshift/routing.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "routing_test_support.hpp"

namespace figshift {
namespace {

using routing_test::Name;
using routing_test::basic_header;
using routing_test::property_iterations;
using routing_test::random_bytes;
using routing_test::random_name;

constexpr std::int64_t now = 1'700'000'000'000;

Upstream upstream(std::string name, std::string base_path) {
  Upstream u;
  u.name = std::move(name);
  u.host = u.name + ".example";
  u.base_path = std::move(base_path);
  return u;
}

// A (legacy, no base path), B1 (API Gateway stage "/prod"), B2.
Snapshot make_snapshot(int split) {
  Snapshot s;
  s.upstreams = {upstream("A", ""), upstream("B1", "/prod"), upstream("B2", "")};
  s.legacy = 0;
  s.routes = RouteTable({Route{"/orders", 1, "/v2/orders"}, Route{"/users", 2, std::nullopt},
                         Route{"/static/", 2, "/assets"}});
  s.split = split;
  return s;
}

// Buckets from docs/design.md §1: polygenelubricants 0, Zoë 14, user42 41, hello 70.
const std::string low = basic_header("polygenelubricants");
const std::string high = basic_header("hello");

Decision run(const Snapshot& s, std::string_view target, std::string_view authorization) {
  return decide(RequestHead{.target = target, .authorization = authorization}, s, now);
}

TEST(RoutingDecide, AnonymousIsLegacyWithoutBucket) {
  const Snapshot s = make_snapshot(100);
  for (const char* auth : {"", "Bearer token", "Basic dXNlcg==", "Basic !!!"}) {
    const Decision d = run(s, "/orders/7", auth);
    EXPECT_EQ(d.group, Group::legacy) << auth;
    EXPECT_EQ(d.bucket, -1) << auth;
    EXPECT_EQ(d.upstream->name, "A") << auth;
    EXPECT_EQ(d.target, "/orders/7") << auth;
  }
}

TEST(RoutingDecide, MigratedWithRouteAndRewriteUsesBasePath) {
  const Snapshot s = make_snapshot(50);
  const Decision d = run(s, "/orders/7", low);
  EXPECT_EQ(d.group, Group::migrated);
  EXPECT_EQ(d.bucket, 0);
  EXPECT_EQ(d.upstream->name, "B1");
  EXPECT_EQ(d.target, "/prod/v2/orders/7");
  EXPECT_EQ(run(s, "/orders", low).target, "/prod/v2/orders");
  EXPECT_EQ(run(s, "/orders/", low).target, "/prod/v2/orders/");
}

TEST(RoutingDecide, MigratedWithRouteWithoutRewrite) {
  const Snapshot s = make_snapshot(50);
  const Decision d = run(s, "/users/9", low);
  EXPECT_EQ(d.group, Group::migrated);
  EXPECT_EQ(d.upstream->name, "B2");
  EXPECT_EQ(d.target, "/users/9");
}

TEST(RoutingDecide, MigratedWithoutRouteStaysOnLegacy) {
  const Snapshot s = make_snapshot(50);
  for (const char* target : {"/accounts/1", "/ordersx", "/", "/static"}) {
    const Decision d = run(s, target, low);
    EXPECT_EQ(d.group, Group::migrated) << target;
    EXPECT_EQ(d.bucket, 0) << target;
    EXPECT_EQ(d.upstream->name, "A") << target;
    EXPECT_EQ(d.target, target) << target;
  }
}

TEST(RoutingDecide, LegacyUserOnMigratedPathStaysOnLegacy) {
  const Snapshot s = make_snapshot(50);
  const Decision d = run(s, "/orders/7", high);
  EXPECT_EQ(d.group, Group::legacy);
  EXPECT_EQ(d.bucket, 70);
  EXPECT_EQ(d.upstream->name, "A");
  EXPECT_EQ(d.target, "/orders/7");
}

// Group for `authorization` under a static split.
Group group_at(int split, const std::string& authorization) {
  const Snapshot s = make_snapshot(split);
  return run(s, "/users", authorization).group;
}

TEST(RoutingDecide, BucketIsStrictlyBelowTheSplit) {
  const std::string user42 = basic_header("user42");  // bucket 41
  EXPECT_EQ(group_at(41, user42), Group::legacy);
  EXPECT_EQ(group_at(42, user42), Group::migrated);
  EXPECT_EQ(group_at(0, low), Group::legacy);
  EXPECT_EQ(group_at(100, high), Group::migrated);
}

TEST(RoutingDecide, UnicodeUsernames) {
  const std::string zoe = basic_header("Zo\xC3\xAB");  // bucket 14
  EXPECT_EQ(group_at(14, zoe), Group::legacy);
  EXPECT_EQ(group_at(15, zoe), Group::migrated);
  const Snapshot s = make_snapshot(0);
  EXPECT_EQ(run(s, "/", zoe).bucket, 14);
  EXPECT_EQ(run(s, "/", basic_header("\xF0\x9F\x98\x80")).bucket, 47);
}

TEST(RoutingDecide, LegacyBasePathIsJoined) {
  Snapshot s = make_snapshot(0);
  s.upstreams[0].base_path = "/stage";
  EXPECT_EQ(run(s, "/orders/7", high).target, "/stage/orders/7");
  EXPECT_EQ(run(s, "/", "").target, "/stage/");
  EXPECT_EQ(run(s, "/?a=1", "").target, "/stage/?a=1");
}

TEST(RoutingDecide, QueryIsKeptAsIs) {
  const Snapshot s = make_snapshot(50);
  EXPECT_EQ(run(s, "/orders/7?x=1&y=%2F/?z", low).target, "/prod/v2/orders/7?x=1&y=%2F/?z");
  EXPECT_EQ(run(s, "/orders?", low).target, "/prod/v2/orders?");
  EXPECT_EQ(run(s, "/accounts?q=/orders", low).target, "/accounts?q=/orders");
  // The route is chosen by the path only, never by the query.
  EXPECT_EQ(run(s, "/accounts?q=/orders", low).upstream->name, "A");
}

TEST(RoutingDecide, AbsoluteFormTarget) {
  const Snapshot s = make_snapshot(50);
  EXPECT_EQ(run(s, "http://api.example.com/orders/7?x=1", low).target, "/prod/v2/orders/7?x=1");
  EXPECT_EQ(run(s, "https://api.example.com:8443/orders/7", low).upstream->name, "B1");
  EXPECT_EQ(run(s, "HTTP://api.example.com/users/1", low).target, "/users/1");
  EXPECT_EQ(run(s, "http://api.example.com", low).target, "/");
  EXPECT_EQ(run(s, "http://api.example.com?x=1", low).target, "/?x=1");
  EXPECT_EQ(run(s, "http://api.example.com:80", "").target, "/");
}

TEST(RoutingDecide, RewriteReplacesWholeSegments) {
  Snapshot s = make_snapshot(50);
  EXPECT_EQ(run(s, "/static/app.js", low).target, "/assets/app.js");
  EXPECT_EQ(run(s, "/static/", low).target, "/assets/");
  s.routes = RouteTable({Route{"/", 2, "/api"}, Route{"/old", 2, "/"}});
  EXPECT_EQ(run(s, "/x/y", low).target, "/api/x/y");
  EXPECT_EQ(run(s, "/", low).target, "/api/");
  EXPECT_EQ(run(s, "/old", low).target, "/");
  EXPECT_EQ(run(s, "/old/1", low).target, "/1");
}

TEST(RoutingDecide, SaltSeedIsPrepended) {
  Snapshot s = make_snapshot(71);
  s.salt = "hel";
  s.salt_seed = java_hash_code(u"hel");
  // "hel" + "lo" hashes like "hello": bucket 70.
  EXPECT_EQ(run(s, "/users", basic_header("lo")).bucket, 70);
  s.salt_seed = 0;
  EXPECT_NE(run(s, "/users", basic_header("lo")).bucket, 70);
}

TEST(RoutingDecide, RampDrivesTheSplit) {
  Snapshot s = make_snapshot(0);
  s.ramp = Ramp{.from = 0, .to = 100, .start_ms = now, .duration_ms = 100};
  const std::string user42 = basic_header("user42");  // bucket 41
  EXPECT_EQ(decide({.target = "/users", .authorization = user42}, s, now + 41).group,
            Group::legacy);
  EXPECT_EQ(decide({.target = "/users", .authorization = user42}, s, now + 42).group,
            Group::migrated);
}


// Dot segments are removed before routing (src/routing/path.cpp normalize_path): a path
// cannot climb out of a rewritten prefix.
TEST(RoutingNormalizePath, DecideRoutesAndForwardsTheNormalizedPath) {
  auto snapshot = build_snapshot({{"APIGW_A_URL", "http://a"},
                                  {"APIGW_B1_URL", "http://b1"},
                                  {"traffic-split", "100"},
                                  {"route:/orders", "B1 /v2/orders"}});
  // "hello" is bucket 70 < 100: the new group.
  const std::string hello = "Basic aGVsbG86cHc=";  // hello:pw
  auto escaped = decide({"/orders/../admin", hello}, *snapshot, 0);
  EXPECT_EQ(escaped.upstream->name, "A");
  EXPECT_EQ(escaped.target, "/admin");
  auto encoded = decide({"/orders/%2e%2e/admin?x=1", hello}, *snapshot, 0);
  EXPECT_EQ(encoded.upstream->name, "A");
  EXPECT_EQ(encoded.target, "/admin?x=1");
  auto inside = decide({"/x/../orders/7", hello}, *snapshot, 0);
  EXPECT_EQ(inside.upstream->name, "B1");
  EXPECT_EQ(inside.target, "/v2/orders/7");
}

// ---- properties over many random inputs (RoutingProperties) ---------------

Snapshot snapshot_with_split(int split) {
  Snapshot s;
  Upstream a;
  a.name = "A";
  Upstream b;
  b.name = "B";
  s.upstreams = {a, b};
  s.routes = RouteTable({Route{"/", 1, std::nullopt}});
  s.split = split;
  return s;
}

TEST(RoutingProperties, DecideMatchesBucketOfThroughTheHeader) {
  std::mt19937 rng(4242);
  const Snapshot s = snapshot_with_split(50);
  for (int i = 0; i < property_iterations; ++i) {
    if (i % 2 == 0) {
      // A valid name: the bucket the closed form gives for its UTF-16.
      const Name name = random_name(rng);
      const std::string header = basic_header(name.utf8, "pw");
      const Decision d = decide({.target = "/", .authorization = header}, s, 0);
      ASSERT_EQ(d.bucket, routing_test::bucket_closed_form(routing_test::java_hash_closed_form(name.utf16)))
          << i;
      continue;
    }
    // Random bytes (invalid UTF-8 too): decide() agrees with bucket_of() on the username part.
    const std::string bytes = random_bytes(rng);
    const std::string header = basic_header(bytes, "pw");
    const Decision d = decide({.target = "/", .authorization = header}, s, 0);
    if (bytes.find(':') != std::string::npos) {
      // The username ends at the first ':' the random bytes happen to hold.
      ASSERT_EQ(d.bucket, bucket_of(bytes.substr(0, bytes.find(':')))) << i;
    } else {
      ASSERT_EQ(d.bucket, bucket_of(bytes)) << i;
    }
  }
}

TEST(RoutingProperties, RaisingTheSplitNeverMovesAUserBack) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> split(0, 100);
  for (int i = 0; i < property_iterations; ++i) {
    const std::string header = basic_header(random_name(rng).utf8);
    const int s = split(rng);
    const int k = std::uniform_int_distribution<int>(0, 100 - s)(rng);
    const Snapshot lower = snapshot_with_split(s);
    const Snapshot higher = snapshot_with_split(s + k);
    const Decision before = decide({.target = "/x", .authorization = header}, lower, 0);
    const Decision after = decide({.target = "/x", .authorization = header}, higher, 0);
    ASSERT_EQ(before.bucket, after.bucket);
    if (before.group == Group::migrated) {
      ASSERT_EQ(after.group, Group::migrated) << "split " << s << " -> " << s + k;
      ASSERT_EQ(after.upstream->name, "B");
    }
    ASSERT_EQ(before.group == Group::migrated, before.bucket < s);
  }
}


}  // namespace
}  // namespace figshift
