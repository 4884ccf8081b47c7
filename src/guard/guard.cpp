#include "figshift/guard.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace figshift {
namespace {

// Counters of `now` minus those of `then` (cumulative since start).
UpstreamStats difference(const UpstreamStats& now, const UpstreamStats* then) {
  if (!then) return now;
  UpstreamStats d = now;
  for (std::size_t g = 0; g < d.responses.size(); ++g)
    for (std::size_t c = 0; c < d.responses[g].size(); ++c) d.responses[g][c] -= then->responses[g][c];
  for (std::size_t i = 0; i < d.latency.counts.size(); ++i)
    d.latency.counts[i] -= then->latency.counts[i];
  d.latency.count -= then->latency.count;
  return d;
}

// Whether any counter of `now` is below `then`: a sample that missed a worker
// (collect_stats leaves out one that does not answer in time) or a restarted
// count. Subtracting would wrap around to huge numbers and a false verdict.
bool went_down(const std::map<std::string, UpstreamStats>& now,
               const std::map<std::string, UpstreamStats>& then) {
  for (const auto& [name, old] : then) {
    const auto it = now.find(name);
    if (it == now.end()) return true;
    for (std::size_t g = 0; g < old.responses.size(); ++g)
      for (std::size_t c = 0; c < old.responses[g].size(); ++c)
        if (it->second.responses[g][c] < old.responses[g][c]) return true;
    for (std::size_t i = 0; i < old.latency.counts.size(); ++i)
      if (it->second.latency.counts[i] < old.latency.counts[i]) return true;
  }
  return false;
}

std::uint64_t answered(const UpstreamStats& s, int group) {
  std::uint64_t n = 0;
  for (auto c : s.responses[group]) n += c;
  return n;
}

double ratio(std::uint64_t part, std::uint64_t whole) {
  return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

}  // namespace

std::optional<double> p99_seconds(const LatencyHistogram& window) {
  std::uint64_t total = 0;
  for (auto c : window.counts) total += c;
  if (total == 0) return std::nullopt;
  const double rank = 0.99 * static_cast<double>(total);
  double below = 0;
  for (std::size_t i = 0; i < window.counts.size(); ++i) {
    const double in_bucket = static_cast<double>(window.counts[i]);
    if (below + in_bucket >= rank && in_bucket > 0) {
      if (i == LatencyHistogram::bounds.size()) return LatencyHistogram::bounds.back();
      const double lower = i == 0 ? 0.0 : LatencyHistogram::bounds[i - 1];
      const double upper = LatencyHistogram::bounds[i];
      return lower + (upper - lower) * (rank - below) / in_bucket;
    }
    below += in_bucket;
  }
  return LatencyHistogram::bounds.back();
}

std::optional<GuardBreach> window_verdict(const Guard& guard, const GuardReading& reading) {
  if (reading.requests < static_cast<std::uint64_t>(guard.min_requests)) return std::nullopt;
  if (guard.max_error_ratio) {
    // relative_to_legacy: what the new API adds to the legacy one's own failures.
    const double value = reading.error_ratio - reading.legacy_error_ratio.value_or(0.0);
    if (value > *guard.max_error_ratio)
      return GuardBreach{"error_ratio", value, *guard.max_error_ratio};
  }
  if (guard.max_p99_ms && reading.p99_ms && *reading.p99_ms > static_cast<double>(*guard.max_p99_ms))
    return GuardBreach{"p99_ms", *reading.p99_ms, static_cast<double>(*guard.max_p99_ms)};
  return std::nullopt;
}

GuardEvaluator::GuardEvaluator(Store& store, std::function<TrafficStats()> stats,
                               std::function<std::int64_t()> now_ms)
    : store_(store), stats_(std::move(stats)), now_ms_(std::move(now_ms)) {}

void GuardEvaluator::evaluate() {
  const auto snapshot = store_.snapshot();
  const auto now = now_ms_();
  state_.evaluated_ms = now;
  state_.armed = snapshot->guard && !snapshot->guard_tripped;
  state_.readings.clear();
  if (!state_.armed) {
    // Disarmed or tripped: a later re-arm (guard reset) judges only what comes after it.
    samples_.clear();
    judged_guard_.reset();
    return;
  }
  const Guard& guard = *snapshot->guard;
  state_.window_s = guard.window_s;
  if (judged_guard_ != guard) samples_.clear();  // new thresholds, new window
  judged_guard_ = guard;

  // With the split at 0 no request reaches a new upstream: a later rollout is
  // judged on its own traffic, not on what the one before it left in the window.
  if (snapshot->split_hundredths_at(now) == 0) {
    samples_.clear();
    return;
  }
  Sample sample{now, stats_().upstreams};
  if (!samples_.empty() && went_down(sample.upstreams, samples_.back().upstreams)) {
    samples_.clear();  // an incomplete sample: start the window again from the next one
    return;
  }
  samples_.push_back(std::move(sample));
  // Keep one sample at or before the window's start: the base of the difference.
  while (samples_.size() > 2 && samples_[1].at_ms <= now - guard.window_s * 1000) samples_.pop_front();
  const Sample& base = samples_.front();
  const Sample& latest = samples_.back();
  if (&base == &latest) return;  // one sample: no window yet

  auto window_of = [&](const std::string& name) {
    const auto now_it = latest.upstreams.find(name);
    if (now_it == latest.upstreams.end()) return UpstreamStats{};
    const auto then_it = base.upstreams.find(name);
    return difference(now_it->second, then_it == base.upstreams.end() ? nullptr : &then_it->second);
  };
  std::optional<double> legacy_ratio;
  if (guard.relative_to_legacy) {
    const UpstreamStats legacy = window_of(snapshot->upstreams[snapshot->legacy].name);
    legacy_ratio = ratio(legacy.responses[0][4], answered(legacy, 0));
  }
  for (std::size_t i = 0; i < snapshot->upstreams.size(); ++i) {
    if (i == snapshot->legacy) continue;  // only requests that reached a new upstream count
    const std::string& name = snapshot->upstreams[i].name;
    const UpstreamStats w = window_of(name);
    GuardReading reading;
    reading.upstream = name;
    reading.requests = answered(w, 1);
    reading.errors = w.responses[1][4];
    reading.error_ratio = ratio(reading.errors, reading.requests);
    reading.legacy_error_ratio = legacy_ratio;
    if (const auto p99 = p99_seconds(w.latency)) reading.p99_ms = *p99 * 1000.0;
    state_.readings.push_back(reading);
  }
  for (const auto& reading : state_.readings)
    if (const auto breach = window_verdict(guard, reading)) return trip(*snapshot, reading, *breach, now);
}

void GuardEvaluator::trip(const Snapshot& snapshot, const GuardReading& reading,
                          const GuardBreach& breach, std::int64_t now) {
  const nlohmann::json record{{"at_ms", now},
                              {"metric", breach.metric},
                              {"value", breach.value},
                              {"threshold", breach.threshold},
                              {"upstream", reading.upstream},
                              {"window_s", snapshot.guard->window_s},
                              {"requests", reading.requests}};
  Batch batch;
  batch.puts.emplace_back("traffic-split", "0");
  batch.puts.emplace_back("guard-tripped", record.dump());
  batch.deletes = {"traffic-ramp", "traffic-plan"};
  // Conditional on the version judged: when another replica tripped first (or
  // an operator wrote meanwhile), this write is refused and the next
  // evaluation sees their state instead of writing twice.
  const WriteResult result = store_.apply(batch, snapshot.etag);
  if (result.status == WriteStatus::ok) {
    ++state_.trips;
    state_.armed = false;
    spdlog::warn("guard tripped: {} on {} is {:.4g} over the last {} s ({} requests), threshold {:.4g}: "
                 "split rolled back to 0",
                 breach.metric, reading.upstream, breach.value, snapshot.guard->window_s,
                 reading.requests, breach.threshold);
  } else if (result.status != WriteStatus::precondition_failed) {
    spdlog::error("guard tripped ({} on {}) but the rollback could not be written: {}", breach.metric,
                  reading.upstream, result.message);
  }
}

}  // namespace figshift
