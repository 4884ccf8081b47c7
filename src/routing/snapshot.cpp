#include <algorithm>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {

const Upstream* Snapshot::find(std::string_view name) const {
  // The store keeps upstreams sorted by name.
  const auto it =
      std::lower_bound(upstreams.begin(), upstreams.end(), name,
                       [](const Upstream& u, std::string_view n) { return u.name < n; });
  if (it == upstreams.end() || it->name != name) return nullptr;
  return &*it;
}

}  // namespace figshift
