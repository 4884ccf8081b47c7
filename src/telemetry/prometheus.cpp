#include "figshift/telemetry/prometheus.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <map>
#include <string>

#include "figshift/routing.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {
namespace {

constexpr const char* group_names[] = {"legacy", "new"};
constexpr const char* class_names[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr const char* error_names[] = {"connect", "timeout", "reset", "tls", "bad_response"};
static_assert(std::size(error_names) == static_cast<std::size_t>(UpstreamErrorKind::count));

// A label value as the text format wants it: backslash, double quote and line
// feed escaped. Upstream names are label values; the store accepts only
// [A-Z0-9]+ for them today, but render_prometheus takes any Snapshot.
std::string label_value(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (const char c : raw) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  template <typename Value>
  void sample(std::string_view name, std::string_view labels, Value value) {
    if (labels.empty())
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    else
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
  }
  template <typename Value>
  void single(std::string_view name, std::string_view type, std::string_view help, Value value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// The process-wide counters and gauges of TrafficStats, in exposition order:
// one row per metric, so a new counter is one line here.
struct TrafficMetric {
  const char* name;
  const char* type;
  const char* help;
  std::uint64_t TrafficStats::*field;
};
constexpr TrafficMetric traffic_metrics[] = {
    {"figshift_client_connections_active", "gauge", "Open client connections.",
     &TrafficStats::active_connections},
    {"figshift_client_connections_accepted_total", "counter", "Client connections accepted.",
     &TrafficStats::connections_accepted},
    {"figshift_client_connections_refused_total", "counter",
     "Client connections closed at once because limits.max_connections was reached.",
     &TrafficStats::connections_refused},
    {"figshift_accept_errors_total", "counter",
     "Errors from accept() (e.g. out of file descriptors).", &TrafficStats::accept_errors},
    {"figshift_client_connection_errors_total", "counter",
     "Client connections ended by an unexpected I/O error (resets, write timeouts, TLS).",
     &TrafficStats::failures},
    {"figshift_access_log_dropped_bytes_total", "counter",
     "Access-log bytes dropped because the destination failed or fell 64 MiB behind.",
     &TrafficStats::access_log_dropped_bytes},
    {"figshift_tls_handshake_failures_total", "counter",
     "TLS listener handshakes that failed (plain HTTP on a TLS port, TLS < 1.2, timeouts).",
     &TrafficStats::tls_handshake_failures},
    {"figshift_requests_rejected_total", "counter",
     "Requests the proxy answered itself before routing (400, 413, 431, 503).",
     &TrafficStats::rejected_requests},
    {"figshift_body_budget_rejections_total", "counter",
     "Requests answered 503 because their body did not fit limits.buffered_body_bytes.",
     &TrafficStats::body_budget_rejections},
    {"figshift_buffered_body_bytes", "gauge",
     "Request-body bytes reserved in memory now (limit: limits.buffered_body_bytes).",
     &TrafficStats::buffered_body_bytes},
    {"figshift_upstream_connections_idle", "gauge",
     "Keep-alive upstream connections waiting in the pools.",
     &TrafficStats::upstream_idle_connections},
    {"figshift_upstream_connections_opened_total", "counter",
     "Upstream connections opened (the rest of the requests reused one).",
     &TrafficStats::upstream_connections_opened},
    {"figshift_upstream_retries_total", "counter",
     "Requests retried once because a pooled connection had been closed by the upstream.",
     &TrafficStats::upstream_retries},
    {"figshift_streamed_request_bodies_total", "counter",
     "Request bodies streamed upstream as they arrived (chunked, or longer than "
     "limits.buffer_request_bytes).",
     &TrafficStats::streamed_request_bodies},
    {"figshift_streamed_responses_total", "counter",
     "Response bodies streamed to the client as they arrived (chunked, without a length, or "
     "longer than limits.buffer_response_bytes).",
     &TrafficStats::streamed_responses},
    {"figshift_tunnels_open", "gauge", "WebSocket tunnels open now.", &TrafficStats::tunnels_open},
    {"figshift_tunnels_total", "counter", "WebSocket upgrades the upstream accepted (101).",
     &TrafficStats::tunnels_opened},
};

}  // namespace

std::string render_prometheus(const TrafficStats& stats, const Snapshot& snapshot,
                              const StoreInfo& store, std::int64_t now_ms) {
  // Every configured upstream is exported, even before its first request, so
  // rate() and dashboards see a zero rather than a missing series.
  std::map<std::string, UpstreamStats> upstreams = stats.upstreams;
  for (const auto& u : snapshot.upstreams) upstreams.try_emplace(u.name);

  Exposition e;
  e.family("figshift_requests_total", "counter",
           "Requests answered, by upstream chosen, user group and status class.");
  for (const auto& [name, u] : upstreams)
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t c = 0; c < 5; ++c)
        e.sample("figshift_requests_total",
                 fmt::format("upstream=\"{}\",group=\"{}\",code=\"{}\"", label_value(name),
                             group_names[g], class_names[c]),
                 u.responses[g][c]);

  e.family("figshift_upstream_errors_total", "counter",
           "Failed upstream exchanges, by upstream and kind.");
  for (const auto& [name, u] : upstreams)
    for (std::size_t k = 0; k < u.errors.size(); ++k)
      e.sample("figshift_upstream_errors_total",
               fmt::format("upstream=\"{}\",kind=\"{}\"", label_value(name), error_names[k]),
               u.errors[k]);

  e.family("figshift_upstream_latency_seconds", "histogram",
           "Time from routing a request to the upstream's whole response (or failure).");
  for (const auto& [raw_name, u] : upstreams) {
    const auto name = label_value(raw_name);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < LatencyHistogram::bounds.size(); ++b) {
      cumulative += u.latency.counts[b];
      e.sample("figshift_upstream_latency_seconds_bucket",
               fmt::format("upstream=\"{}\",le=\"{}\"", name, LatencyHistogram::bounds[b]),
               cumulative);
    }
    e.sample("figshift_upstream_latency_seconds_bucket",
             fmt::format("upstream=\"{}\",le=\"+Inf\"", name), u.latency.count);
    e.sample("figshift_upstream_latency_seconds_sum", fmt::format("upstream=\"{}\"", name),
             u.latency.sum);
    e.sample("figshift_upstream_latency_seconds_count", fmt::format("upstream=\"{}\"", name),
             u.latency.count);
  }

  for (const auto& metric : traffic_metrics)
    e.single(metric.name, metric.type, metric.help, stats.*metric.field);
  e.family("figshift_tunnel_bytes_total", "counter",
           "Bytes relayed through WebSocket tunnels, by direction.");
  e.sample("figshift_tunnel_bytes_total", "direction=\"to_upstream\"",
           stats.tunnel_bytes_to_upstream);
  e.sample("figshift_tunnel_bytes_total", "direction=\"to_client\"", stats.tunnel_bytes_to_client);

  e.family("figshift_unique_users", "gauge",
           "Distinct users (by user-key) routed to each upstream in the window: the current "
           "minute and the five before it. HyperLogLog estimate, standard error 0.8 %.");
  for (const auto& [name, u] : upstreams) {
    const auto users = stats.unique_users.find(name);
    const double estimate = users == stats.unique_users.end() ? 0 : users->second.estimate(now_ms);
    e.sample("figshift_unique_users",
             fmt::format("upstream=\"{}\",window=\"5m\"", label_value(name)),
             static_cast<std::uint64_t>(std::llround(estimate)));
  }

  e.family("figshift_jwt_tokens_total", "counter",
           "Bearer tokens read for user-key jwt: verified (signature and claims checked), "
           "cached (found verified in the worker's cache) or rejected (the request is anonymous).");
  e.sample("figshift_jwt_tokens_total", "result=\"verified\"", stats.tokens.verified);
  e.sample("figshift_jwt_tokens_total", "result=\"cached\"", stats.tokens.cache_hits);
  e.family("figshift_jwt_rejected_total", "counter",
           "Bearer tokens that did not identify a user, by reason; each request was anonymous.");
  for (std::size_t r = 0; r < stats.tokens.rejected.size(); ++r)
    e.sample("figshift_jwt_rejected_total",
             fmt::format("reason=\"{}\"", token_rejection_name(static_cast<TokenRejection>(r))),
             stats.tokens.rejected[r]);
  e.family("figshift_jwt_keys_reloads_total", "counter",
           "Reloads of jwt.keys_file (change or SIGHUP), by result; a failure keeps the old keys.");
  e.sample("figshift_jwt_keys_reloads_total", "result=\"success\"", stats.tokens.keys_reloads);
  e.sample("figshift_jwt_keys_reloads_total", "result=\"failure\"",
           stats.tokens.keys_reload_failures);

  const double split = snapshot.split_hundredths_at(now_ms) / 100.0;
  // Without a ramp: not active, progress 1 (the last ramp, if any, is over).
  const RampProgress ramp = snapshot.ramp ? ramp_progress(*snapshot.ramp, now_ms) : RampProgress{};
  e.single("figshift_traffic_split_percent", "gauge",
           "Effective split now: users in buckets below it go to the new APIs.", split);
  e.single("figshift_traffic_split_target_percent", "gauge",
           "The stored traffic-split, where a ramp ends.",
           snapshot.buckets == 100 ? snapshot.split : snapshot.split_hundredths / 100.0);
  e.single("figshift_ramp_active", "gauge", "1 while a traffic ramp is in progress.",
           ramp.active ? 1 : 0);
  e.single("figshift_ramp_progress_ratio", "gauge", "Progress of the last ramp, 0 to 1.",
           ramp.fraction);

  e.single("figshift_store_version", "gauge", "Version of the routing store being served.",
           store.version);
  e.family("figshift_store_reloads_total", "counter",
           "Reloads of the store file (hand edits, SIGHUP), by result.");
  e.sample("figshift_store_reloads_total", "result=\"success\"", store.reload_successes);
  e.sample("figshift_store_reloads_total", "result=\"failure\"", store.reload_failures);
  e.single("figshift_store_writes_rejected_total", "counter",
           "Admin API writes refused as invalid or stale.", store.rejected_writes);
  return e.take();
}

}  // namespace figshift
