#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "figshift/routing.hpp"
#include "routing_test_support.hpp"

namespace figshift {
namespace {

using routing_test::basic_header;

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

TEST(RoutingJoinPath, ExactlyOneSlashBetweenParts) {
  EXPECT_EQ(join_path("", "/x"), "/x");
  EXPECT_EQ(join_path("", "/"), "/");
  EXPECT_EQ(join_path("/prod", "/"), "/prod/");
  EXPECT_EQ(join_path("/prod", "/orders/7"), "/prod/orders/7");
  EXPECT_EQ(join_path("/prod/", "/orders/7"), "/prod/orders/7");
  EXPECT_EQ(join_path("/prod", "orders/7"), "/prod/orders/7");
  EXPECT_EQ(join_path("/prod/", "orders"), "/prod/orders");
  EXPECT_EQ(join_path("/prod", ""), "/prod");
  EXPECT_EQ(join_path("/", "/x"), "/x");
  EXPECT_EQ(join_path("/prod", "//x"), "/prod//x");  // slashes inside the path are the client's
}

TEST(RoutingSnapshot, FindByName) {
  const Snapshot s = make_snapshot(0);
  ASSERT_NE(s.find("B1"), nullptr);
  EXPECT_EQ(s.find("B1"), &s.upstreams[1]);
  EXPECT_EQ(s.find("A"), &s.upstreams[0]);
  EXPECT_EQ(s.find("B2"), &s.upstreams[2]);
  EXPECT_EQ(s.find("B"), nullptr);
  EXPECT_EQ(s.find("C"), nullptr);
  EXPECT_EQ(s.find(""), nullptr);
  EXPECT_EQ(Snapshot{}.find("A"), nullptr);
}

}  // namespace
}  // namespace figshift
