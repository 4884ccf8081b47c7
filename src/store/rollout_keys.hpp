#pragma once
// Parsing and validation of the guarded-rollout keys (issue #16): `traffic-plan`,
// `guard` and `guard-tripped`. Each throws InvalidStore naming the key and the
// field at fault. Pure; thread-safe.

#include <string>

#include "figshift/routing.hpp"

namespace figshift::store_keys {

// {"start_ms": N, "from": P, "steps": [{"to": P, "over_s": S, "hold_s": S}, …]}:
// 1 to 20 steps, `to` 0..100 and never below the level before it (a plan only
// moves users from legacy to new), over_s and hold_s 0..30 days; `from`
// defaults to 0 and hold_s to 0.
TrafficPlan parse_traffic_plan(const std::string& key, const std::string& text);

// {"max_error_ratio": R, "max_p99_ms": N, "window_s": N, "min_requests": N,
//  "relative_to_legacy": B}: at least one threshold; ratio in (0, 1],
// max_p99_ms 1..4999 (the latency histogram ends at 5 s), window_s 1..3600 (default 30), min_requests
// 1..10^9 (default 100).
Guard parse_guard(const std::string& key, const std::string& text);

// Any JSON object (what the guard wrote, or an operator's note); kept as is.
void check_guard_tripped(const std::string& key, const std::string& text);

}  // namespace figshift::store_keys
