#pragma once
// Traffic counters. Each worker owns one TrafficStats and is its only writer
// (plain integers, no atomics on the request path); readers get a copy taken
// on the worker's own thread (Server::collect_stats) and merge the copies.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string_view>
#include <string>

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

struct TrafficStats {
  std::map<std::string, UpstreamStats> upstreams;  // by upstream name
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  // over limits.max_connections
  std::uint64_t accept_errors = 0;
  std::uint64_t active_connections = 0;
  std::uint64_t upstream_idle_connections = 0;
  std::uint64_t upstream_connections_opened = 0;
  std::uint64_t upstream_retries = 0;
  std::uint64_t rejected_requests = 0;  // answered 4xx/503 by the proxy before routing
  std::uint64_t failures = 0;           // connections ended by an unexpected I/O error
  std::uint64_t tls_handshake_failures = 0;  // on TLS listeners
  std::uint64_t body_budget_rejections = 0;  // 503: limits.buffered_body_bytes in use
  std::uint64_t buffered_body_bytes = 0;     // gauge: request-body bytes reserved now
  std::uint64_t access_log_dropped_bytes = 0;  // process-wide, set by Server::collect_stats

  void merge(const TrafficStats& other);
};

}  // namespace figshift

#include "figshift/routing.hpp"

namespace figshift {

struct StoreInfo {
  std::uint64_t version = 0;
  std::uint64_t reload_successes = 0;
  std::uint64_t reload_failures = 0;
  std::uint64_t rejected_writes = 0;
};

// The Prometheus text exposition format (version 0.0.4) of everything figshift counts.
std::string render_prometheus(const TrafficStats& stats, const Snapshot& snapshot,
                              const StoreInfo& store, std::int64_t now_ms);

}  // namespace figshift

namespace figshift {

struct AccessRecord {
  std::uint64_t connection = 0;
  std::string_view client;
  std::string_view method;
  std::string_view target;
  unsigned status = 0;
  std::string_view upstream;  // empty: answered by the proxy itself
  std::string_view group;     // "legacy", "new" or empty
  int bucket = -1;            // -1: anonymous
  double latency_ms = 0;
  std::uint64_t bytes = 0;     // response body bytes
  std::string_view username;  // only when access_log.include_username
};

// One JSON line per request. Workers format lines into their own buffer
// (AccessLogBuffer, no lock) and hand over whole batches; one writer thread
// writes them, so a slow disk or pipe never blocks a worker. If the writer
// falls more than `max_queued_bytes` behind, or a write fails (full disk,
// closed pipe), lines are dropped, counted, and a warning is logged.
// Never carries the Authorization header or the password.
// Thread-safety: submit() may be called from any thread.
class AccessLog {
 public:
  explicit AccessLog(const std::string& path);  // "-": stdout; throws on an unopenable file
  ~AccessLog();                                 // writes what is queued, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void submit(std::string batch);
  std::uint64_t dropped_bytes() const;

 private:
  void run();
  struct State;
  std::unique_ptr<State> state_;
};

// A worker's private line buffer. Thread-safety: one thread only.
class AccessLogBuffer {
 public:
  AccessLogBuffer(AccessLog& log, std::size_t flush_bytes = 64 * 1024);
  ~AccessLogBuffer() { flush(); }
  void write(const AccessRecord& record);
  void flush();

 private:
  AccessLog& log_;
  std::size_t flush_bytes_;
  std::string buffer_;
  std::int64_t cached_second_ = -1;
  char cached_time_[32] = {};  // "2026-11-22T02:42:42" for cached_second_
};

}  // namespace figshift
