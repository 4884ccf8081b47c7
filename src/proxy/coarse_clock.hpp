#pragma once
// The time for deadlines and idle stamps, which the worker's tick checks a few
// times a second at most: a reading from the kernel's last timer tick (1-4 ms
// old) is precise enough, and reading it costs no TSC read. Each request takes
// several such stamps (client and upstream deadlines, pool idle times); with
// steady_clock::now() they were ~3 % of a plain request's CPU. It is the same
// clock as steady_clock (CLOCK_MONOTONIC), at most one tick behind, so the two
// compare. Durations that are reported (latencies, the access log) keep
// steady_clock::now().
// Thread-safety: any thread.

#include <time.h>

#include <chrono>

namespace figshift::proxy {

inline std::chrono::steady_clock::time_point coarse_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace figshift::proxy
