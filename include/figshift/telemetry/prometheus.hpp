#pragma once
// The Prometheus text exposition (GET /metrics) of the traffic counters, the
// routing Snapshot and the store's counters. Thread-safety: a pure function of
// its arguments; it keeps no reference to them after it returns.

#include <cstdint>
#include <string>

#include "figshift/routing.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {

struct StoreInfo {
  std::uint64_t version = 0;
  std::uint64_t reload_successes = 0;
  std::uint64_t reload_failures = 0;
  std::uint64_t rejected_writes = 0;
};

// The Prometheus text exposition format (version 0.0.4) of everything figshift counts.
std::string render_prometheus(const TrafficStats& stats, const Snapshot& snapshot,
                              const StoreInfo& store, std::int64_t now_ms);

}  // namespace figshift
