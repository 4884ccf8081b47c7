// The guard's verdict over a window (issue #16): thresholds, min_requests,
// relative_to_legacy, and the p99 read from the latency histogram.
#include "figshift/guard.hpp"

#include <gtest/gtest.h>

namespace figshift {
namespace {

GuardReading reading(std::uint64_t requests, std::uint64_t errors, std::optional<double> p99_ms = {}) {
  GuardReading r;
  r.upstream = "B1";
  r.requests = requests;
  r.errors = errors;
  r.error_ratio = requests ? static_cast<double>(errors) / static_cast<double>(requests) : 0;
  r.p99_ms = p99_ms;
  return r;
}

TEST(GuardVerdict, ErrorRatioAboveTheThresholdTrips) {
  Guard g;
  g.max_error_ratio = 0.05;
  g.min_requests = 100;
  EXPECT_FALSE(window_verdict(g, reading(200, 10)));  // 0.05: not above
  const auto breach = window_verdict(g, reading(200, 11));
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->metric, "error_ratio");
  EXPECT_DOUBLE_EQ(breach->value, 0.055);
  EXPECT_DOUBLE_EQ(breach->threshold, 0.05);
}

TEST(GuardVerdict, TooFewRequestsNeverTrip) {
  Guard g;
  g.max_error_ratio = 0.05;
  g.min_requests = 100;
  EXPECT_FALSE(window_verdict(g, reading(99, 99)));
  EXPECT_TRUE(window_verdict(g, reading(100, 99)));
}

TEST(GuardVerdict, P99AboveTheThresholdTrips) {
  Guard g;
  g.max_p99_ms = 200;
  g.min_requests = 10;
  EXPECT_FALSE(window_verdict(g, reading(50, 0, 199.0)));
  EXPECT_FALSE(window_verdict(g, reading(50, 0)));  // no latency observed
  const auto breach = window_verdict(g, reading(50, 0, 410.0));
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->metric, "p99_ms");
}

TEST(GuardVerdict, RelativeToLegacySubtractsTheLegacyRatio) {
  Guard g;
  g.max_error_ratio = 0.05;
  g.min_requests = 10;
  g.relative_to_legacy = true;
  auto r = reading(100, 20);  // 0.20
  r.legacy_error_ratio = 0.18;
  EXPECT_FALSE(window_verdict(g, r));  // 0.02 above legacy
  r.legacy_error_ratio = 0.10;
  const auto breach = window_verdict(g, r);
  ASSERT_TRUE(breach);
  EXPECT_NEAR(breach->value, 0.10, 1e-12);
}

TEST(GuardP99, InterpolatesWithinTheBucketLikeHistogramQuantile) {
  LatencyHistogram h;
  EXPECT_FALSE(p99_seconds(h));
  // 100 observations in (0.25, 0.5]: rank 99 -> 0.25 + 0.25 * 99/100.
  h.counts[8] = 100;
  EXPECT_NEAR(p99_seconds(h).value(), 0.4975, 1e-9);
  // 99 fast ones in (0, 0.001] and 1 slow one in (2.5, 5]: rank 99.0 falls in the first bucket.
  LatencyHistogram mixed;
  mixed.counts[0] = 99;
  mixed.counts[11] = 1;
  EXPECT_NEAR(p99_seconds(mixed).value(), 0.001, 1e-12);
  // Past the last bound: that bound.
  LatencyHistogram slow;
  slow.counts[12] = 10;
  EXPECT_DOUBLE_EQ(p99_seconds(slow).value(), 5.0);
}

}  // namespace
}  // namespace figshift
