// The HyperLogLog's error bound (#17): estimates of 1 000 and 100 000 distinct
// users within 3 standard errors (3 x 0.81 %), over several independent salts.

#include "figshift/telemetry/unique_users.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

constexpr double bound = 3 * HyperLogLog::standard_error;

TEST(HyperLogLog, EstimatesWithinThreeStandardErrors) {
  for (const int users : {1'000, 100'000}) {
    for (std::int32_t salt = 1; salt <= 5; ++salt) {
      HyperLogLog sketch;
      for (int i = 0; i < users; ++i) {
        const std::string name = "user-" + std::to_string(i);
        const std::uint64_t h = user_count_hash(name, salt);
        sketch.add(h);
        sketch.add(h);  // seeing a user twice counts them once
      }
      const double error = std::abs(sketch.estimate() - users) / users;
      EXPECT_LT(error, bound) << users << " users, salt " << salt << ": " << sketch.estimate();
    }
  }
}

TEST(HyperLogLog, EmptyIsZeroAndMergeIsUnion) {
  HyperLogLog a, b;
  EXPECT_EQ(a.estimate(), 0);
  for (int i = 0; i < 600; ++i) a.add(user_count_hash("a" + std::to_string(i), 0));
  for (int i = 300; i < 900; ++i) b.add(user_count_hash("a" + std::to_string(i), 0));
  a.merge(b);
  EXPECT_NEAR(a.estimate(), 900, 900 * bound);
}

TEST(UniqueUsersWindow, CountsTheLastMinutesAndForgetsOlderOnes) {
  constexpr std::int64_t minute = 60'000, t0 = 1'700'000'040'000 / minute * minute;
  UniqueUsersWindow w, other;
  for (int i = 0; i < 100; ++i) w.record(user_count_hash("old" + std::to_string(i), 0), t0);
  for (int i = 0; i < 200; ++i)
    other.record(user_count_hash("new" + std::to_string(i), 0), t0 + 3 * minute);
  w.merge(other);  // two workers' windows
  EXPECT_NEAR(w.estimate(t0 + 3 * minute), 300, 300 * bound);
  EXPECT_NEAR(w.estimate(t0 + 5 * minute + 59'999), 300, 300 * bound);  // t0's minute still in
  EXPECT_NEAR(w.estimate(t0 + 6 * minute), 200, 200 * bound);           // t0's minute gone
  // A minute that comes round again starts afresh.
  w.record(user_count_hash("again", 0), t0 + 6 * minute);
  EXPECT_NEAR(w.estimate(t0 + 6 * minute), 201, 201 * bound);
  EXPECT_EQ(w.estimate(t0 + 20 * minute), 0);
}

}  // namespace
}  // namespace figshift
