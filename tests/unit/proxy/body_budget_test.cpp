// BodyBudget: what a worker may hold of request bodies at once (issue #18, finding 4).
#include "proxy/body_budget.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace figshift::proxy {
namespace {

TEST(ProxyBodyBudget, TakesWhatFitsAndRefusesTheRest) {
  BodyBudget budget(100);
  BodyBudget::Lease a, b, c;
  EXPECT_TRUE(budget.try_take(60, a));
  EXPECT_TRUE(budget.try_take(40, b));
  EXPECT_EQ(budget.in_use(), 100u);
  EXPECT_FALSE(budget.try_take(1, c));
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(budget.rejections(), 1u);
  EXPECT_TRUE(budget.try_take(0, c));  // no body: always fits, never counted
  EXPECT_EQ(budget.rejections(), 1u);
}

TEST(ProxyBodyBudget, LeasesGiveBackExactlyOnce) {
  BodyBudget budget(100);
  {
    BodyBudget::Lease a;
    ASSERT_TRUE(budget.try_take(70, a));
    BodyBudget::Lease moved = std::move(a);
    EXPECT_EQ(a.bytes(), 0u);
    EXPECT_EQ(budget.in_use(), 70u);
    moved.reset();
    moved.reset();
    EXPECT_EQ(budget.in_use(), 0u);
    ASSERT_TRUE(budget.try_take(30, moved));
  }  // destroyed: given back
  EXPECT_EQ(budget.in_use(), 0u);
  BodyBudget::Lease d;
  ASSERT_TRUE(budget.try_take(50, d));
  ASSERT_TRUE(budget.try_take(20, d));  // a second take replaces the first
  EXPECT_EQ(budget.in_use(), 20u);
}

TEST(ProxyBodyBudget, ALargerBodyThanTheWholeBudgetIsRefused) {
  BodyBudget budget(10);
  BodyBudget::Lease a;
  EXPECT_FALSE(budget.try_take(11, a));
  EXPECT_FALSE(budget.try_take(~0ull, a));
  EXPECT_EQ(budget.in_use(), 0u);
}

}  // namespace
}  // namespace figshift::proxy
