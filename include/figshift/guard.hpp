#pragma once
// Guarded rollouts (issue #16): watches the new upstreams' error ratio and p99
// latency over a sliding window, from the proxy's own counters, and rolls the
// split back to 0 with one conditional store write when the `guard` key's
// thresholds are breached.
// Thread-safety: GuardEvaluator is used from one thread (the daemon's control
// thread, which also runs the admin API); window_verdict is pure.
// Lifetime: the Store and the callbacks must outlive the GuardEvaluator.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "figshift/routing.hpp"
#include "figshift/store/store.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {

// What one new upstream did over the window.
struct GuardReading {
  std::string upstream;
  std::uint64_t requests = 0;  // of the new group, answered (any status)
  std::uint64_t errors = 0;    // 5xx among them, the proxy's own 502/504 included
  double error_ratio = 0;
  std::optional<double> legacy_error_ratio;  // the legacy group's, with relative_to_legacy
  std::optional<double> p99_ms;              // from the latency histogram; none without requests
};

struct GuardBreach {
  std::string metric;  // "error_ratio" or "p99_ms"
  double value = 0;
  double threshold = 0;
};

// The verdict on one reading: a breach, or nothing (also with fewer than
// min_requests requests: too few to tell).
std::optional<GuardBreach> window_verdict(const Guard& guard, const GuardReading& reading);

// The p99 of the observations a histogram's counts (a window's difference)
// hold, interpolated within its bucket as Prometheus' histogram_quantile does;
// past the last bound it is that bound. nullopt without observations.
std::optional<double> p99_seconds(const LatencyHistogram& window);

struct GuardState {
  bool armed = false;               // a guard is set and has not tripped
  std::int64_t window_s = 0;
  std::vector<GuardReading> readings;  // per new upstream, last evaluation
  std::uint64_t trips = 0;          // breaches this process wrote to the store
  std::int64_t evaluated_ms = 0;    // last evaluation, Unix ms (0: never)
};

class GuardEvaluator {
 public:
  GuardEvaluator(Store& store, std::function<TrafficStats()> stats,
                 std::function<std::int64_t()> now_ms);

  // Takes a sample of the counters and judges the window; on a breach writes
  // the rollback. Call about once a second.
  void evaluate();
  const GuardState& state() const { return state_; }

 private:
  struct Sample {
    std::int64_t at_ms = 0;
    std::map<std::string, UpstreamStats> upstreams;
  };
  void trip(const Snapshot& snapshot, const GuardReading& reading, const GuardBreach& breach,
            std::int64_t now);

  Store& store_;
  std::function<TrafficStats()> stats_;
  std::function<std::int64_t()> now_ms_;
  std::deque<Sample> samples_;    // oldest first, about one a second
  std::optional<Guard> judged_guard_;  // the thresholds the samples were taken under
  GuardState state_;
};

}  // namespace figshift
