// Snapshot (src/routing/snapshot.cpp): finding an upstream by name.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

Upstream named(std::string name) {
  Upstream u;
  u.name = std::move(name);
  return u;
}

// A, B1, B2, sorted by name as the store builds them.
Snapshot make_snapshot() {
  Snapshot s;
  s.upstreams = {named("A"), named("B1"), named("B2")};
  return s;
}

TEST(RoutingSnapshot, FindByName) {
  const Snapshot s = make_snapshot();
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
