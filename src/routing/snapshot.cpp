#include <algorithm>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {

int Snapshot::split_hundredths_at(std::int64_t now_ms) const {
  // 100 buckets: whole points only, so `split` says it all (and a Snapshot
  // built by hand with only `split` set reads the same everywhere).
  if (buckets == 100) return split_at(now_ms) * 100;
  if (plan) return plan_progress(*plan, now_ms).split * 100;
  if (ramp && ramp_progress(*ramp, now_ms).active)
    return figshift::split_at(split, ramp, now_ms) * 100;
  return split_hundredths;
}

const Upstream* Snapshot::find(std::string_view name) const {
  // The store keeps upstreams sorted by name.
  const auto it =
      std::lower_bound(upstreams.begin(), upstreams.end(), name,
                       [](const Upstream& u, std::string_view n) { return u.name < n; });
  if (it == upstreams.end() || it->name != name) return nullptr;
  return &*it;
}

}  // namespace figshift
