// src/routing/path.cpp: the paths figshift refuses (path_problem), dot-segment
// removal (normalize_path), the path and query of a request-target
// (split_target) and the base path joined to it (join_path).
//
// Refused paths (issue #18, finding 3): upstreams read them differently; each
// form below once reached B1 as "/v2/orders/…" verbatim and resolved to
// "/v2/admin" on an upstream that decodes or maps it.
//
// Dot-segment removal: RFC 3986 §5.2.4, with the RFC's own examples.
#include <gtest/gtest.h>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

TEST(RoutingPathProblem, RefusesEveryEscapeForm) {
  for (const char* path : {
           "/orders/..%2fadmin", "/orders/..%2Fadmin", "/orders/%2e%2e%2fadmin",
           "/orders/..;/admin", "/orders/.;/admin", "/orders/..;jsessionid=1/admin",
           "/orders/%2e%2e;/admin", "/orders/..%3b/admin", "/orders/%2E%2E%3B/admin",
           "/orders/..\\admin", "/orders\\..\\admin", "/orders/..%5cadmin", "/orders/..%5Cadmin",
           "/orders/%252e%252e/admin", "/orders/%252E%252E/admin", "/orders/..%252fadmin",
           "/orders/..%255cadmin", "/orders/a%00b", "/orders/a%2500b"}) {
    EXPECT_FALSE(path_problem(path).empty()) << path;
  }
}

TEST(RoutingPathProblem, NamesWhatIsWrong) {
  EXPECT_EQ(path_problem("/a%2Fb"), "encoded slash (%2F) in the request path");
  EXPECT_EQ(path_problem("/a\\b"), "backslash in the request path");
  EXPECT_EQ(path_problem("/a/..;/b"), "dot segment with parameters (\"..;\") in the request path");
}

TEST(RoutingPathProblem, AcceptsOrdinaryPaths) {
  for (const char* path : {
           "/", "/orders/7", "/orders/../admin",  // plain dot segments are normalized, not refused
           "/orders/%2e%2e/admin", "/a%20b/%41", "/files/100%25", "/a%25b", "/a;b=1/c",
           "/matrix;v=1", "/a/...;/b", "/a/.x;y", "/a/x..;/b", "/%3b", "/q%3Fx"}) {
    EXPECT_EQ(path_problem(path), "") << path;
  }
}

TEST(RoutingSplitTarget, OriginAndAbsoluteForm) {
  EXPECT_EQ(split_target("/a/b?x=1").path, "/a/b");
  EXPECT_EQ(split_target("/a/b?x=1").query.value(), "x=1");
  EXPECT_FALSE(split_target("/a").query.has_value());
  EXPECT_EQ(split_target("HTTP://host:8/p/q?").path, "/p/q");
  EXPECT_EQ(split_target("https://host").path, "/");
  EXPECT_EQ(split_target("http://host?x").query.value(), "x");
}

TEST(RoutingNormalizePath, RemovesDotSegments) {
  EXPECT_EQ(normalize_path("/a/b/c/./../../g"), "/a/g");  // RFC 3986 §5.2.4 example
  EXPECT_EQ(normalize_path("/orders/../admin"), "/admin");
  EXPECT_EQ(normalize_path("/orders/./7"), "/orders/7");
  EXPECT_EQ(normalize_path("/a/.."), "/");
  EXPECT_EQ(normalize_path("/a/b/."), "/a/b/");
  EXPECT_EQ(normalize_path("/../../x"), "/x");  // cannot climb above the root
  EXPECT_EQ(normalize_path("/.."), "/");
}

TEST(RoutingNormalizePath, EncodedDotsCountAsDots) {
  EXPECT_EQ(normalize_path("/orders/%2e%2e/admin"), "/admin");
  EXPECT_EQ(normalize_path("/orders/%2E./admin"), "/admin");
  EXPECT_EQ(normalize_path("/a/%2e/b"), "/a/b");
}

TEST(RoutingNormalizePath, LeavesOrdinaryPathsAlone) {
  EXPECT_EQ(normalize_path("/orders/7"), "/orders/7");
  EXPECT_EQ(normalize_path("/a/.hidden/..x/x.."), "/a/.hidden/..x/x..");
  EXPECT_EQ(normalize_path("/a%20b/%41"), "/a%20b/%41");
  EXPECT_EQ(normalize_path("/a//b"), "/a//b");
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

}  // namespace
}  // namespace figshift
