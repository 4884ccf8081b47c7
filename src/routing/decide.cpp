// The routing rule of docs/design.md §1, step by step: who is the user, which
// bucket, which group, which upstream, which target.

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

// The replacement stands for whole segments, so route "/" -> "/api" sends
// "/x" to "/api/x", not "/apix"; a prefix's own trailing '/' stays with the rest.
std::string rewrite(const Route& route, std::string_view path) {
  if (!route.replacement) return std::string(path);
  const std::size_t cut = route.prefix.size() - (route.prefix.ends_with('/') ? 1 : 0);
  const std::string_view rest = path.substr(cut);
  if (rest.empty()) return route.replacement->empty() ? std::string("/") : *route.replacement;
  return join_path(*route.replacement, rest);
}

}  // namespace

// Precondition (the store guarantees it): `legacy` and every route's upstream
// index are valid indexes into `snapshot.upstreams`.
Decision decide(const RequestHead& head, const Snapshot& snapshot, std::int64_t now_ms) {
  assert(snapshot.legacy < snapshot.upstreams.size());
  const PathAndQuery request = split_target(head.target);

  Decision decision;
  decision.upstream = &snapshot.upstreams[snapshot.legacy];
  // Route and forward the same path, with no dot segment left for the upstream to resolve.
  const bool may_have_dots = request.path.find("/.") != std::string_view::npos ||
                             request.path.find('%') != std::string_view::npos;
  std::string path = may_have_dots ? normalize_path(request.path) : std::string(request.path);

  // Anonymous requests have no bucket and stay legacy. Whatever the user key
  // (#17), its value is hashed by the sample's rule; a pin overrides the split.
  std::string scratch;
  if (const std::optional<std::string_view> user =
          user_key_value(head, snapshot.user_key, scratch)) {
    const std::int32_t h = java_hash_code(utf8_to_utf16(*user), snapshot.salt_seed);
    decision.bucket =
        snapshot.buckets == 100 ? bucket_of_hash(h) : bucket_of_hash(h, snapshot.buckets);
    decision.user_hash = user_count_hash(*user, snapshot.salt_seed);
    const auto pin = snapshot.pins.empty() ? snapshot.pins.end() : snapshot.pins.find(*user);
    if (pin != snapshot.pins.end()) {
      decision.pinned = true;
      decision.group = pin->second;
    } else if (decision.bucket < snapshot.threshold_at(now_ms)) {
      decision.group = Group::migrated;
    }
  }

  // Only migrated paths move: a migrated user on an unrouted path stays on
  // the legacy upstream, while still counting as migrated.
  if (decision.group == Group::migrated) {
    if (const Route* route = snapshot.routes.match(path)) {
      decision.upstream = &snapshot.upstreams[route->upstream];
      path = rewrite(*route, path);
    }
  }

  decision.target = join_path(decision.upstream->base_path, path);
  if (request.query) {
    decision.target += '?';
    decision.target += *request.query;
  }
  return decision;
}

}  // namespace figshift
