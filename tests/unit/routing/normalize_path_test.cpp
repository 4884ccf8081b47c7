// Dot-segment removal (RFC 3986 §5.2.4, with the RFC's own examples) and its
// effect on routing: a path must not climb out of a rewritten prefix.
#include <gtest/gtest.h>

#include "figshift/routing.hpp"
#include "figshift/store/snapshot_builder.hpp"

namespace figshift {
namespace {

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

}  // namespace
}  // namespace figshift
