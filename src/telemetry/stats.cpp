#include "figshift/telemetry/stats.hpp"

#include <algorithm>
#include <iterator>

namespace figshift {

void LatencyHistogram::observe(double seconds) {
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);
  ++counts[static_cast<std::size_t>(it - bounds.begin())];
  sum += seconds;
  ++count;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum += other.sum;
  count += other.count;
}

std::uint64_t UpstreamStats::requests() const {
  std::uint64_t n = 0;
  for (const auto& by_class : responses)
    for (auto c : by_class) n += c;
  return n;
}

void UpstreamStats::merge(const UpstreamStats& other) {
  for (std::size_t g = 0; g < responses.size(); ++g)
    for (std::size_t c = 0; c < responses[g].size(); ++c) responses[g][c] += other.responses[g][c];
  for (std::size_t i = 0; i < errors.size(); ++i) errors[i] += other.errors[i];
  latency.merge(other.latency);
}

std::string_view token_rejection_name(TokenRejection reason) {
  static constexpr std::string_view names[] = {
      "malformed",      "oversized",     "alg_none", "alg_unsupported", "unknown_key",
      "key_mismatch",   "bad_signature", "expired",  "not_yet_valid",   "wrong_issuer",
      "wrong_audience", "no_claim",      "no_keys"};
  static_assert(std::size(names) == static_cast<std::size_t>(TokenRejection::count));
  return names[static_cast<std::size_t>(reason)];
}

void TokenStats::merge(const TokenStats& other) {
  for (std::size_t i = 0; i < rejected.size(); ++i) rejected[i] += other.rejected[i];
  verified += other.verified;
  cache_hits += other.cache_hits;
  keys_reloads += other.keys_reloads;
  keys_reload_failures += other.keys_reload_failures;
}

void TrafficStats::merge(const TrafficStats& other) {
  for (const auto& [name, users] : other.unique_users) unique_users[name].merge(users);
  tokens.merge(other.tokens);
  for (const auto& [name, stats] : other.upstreams) upstreams[name].merge(stats);
  connections_accepted += other.connections_accepted;
  connections_refused += other.connections_refused;
  accept_errors += other.accept_errors;
  active_connections += other.active_connections;
  upstream_idle_connections += other.upstream_idle_connections;
  upstream_connections_opened += other.upstream_connections_opened;
  upstream_retries += other.upstream_retries;
  rejected_requests += other.rejected_requests;
  failures += other.failures;
  tls_handshake_failures += other.tls_handshake_failures;
  body_budget_rejections += other.body_budget_rejections;
  buffered_body_bytes += other.buffered_body_bytes;
  access_log_dropped_bytes += other.access_log_dropped_bytes;
  streamed_request_bodies += other.streamed_request_bodies;
  streamed_responses += other.streamed_responses;
  tunnels_opened += other.tunnels_opened;
  tunnels_open += other.tunnels_open;
  tunnel_bytes_to_upstream += other.tunnel_bytes_to_upstream;
  tunnel_bytes_to_client += other.tunnel_bytes_to_client;
}

}  // namespace figshift
