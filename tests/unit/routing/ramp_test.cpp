#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;  // a Unix time in ms

TEST(RoutingRamp, NoRampIsTheStaticSplit) {
  EXPECT_EQ(split_at(0, std::nullopt, t0), 0);
  EXPECT_EQ(split_at(37, std::nullopt, t0), 37);
  EXPECT_EQ(split_at(100, std::nullopt, 0), 100);
}

TEST(RoutingRamp, RampUp) {
  const Ramp ramp{.from = 0, .to = 25, .start_ms = t0, .duration_ms = 60'000};
  EXPECT_EQ(split_at(99, ramp, t0 - 1), 0);  // before start: from, not the static split
  EXPECT_EQ(split_at(99, ramp, t0), 0);
  EXPECT_EQ(split_at(99, ramp, t0 + 2'399), 0);    // 25 * 2399 / 60000 = 0.99958
  EXPECT_EQ(split_at(99, ramp, t0 + 2'400), 1);    // exactly 1
  EXPECT_EQ(split_at(99, ramp, t0 + 30'000), 12);  // 12.5 floors to 12
  EXPECT_EQ(split_at(99, ramp, t0 + 59'999), 24);  // 24.9996
  EXPECT_EQ(split_at(99, ramp, t0 + 60'000), 25);
  EXPECT_EQ(split_at(99, ramp, t0 + 1'000'000), 25);
}

TEST(RoutingRamp, RampDownFloorsTowardsTheLowerValue) {
  const Ramp ramp{.from = 50, .to = 10, .start_ms = t0, .duration_ms = 1'000};
  EXPECT_EQ(split_at(0, ramp, t0 - 5), 50);
  EXPECT_EQ(split_at(0, ramp, t0), 50);
  EXPECT_EQ(split_at(0, ramp, t0 + 1), 49);    // 50 - 0.04 = 49.96 floors to 49
  EXPECT_EQ(split_at(0, ramp, t0 + 500), 30);  // exactly 30
  EXPECT_EQ(split_at(0, ramp, t0 + 501), 29);  // 29.96
  EXPECT_EQ(split_at(0, ramp, t0 + 999), 10);  // 10.04
  EXPECT_EQ(split_at(0, ramp, t0 + 1'000), 10);
  EXPECT_EQ(split_at(0, ramp, t0 + 5'000), 10);
}

TEST(RoutingRamp, ZeroDurationJumpsToTheTarget) {
  const Ramp ramp{.from = 0, .to = 40, .start_ms = t0, .duration_ms = 0};
  EXPECT_EQ(split_at(5, ramp, t0 - 1'000), 40);
  EXPECT_EQ(split_at(5, ramp, t0), 40);
  EXPECT_EQ(split_at(5, ramp, t0 + 1'000), 40);
}

TEST(RoutingRamp, FlatRamp) {
  const Ramp ramp{.from = 30, .to = 30, .start_ms = t0, .duration_ms = 10'000};
  EXPECT_EQ(split_at(0, ramp, t0 + 5'000), 30);
}

TEST(RoutingRamp, ExtremeTimesDoNotOverflow) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  const Ramp huge{.from = 0, .to = 100, .start_ms = min, .duration_ms = max};
  EXPECT_EQ(split_at(0, huge, min), 0);
  // elapsed 2^62 - 1 is just under half of 2^63 - 1; 2^62 just over.
  EXPECT_EQ(split_at(0, huge, -(std::int64_t{1} << 62) - 1), 49);
  EXPECT_EQ(split_at(0, huge, -(std::int64_t{1} << 62)), 50);
  EXPECT_EQ(split_at(0, huge, max), 100);
  const Ramp late{.from = 0, .to = 100, .start_ms = max - 10, .duration_ms = max};
  EXPECT_EQ(split_at(0, late, max), 0);
}

TEST(RoutingRamp, SnapshotDelegates) {
  Snapshot snapshot;
  snapshot.split = 7;
  EXPECT_EQ(snapshot.split_at(t0), 7);
  snapshot.ramp = Ramp{.from = 0, .to = 100, .start_ms = t0, .duration_ms = 100};
  EXPECT_EQ(snapshot.split_at(t0 + 42), 42);
}

// ---- properties over many random inputs (RoutingProperties) ---------------

TEST(RoutingProperties, RampUpIsMonotonicInTime) {
  std::mt19937 rng(555);
  for (int i = 0; i < 200; ++i) {
    const int from = std::uniform_int_distribution<int>(0, 100)(rng);
    const int to = std::uniform_int_distribution<int>(from, 100)(rng);
    const std::int64_t duration = std::uniform_int_distribution<std::int64_t>(1, 10'000'000)(rng);
    const Ramp ramp{.from = from, .to = to, .start_ms = 1'000'000, .duration_ms = duration};
    int previous = split_at(0, ramp, 0);
    ASSERT_EQ(previous, from);
    for (int step = 0; step <= 64; ++step) {
      const std::int64_t t = 1'000'000 + duration * step / 60;
      const int now = split_at(0, ramp, t);
      ASSERT_GE(now, previous);
      ASSERT_GE(now, from);
      ASSERT_LE(now, to);
      previous = now;
    }
    ASSERT_EQ(previous, to);
  }
}


}  // namespace
}  // namespace figshift
