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

// GuardEvaluator over a Store in memory and counters the test sets.
#include "../store/store_test_support.hpp"

namespace figshift {
namespace {

class GuardEvaluatorTest : public ::testing::Test {
 protected:
  std::shared_ptr<store_test::BackendLog> backend = std::make_shared<store_test::BackendLog>();
  Store store{std::make_unique<store_test::FakeBackend>(backend),
              store_test::with(store_test::with(store_test::typical_store(), "traffic-split", "100"),
                               "guard", R"({"max_error_ratio":0.05,"window_s":10,"min_requests":10})")};
  TrafficStats counters;
  std::int64_t now = 1'000'000;
  GuardEvaluator guard{store, [this] { return counters; }, [this] { return now; }};

  // `requests` more new-group answers on B1, `errors` of them 5xx.
  void add(std::uint64_t requests, std::uint64_t errors) {
    auto& b1 = counters.upstreams["B1"];
    b1.responses[1][1] += requests - errors;
    b1.responses[1][4] += errors;
  }
  void tick() {
    now += 1000;
    guard.evaluate();
  }
};

TEST_F(GuardEvaluatorTest, ABreachWritesOneRollback) {
  tick();
  add(100, 1);
  tick();
  EXPECT_EQ(store.snapshot()->split, 100);
  add(100, 20);
  tick();
  const auto snapshot = store.snapshot();
  EXPECT_EQ(snapshot->split, 0);
  ASSERT_TRUE(snapshot->guard_tripped);
  const auto tripped = nlohmann::json::parse(*snapshot->guard_tripped);
  EXPECT_EQ(tripped["upstream"], "B1");
  EXPECT_EQ(tripped["metric"], "error_ratio");
  EXPECT_EQ(tripped["requests"], 200);
  EXPECT_EQ(guard.state().trips, 1u);
  EXPECT_FALSE(guard.state().armed);
  tick();
  EXPECT_EQ(guard.state().trips, 1u);  // tripped: not judged again
}

// A sample that missed a worker has smaller counters: no wrapped-around
// difference, no false trip; the window starts again.
TEST_F(GuardEvaluatorTest, CountersGoingDownNeverTrip) {
  add(1000, 5);
  tick();
  add(1000, 5);
  tick();
  const TrafficStats full = counters;
  counters.upstreams["B1"].responses[1][1] /= 2;  // one worker left out
  counters.upstreams["B1"].responses[1][4] /= 2;
  tick();
  counters = full;
  add(10, 0);
  tick();
  EXPECT_EQ(store.snapshot()->split, 100);
  EXPECT_FALSE(store.snapshot()->guard_tripped);
  for (const auto& r : guard.state().readings) EXPECT_LE(r.requests, 10u) << r.upstream;
}

}  // namespace
}  // namespace figshift
