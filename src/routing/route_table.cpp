#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

// "/orders" must not capture "/ordersx": a prefix matches only up to a '/'.
bool matches_on_segment_boundary(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size()) return true;
  return prefix.ends_with('/') || path[prefix.size()] == '/';
}

}  // namespace

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  // Longest first, so the first match is the most specific one; ties are
  // ordered by text so the table is the same whatever order the store used.
  std::sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    if (a.prefix.size() != b.prefix.size()) return a.prefix.size() > b.prefix.size();
    return a.prefix < b.prefix;
  });
}

const Route* RouteTable::match(std::string_view path) const {
  for (const Route& route : routes_) {
    if (matches_on_segment_boundary(route.prefix, path)) return &route;
  }
  return nullptr;
}

}  // namespace figshift
