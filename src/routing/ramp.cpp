// The split during a ramp is a pure function of the ramp and the wall clock,
// so that every replica reading the same store agrees at the same moment.

#include <algorithm>
#include <cstdint>
#include <optional>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

__extension__ using int128 = __int128;

// Floor, not truncation: a ramp down must not round towards `from`.
std::int64_t floor_div(int128 num, int128 den) {
  int128 q = num / den;
  if ((num % den != 0) && ((num < 0) != (den < 0))) --q;
  return static_cast<std::int64_t>(q);
}

}  // namespace

RampProgress ramp_progress(const Ramp& r, std::int64_t now_ms) {
  RampProgress p;
  const std::int64_t duration = std::max<std::int64_t>(r.duration_ms, 0);
  if (now_ms > r.start_ms) {
    // now > start, so the unsigned difference is exact even across the whole int64 range.
    const std::uint64_t elapsed =
        static_cast<std::uint64_t>(now_ms) - static_cast<std::uint64_t>(r.start_ms);
    p.elapsed_ms = elapsed >= static_cast<std::uint64_t>(duration)
                       ? duration
                       : static_cast<std::int64_t>(elapsed);
  }
  p.remaining_ms = duration - p.elapsed_ms;
  if (duration > 0) p.fraction = static_cast<double>(p.elapsed_ms) / static_cast<double>(duration);
  // Written without start + duration, which could overflow for a Ramp built by hand.
  p.active = now_ms < r.start_ms || p.elapsed_ms < r.duration_ms;
  return p;
}

int split_at(int split, const std::optional<Ramp>& ramp, std::int64_t now_ms) {
  if (!ramp) return split;
  const Ramp& r = *ramp;
  if (r.duration_ms <= 0) return r.to;
  const int128 delta = static_cast<int128>(r.to) - r.from;
  const std::int64_t elapsed = ramp_progress(r, now_ms).elapsed_ms;
  return static_cast<int>(r.from + floor_div(delta * elapsed, r.duration_ms));
}

}  // namespace figshift
