#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

Route route(std::string prefix, std::size_t upstream, std::optional<std::string> replacement = {}) {
  return Route{std::move(prefix), upstream, std::move(replacement)};
}

// The prefix of the matched route, or "" when nothing matches.
std::string matched(const RouteTable& table, std::string_view path) {
  const Route* r = table.match(path);
  return r ? r->prefix : std::string();
}

TEST(RoutingRouteTable, EmptyTableMatchesNothing) {
  const RouteTable table;
  EXPECT_EQ(table.match("/"), nullptr);
  EXPECT_EQ(table.match("/orders"), nullptr);
}

TEST(RoutingRouteTable, SegmentBoundary) {
  const RouteTable table({route("/orders", 1)});
  EXPECT_EQ(matched(table, "/orders"), "/orders");
  EXPECT_EQ(matched(table, "/orders/"), "/orders");
  EXPECT_EQ(matched(table, "/orders/7"), "/orders");
  EXPECT_EQ(matched(table, "/orders/7/items"), "/orders");
  EXPECT_EQ(matched(table, "/ordersx"), "");
  EXPECT_EQ(matched(table, "/orders-archive"), "");
  EXPECT_EQ(matched(table, "/order"), "");
  EXPECT_EQ(matched(table, "/Orders"), "");  // paths are case-sensitive
  EXPECT_EQ(matched(table, "/v1/orders"), "");
  EXPECT_EQ(matched(table, "/"), "");
}

TEST(RoutingRouteTable, LongestPrefixWinsWhateverTheInputOrder) {
  const std::vector<Route> routes = {route("/api", 1), route("/api/orders/special", 3),
                                     route("/api/orders", 2)};
  const std::vector<Route> reversed(routes.rbegin(), routes.rend());
  for (const auto& input : {routes, reversed}) {
    const RouteTable table(input);
    EXPECT_EQ(matched(table, "/api/orders/special/1"), "/api/orders/special");
    EXPECT_EQ(matched(table, "/api/orders/specialx"), "/api/orders");
    EXPECT_EQ(matched(table, "/api/orders/7"), "/api/orders");
    EXPECT_EQ(matched(table, "/api/ordersx"), "/api");
    EXPECT_EQ(matched(table, "/api"), "/api");
    EXPECT_EQ(matched(table, "/apix"), "");
    EXPECT_EQ(table.match("/api/orders/7")->upstream, 2u);
  }
}

TEST(RoutingRouteTable, RoutesAreKeptLongestFirst) {
  const RouteTable table({route("/a", 0), route("/abc/d", 0), route("/", 0), route("/abc", 0)});
  ASSERT_EQ(table.routes().size(), 4u);
  EXPECT_EQ(table.routes()[0].prefix, "/abc/d");
  EXPECT_EQ(table.routes()[1].prefix, "/abc");
  EXPECT_EQ(table.routes()[2].prefix, "/a");
  EXPECT_EQ(table.routes()[3].prefix, "/");
}

TEST(RoutingRouteTable, RootIsACatchAll) {
  const RouteTable table({route("/", 1), route("/orders", 2)});
  EXPECT_EQ(matched(table, "/"), "/");
  EXPECT_EQ(matched(table, "/anything/at/all"), "/");
  EXPECT_EQ(matched(table, "/ordersx"), "/");
  EXPECT_EQ(matched(table, "/orders/1"), "/orders");
}

TEST(RoutingRouteTable, TrailingSlashPrefix) {
  const RouteTable table({route("/orders/", 1)});
  EXPECT_EQ(matched(table, "/orders/"), "/orders/");
  EXPECT_EQ(matched(table, "/orders/7"), "/orders/");
  EXPECT_EQ(matched(table, "/orders"), "");  // the prefix asks for the slash
  EXPECT_EQ(matched(table, "/ordersx"), "");
}

}  // namespace
}  // namespace figshift
