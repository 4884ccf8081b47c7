#pragma once
// Traffic counters: per-upstream responses, errors and latency, and the
// connection counters. Thread-safety: plain values, no atomics. Each worker
// owns one TrafficStats and is its only writer (no atomics on the request
// path); readers get a copy taken on the worker's own thread
// (Server::collect_stats) and merge the copies.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "figshift/telemetry/unique_users.hpp"

namespace figshift {

// Upstream latency in seconds, Prometheus-style cumulative buckets at export.
struct LatencyHistogram {
  static constexpr std::array<double, 12> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  std::array<std::uint64_t, bounds.size() + 1> counts{};  // last: +Inf
  double sum = 0;
  std::uint64_t count = 0;

  void observe(double seconds);
  void merge(const LatencyHistogram& other);
};

enum class UpstreamErrorKind : std::size_t { connect, timeout, reset, tls, bad_response, count };

struct UpstreamStats {
  // Responses sent to clients for requests routed to this upstream:
  // [group: 0 legacy, 1 new][status class: 0 = 1xx … 4 = 5xx].
  std::array<std::array<std::uint64_t, 5>, 2> responses{};
  std::array<std::uint64_t, static_cast<std::size_t>(UpstreamErrorKind::count)> errors{};
  LatencyHistogram latency;

  std::uint64_t requests() const;
  void merge(const UpstreamStats& other);
};

// Why a bearer token did not identify a user (user-key jwt, #17). The request
// is then anonymous (legacy), never refused.
enum class TokenRejection : std::size_t {
  malformed,        // not three base64url parts of JSON objects, or no "exp"
  oversized,        // longer than the verifier's limit
  alg_none,         // "alg": "none"
  alg_unsupported,  // an alg outside HS/RS/PS/ES of the JWKS kinds
  unknown_key,      // no key with the token's kid (or none of its kind)
  key_mismatch,     // the key's kind or alg does not match the token's alg
  bad_signature,    // tampered, or signed with another key
  expired,          // exp + leeway is past
  not_yet_valid,    // nbf - leeway is to come
  wrong_issuer,     // iss is not jwt.issuer
  wrong_audience,   // aud does not hold jwt.audience
  no_claim,         // the user-key's claim is missing, empty or not a string or integer
  no_keys,          // no jwt section in the config, or no key loaded
  count
};
std::string_view token_rejection_name(TokenRejection reason);

struct TokenStats {
  std::array<std::uint64_t, static_cast<std::size_t>(TokenRejection::count)> rejected{};
  std::uint64_t verified = 0;              // signature and claims checked
  std::uint64_t cache_hits = 0;            // found verified in the worker's cache
  std::uint64_t keys_reloads = 0;          // process-wide, set by the keys watcher's owner
  std::uint64_t keys_reload_failures = 0;  // likewise: a bad keys file kept the old keys

  void merge(const TokenStats& other);
};

struct TrafficStats {
  std::map<std::string, UpstreamStats> upstreams;  // by upstream name
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  // over limits.max_connections
  std::uint64_t accept_errors = 0;
  std::uint64_t active_connections = 0;
  std::uint64_t upstream_idle_connections = 0;
  std::uint64_t upstream_connections_opened = 0;
  std::uint64_t upstream_retries = 0;
  std::uint64_t rejected_requests = 0;         // answered 4xx/503 by the proxy before routing
  std::uint64_t failures = 0;                  // connections ended by an unexpected I/O error
  std::uint64_t tls_handshake_failures = 0;    // on TLS listeners
  std::uint64_t body_budget_rejections = 0;    // 503: limits.buffered_body_bytes in use
  std::uint64_t buffered_body_bytes = 0;       // gauge: request-body bytes reserved now
  std::uint64_t access_log_dropped_bytes = 0;  // process-wide, set by Server::collect_stats
  std::uint64_t streamed_request_bodies = 0;   // request bodies streamed, not read whole
  std::uint64_t streamed_responses = 0;        // response bodies streamed, not read whole
  std::uint64_t tunnels_opened = 0;            // WebSocket upgrades the upstream accepted (101)
  std::uint64_t tunnels_open = 0;              // gauge
  std::uint64_t tunnel_bytes_to_upstream = 0;
  std::uint64_t tunnel_bytes_to_client = 0;
  TokenStats tokens;                           // user-key jwt (#17)
  // Users seen per upstream (#17), by upstream name; only hashes are kept.
  std::map<std::string, UniqueUsersWindow, std::less<>> unique_users;

  void merge(const TrafficStats& other);
};

}  // namespace figshift
