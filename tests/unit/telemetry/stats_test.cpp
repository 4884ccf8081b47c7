// The traffic counters: where a latency lands in the histogram, and merging
// the workers' copies. Bucket bounds are Prometheus "le" bounds: inclusive.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "figshift/telemetry/stats.hpp"

namespace figshift {
namespace {

std::size_t index_of_bound(double bound) {
  for (std::size_t i = 0; i < LatencyHistogram::bounds.size(); ++i)
    if (LatencyHistogram::bounds[i] == bound) return i;
  ADD_FAILURE() << "no bucket bound " << bound;
  return 0;
}

TEST(TelemetryLatencyHistogram, BoundsAreIncreasing) {
  for (std::size_t i = 1; i < LatencyHistogram::bounds.size(); ++i)
    EXPECT_LT(LatencyHistogram::bounds[i - 1], LatencyHistogram::bounds[i]) << i;
}

TEST(TelemetryLatencyHistogram, AValueLandsInTheFirstBucketWhoseBoundIsNotBelowIt) {
  LatencyHistogram h;
  h.observe(0.0);      // <= 0.001
  h.observe(0.001);    // exactly a bound: that bucket (le is "less or equal")
  h.observe(0.0011);   // <= 0.0025
  h.observe(0.3);      // <= 0.5
  h.observe(5.0);      // the last bound
  h.observe(5.0001);   // beyond every bound: +Inf
  h.observe(3600.0);   // +Inf
  EXPECT_EQ(h.counts[index_of_bound(0.001)], 2u);
  EXPECT_EQ(h.counts[index_of_bound(0.0025)], 1u);
  EXPECT_EQ(h.counts[index_of_bound(0.5)], 1u);
  EXPECT_EQ(h.counts[index_of_bound(5.0)], 1u);
  EXPECT_EQ(h.counts.back(), 2u);  // +Inf
  EXPECT_EQ(h.count, 7u);
  EXPECT_DOUBLE_EQ(h.sum, 0.0 + 0.001 + 0.0011 + 0.3 + 5.0 + 5.0001 + 3600.0);
  std::uint64_t total = 0;
  for (auto c : h.counts) total += c;
  EXPECT_EQ(total, h.count) << "every observation is in exactly one bucket";
}

TEST(TelemetryLatencyHistogram, MergeAddsBucketsSumAndCount) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.observe(0.002);
  a.observe(10);
  b.observe(0.002);
  b.observe(0.02);
  a.merge(b);
  EXPECT_EQ(a.counts[index_of_bound(0.0025)], 2u);
  EXPECT_EQ(a.counts[index_of_bound(0.025)], 1u);
  EXPECT_EQ(a.counts.back(), 1u);
  EXPECT_EQ(a.count, 4u);
  EXPECT_DOUBLE_EQ(a.sum, 0.002 + 10 + 0.002 + 0.02);
  EXPECT_EQ(b.count, 2u) << "merge leaves its argument alone";
}

TEST(TelemetryUpstreamStats, RequestsCountEveryGroupAndStatusClass) {
  UpstreamStats u;
  u.responses[0][1] = 5;  // legacy, 2xx
  u.responses[1][1] = 3;  // new, 2xx
  u.responses[1][4] = 2;  // new, 5xx
  u.responses[0][0] = 1;  // legacy, 1xx
  EXPECT_EQ(u.requests(), 11u);
  u.errors[static_cast<std::size_t>(UpstreamErrorKind::connect)] = 9;
  EXPECT_EQ(u.requests(), 11u) << "errors are not extra requests (each got a 502/504 response)";
}

TEST(TelemetryTrafficStats, MergeSumsPerUpstreamAndEveryCounter) {
  TrafficStats a;
  a.upstreams["A"].responses[0][1] = 4;
  a.upstreams["B1"].errors[static_cast<std::size_t>(UpstreamErrorKind::timeout)] = 1;
  a.connections_accepted = 10;
  a.active_connections = 2;
  a.buffered_body_bytes = 100;
  TrafficStats b;
  b.upstreams["A"].responses[0][1] = 6;
  b.upstreams["B2"].responses[1][3] = 1;
  b.connections_accepted = 5;
  b.active_connections = 3;
  b.buffered_body_bytes = 50;
  b.tls_handshake_failures = 7;
  b.body_budget_rejections = 8;
  b.access_log_dropped_bytes = 9;
  a.merge(b);
  ASSERT_EQ(a.upstreams.size(), 3u);
  EXPECT_EQ(a.upstreams["A"].responses[0][1], 10u);
  EXPECT_EQ(a.upstreams["B1"].errors[static_cast<std::size_t>(UpstreamErrorKind::timeout)], 1u);
  EXPECT_EQ(a.upstreams["B2"].responses[1][3], 1u);
  EXPECT_EQ(a.connections_accepted, 15u);
  EXPECT_EQ(a.active_connections, 5u);  // gauges of different workers add up too
  EXPECT_EQ(a.buffered_body_bytes, 150u);
  EXPECT_EQ(a.tls_handshake_failures, 7u);
  EXPECT_EQ(a.body_budget_rejections, 8u);
  EXPECT_EQ(a.access_log_dropped_bytes, 9u);
}

}  // namespace
}  // namespace figshift
