// What the admin API shows: the /admin/status document and the /metrics text,
// read from the store, the proxy's counters and the guard. What it does (the
// routes, the writes) is admin_api.cpp.
#include "admin/views.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "figshift/guard.hpp"
#include "figshift/routing.hpp"
#include "figshift/store/etcd_backend.hpp"
#include "figshift/store/store.hpp"
#include "figshift/telemetry/prometheus.hpp"

namespace figshift::admin {
namespace {

using json = nlohmann::json;

// The guard's series, appended to /metrics (telemetry does not know the guard).
std::string render_guard_metrics(const Snapshot& snapshot, const GuardState& state) {
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  line(
      "# HELP figshift_guard_tripped 1 while guard-tripped is set in the store (the split is held "
      "at 0).");
  line("# TYPE figshift_guard_tripped gauge");
  line("figshift_guard_tripped " + std::string(snapshot.guard_tripped ? "1" : "0"));
  line(
      "# HELP figshift_guard_trips_total Guard breaches this process wrote to the store as a "
      "rollback.");
  line("# TYPE figshift_guard_trips_total counter");
  line("figshift_guard_trips_total " + std::to_string(state.trips));
  line(
      "# HELP figshift_guard_error_ratio Error ratio of the new group on each new upstream over "
      "the guard's window.");
  line("# TYPE figshift_guard_error_ratio gauge");
  for (const auto& r : state.readings)
    line("figshift_guard_error_ratio{upstream=\"" + r.upstream + "\"} " +
         json(r.error_ratio).dump());
  line(
      "# HELP figshift_guard_p99_seconds p99 latency of each new upstream over the guard's "
      "window.");
  line("# TYPE figshift_guard_p99_seconds gauge");
  for (const auto& r : state.readings)
    if (r.p99_ms)
      line("figshift_guard_p99_seconds{upstream=\"" + r.upstream + "\"} " +
           json(*r.p99_ms / 1000.0).dump());
  return out;
}

json plan_json(const Snapshot& snapshot, std::int64_t now) {
  if (!snapshot.plan) return nullptr;
  const TrafficPlan& plan = *snapshot.plan;
  const PlanProgress p = plan_progress(plan, now);
  json steps = json::array();
  for (const auto& s : plan.steps)
    steps.push_back({{"to", s.to}, {"over_s", s.over_ms / 1000}, {"hold_s", s.hold_ms / 1000}});
  return {{"from", plan.from},
          {"start_ms", plan.start_ms},
          {"steps", steps},
          {"step", p.step},
          {"step_count", plan.steps.size()},
          {"phase", p.done      ? "done"
                    : p.holding ? "holding"
                                : "ramping"},
          {"next_change_ms", p.next_change_ms},
          {"done", p.done}};
}

json guard_json(const Snapshot& snapshot, const GuardEvaluator* evaluator) {
  json out = {{"configured", snapshot.guard.has_value()}, {"tripped", nullptr}};
  if (snapshot.guard_tripped) out["tripped"] = json::parse(*snapshot.guard_tripped, nullptr, false);
  if (const auto& g = snapshot.guard) {
    out["thresholds"] = {
        {"max_error_ratio", g->max_error_ratio ? json(*g->max_error_ratio) : json(nullptr)},
        {"max_p99_ms", g->max_p99_ms ? json(*g->max_p99_ms) : json(nullptr)},
        {"window_s", g->window_s},
        {"min_requests", g->min_requests},
        {"relative_to_legacy", g->relative_to_legacy}};
  }
  if (evaluator) {
    const GuardState& state = evaluator->state();
    out["armed"] = state.armed;
    out["trips"] = state.trips;
    json readings = json::array();
    for (const auto& r : state.readings)
      readings.push_back({{"upstream", r.upstream},
                          {"requests", r.requests},
                          {"errors", r.errors},
                          {"error_ratio", r.error_ratio},
                          {"legacy_error_ratio",
                           r.legacy_error_ratio ? json(*r.legacy_error_ratio) : json(nullptr)},
                          {"p99_ms", r.p99_ms ? json(*r.p99_ms) : json(nullptr)}});
    out["readings"] = readings;
  }
  return out;
}

std::string user_key_text(const UserKey& key) {
  switch (key.kind) {
    case UserKey::Kind::basic:
      return "basic";
    case UserKey::Kind::header:
      return "header:" + key.name;
    case UserKey::Kind::cookie:
      return "cookie:" + key.name;
    case UserKey::Kind::jwt:
      return key.name == "sub" ? "jwt" : "jwt:" + key.name;
  }
  return "basic";
}

}  // namespace

json status_json(AdminContext& context) {
  const auto snapshot = context.store.snapshot();
  const auto now = context.now_ms();
  json ramp = nullptr;
  if (const auto& r = snapshot->ramp) {
    const RampProgress progress = ramp_progress(*r, now);
    ramp = {{"from", r->from},
            {"to", r->to},
            {"start_ms", r->start_ms},
            {"duration_ms", r->duration_ms},
            {"progress", progress.fraction},
            {"remaining_ms", progress.remaining_ms},
            {"active", progress.active}};
  }
  json upstreams = json::array();
  for (const auto& u : snapshot->upstreams) upstreams.push_back({{"name", u.name}, {"url", u.url}});
  json routes = json::array();
  for (const auto& route : snapshot->routes.routes())
    routes.push_back(
        {{"prefix", route.prefix},
         {"upstream", snapshot->upstreams[route.upstream].name},
         {"replacement", route.replacement ? json(*route.replacement) : json(nullptr)}});
  const TrafficStats traffic = context.stats();
  json requests = json::object();
  for (const auto& u : snapshot->upstreams) requests[u.name] = 0;
  for (const auto& [name, stats] : traffic.upstreams) requests[name] = stats.requests();
  // Distinct users per upstream over the last 5-6 minutes (#17): estimates, never names.
  json unique_users = json::object();
  for (const auto& u : snapshot->upstreams) {
    const auto it = traffic.unique_users.find(u.name);
    unique_users[u.name] =
        it == traffic.unique_users.end() ? 0 : std::llround(it->second.estimate(now));
  }
  json out = {{"split", snapshot->split_at(now)},
              {"split_exact", snapshot->split_hundredths_at(now) / 100.0},
              {"buckets", snapshot->buckets},
              {"user_key", user_key_text(snapshot->user_key)},
              {"pins", snapshot->pins.size()},
              {"unique_users", unique_users},
              {"traffic_split", snapshot->split},
              {"ramp", ramp},
              {"plan", plan_json(*snapshot, now)},
              {"guard", guard_json(*snapshot, context.guard)},
              {"mode", snapshot->mode == Mode::redirect ? "redirect" : "proxy"},
              {"legacy_upstream", snapshot->upstreams[snapshot->legacy].name},
              {"hash_salt_set", !snapshot->salt.empty()},
              {"version", snapshot->version},
              {"etag", snapshot->etag},
              {"upstreams", upstreams},
              {"routes", routes},
              {"requests", requests},
              {"draining", context.draining()}};
  // A store many replicas share (etcd, #14): its link, revision and staleness.
  if (const auto remote = context.store.backend().remote_status()) {
    const auto ms_or_null = [](std::int64_t ms) { return ms > 0 ? json(ms) : json(nullptr); };
    const auto text_or_null = [](const std::string& t) {
      return t.empty() ? json(nullptr) : json(t);
    };
    out["store"] = {
        {"connection", remote->connection},
        {"endpoint", remote->endpoint},
        {"revision", remote->revision},
        {"seconds_since_sync",
         remote->last_sync_ms > 0 ? json((now - remote->last_sync_ms) / 1000.0) : json(nullptr)},
        {"stale_since_ms", ms_or_null(remote->stale_since_ms)},
        {"refused", text_or_null(remote->refused)},
        {"last_error", text_or_null(remote->last_error)}};
  }
  return out;
}

std::string metrics_text(AdminContext& context) {
  const auto& store = context.store;
  std::string out = render_prometheus(
      context.stats(), *store.snapshot(),
      {store.version(), store.reload_successes(), store.reload_failures(), store.rejected_writes()},
      context.now_ms());
  if (const auto remote = context.store.backend().remote_status())
    out += render_remote_store_metrics(*remote, context.now_ms());
  if (context.guard) out += render_guard_metrics(*store.snapshot(), context.guard->state());
  return out;
}

}  // namespace figshift::admin
