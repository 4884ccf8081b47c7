// plan_progress: the split of a guarded rollout (issue #16) as a pure function
// of the plan and the wall clock. Expected values worked out by hand from the
// plan's definition: ramp from the level before to `to` over over_s, floored,
// then hold for hold_s.
#include <gtest/gtest.h>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

// The example: 5 % over 60 s, hold 300 s; 25 % over 120 s, hold 600 s; 100 % over 300 s.
TrafficPlan example() {
  return TrafficPlan{0, 1'000'000, {{5, 60'000, 300'000}, {25, 120'000, 600'000}, {100, 300'000, 0}}};
}

TEST(RoutingPlan, FollowsEveryStep) {
  const auto plan = example();
  const std::int64_t t0 = plan.start_ms;
  EXPECT_EQ(plan_progress(plan, t0 - 1).split, 0);  // not started
  EXPECT_EQ(plan_progress(plan, t0).split, 0);
  EXPECT_EQ(plan_progress(plan, t0 + 30'000).split, 2);   // 5 * 30/60 = 2.5 -> 2
  EXPECT_EQ(plan_progress(plan, t0 + 59'999).split, 4);
  EXPECT_EQ(plan_progress(plan, t0 + 60'000).split, 5);   // ramped: holding
  EXPECT_TRUE(plan_progress(plan, t0 + 60'000).holding);
  EXPECT_EQ(plan_progress(plan, t0 + 359'999).split, 5);
  EXPECT_EQ(plan_progress(plan, t0 + 360'000).split, 5);  // step 2 starts from 5
  EXPECT_EQ(plan_progress(plan, t0 + 360'000).step, 1u);
  EXPECT_EQ(plan_progress(plan, t0 + 420'000).split, 15);  // 5 + 20 * 60/120
  EXPECT_EQ(plan_progress(plan, t0 + 480'000).split, 25);
  EXPECT_EQ(plan_progress(plan, t0 + 1'080'000).split, 25);  // step 3 starts
  EXPECT_EQ(plan_progress(plan, t0 + 1'230'000).split, 62);  // 25 + 75 * 150/300 = 62.5
  const auto end = plan_progress(plan, t0 + 1'380'000);
  EXPECT_EQ(end.split, 100);
  EXPECT_TRUE(end.done);
  EXPECT_EQ(end.step, 3u);
  EXPECT_EQ(plan_progress(plan, t0 + 100'000'000).split, 100);
}

TEST(RoutingPlan, NeverMovesAUserBackDuringThePlan) {
  const auto plan = example();
  int previous = 0;
  for (std::int64_t t = plan.start_ms - 1000; t < plan.start_ms + 1'500'000; t += 777) {
    const int split = plan_progress(plan, t).split;
    EXPECT_GE(split, previous) << t;
    previous = split;
  }
}

TEST(RoutingPlan, StartsFromItsFromAndJumpsOnZeroDurations) {
  const TrafficPlan plan{10, 0, {{20, 0, 1000}, {30, 1000, 0}}};
  EXPECT_EQ(plan_progress(plan, 0).split, 20);  // over_s 0: at once
  EXPECT_EQ(plan_progress(plan, 999).split, 20);
  EXPECT_EQ(plan_progress(plan, 1500).split, 25);
  EXPECT_EQ(plan_progress(plan, 2000).split, 30);
  const TrafficPlan from_ten{10, 0, {{20, 10'000, 0}}};
  EXPECT_EQ(plan_progress(from_ten, 5000).split, 15);
}

TEST(RoutingPlan, TheSnapshotsSplitFollowsThePlan) {
  Snapshot s;
  s.split = 100;  // where the plan ends, as the rollout writes it
  s.plan = example();
  EXPECT_EQ(s.split_at(s.plan->start_ms + 30'000), 2);
  s.plan.reset();
  EXPECT_EQ(s.split_at(0), 100);
}

}  // namespace
}  // namespace figshift
