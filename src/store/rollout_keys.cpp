#include "store/rollout_keys.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "figshift/store/kv_map.hpp"

namespace figshift::store_keys {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw InvalidStore(key + ": " + why);
}

json parse_object(const std::string& key, const std::string& text, const char* shape) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {  // also out_of_range: a number beyond a double
    bad(key, std::string("must be JSON ") + shape);
  }
  if (!j.is_object()) bad(key, std::string("must be a JSON object ") + shape);
  return j;
}

void only_fields(const std::string& key, const json& j, const std::set<std::string>& known,
                 const std::string& where = "") {
  for (const auto& [name, _] : j.items())
    if (!known.count(name)) bad(key, "unknown field \"" + where + name + "\"");
}

std::int64_t integer(const std::string& key, const json& j, const std::string& name,
                     std::int64_t min, std::int64_t max, std::optional<std::int64_t> fallback,
                     const std::string& where = "") {
  const auto it = j.find(name);
  if (it == j.end()) {
    if (fallback) return *fallback;
    bad(key, "\"" + where + name + "\" is required");
  }
  if (!it->is_number_integer()) bad(key, "\"" + where + name + "\" must be an integer");
  const auto v = it->get<std::int64_t>();
  if (v < min || v > max)
    bad(key, "\"" + where + name + "\" must be between " + std::to_string(min) + " and " +
                 std::to_string(max) + ", got " + std::to_string(v));
  return v;
}

constexpr std::int64_t max_phase_s = 30LL * 24 * 3600;
constexpr std::int64_t max_start_ms = 253402300799999;  // year 9999
constexpr std::size_t max_steps = 20;

}  // namespace

TrafficPlan parse_traffic_plan(const std::string& key, const std::string& text) {
  const json j = parse_object(key, text, "{\"start_ms\",\"steps\":[{\"to\",\"over_s\",\"hold_s\"}]}");
  only_fields(key, j, {"start_ms", "from", "steps"});
  TrafficPlan plan;
  plan.start_ms = integer(key, j, "start_ms", 0, max_start_ms, std::nullopt);
  plan.from = static_cast<int>(integer(key, j, "from", 0, 100, 0));
  const auto steps = j.find("steps");
  if (steps == j.end() || !steps->is_array() || steps->empty() || steps->size() > max_steps)
    bad(key, "\"steps\" must be an array of 1 to " + std::to_string(max_steps) + " steps");
  int level = plan.from;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const json& step = (*steps)[i];
    const std::string where = "steps[" + std::to_string(i) + "].";
    if (!step.is_object()) bad(key, "\"" + where.substr(0, where.size() - 1) + "\" must be an object");
    only_fields(key, step, {"to", "over_s", "hold_s"}, where);
    PlanStep s;
    s.to = static_cast<int>(integer(key, step, "to", 0, 100, std::nullopt, where));
    s.over_ms = integer(key, step, "over_s", 0, max_phase_s, std::nullopt, where) * 1000;
    s.hold_ms = integer(key, step, "hold_s", 0, max_phase_s, 0, where) * 1000;
    // Raising the split only moves users from legacy to new: a plan that
    // lowered it would move some back and forth (rollback is its own command).
    if (s.to < level)
      bad(key, "\"" + where + "to\" is " + std::to_string(s.to) + ", below the " +
                   std::to_string(level) + " before it: a plan only raises the split");
    level = s.to;
    plan.steps.push_back(s);
  }
  return plan;
}

Guard parse_guard(const std::string& key, const std::string& text) {
  const json j = parse_object(
      key, text, "{\"max_error_ratio\",\"max_p99_ms\",\"window_s\",\"min_requests\",\"relative_to_legacy\"}");
  only_fields(key, j,
              {"max_error_ratio", "max_p99_ms", "window_s", "min_requests", "relative_to_legacy"});
  Guard g;
  if (const auto it = j.find("max_error_ratio"); it != j.end()) {
    if (!it->is_number()) bad(key, "\"max_error_ratio\" must be a number");
    const double r = it->get<double>();
    if (!(r > 0 && r <= 1)) bad(key, "\"max_error_ratio\" must be above 0 and at most 1");
    g.max_error_ratio = r;
  }
  // The latency histogram's last bound is 5 s: a p99 beyond it reads as 5 s, so
  // a higher threshold could never trip.
  if (j.contains("max_p99_ms")) g.max_p99_ms = integer(key, j, "max_p99_ms", 1, 4'999, std::nullopt);
  if (!g.max_error_ratio && !g.max_p99_ms)
    bad(key, "needs a threshold: \"max_error_ratio\" and/or \"max_p99_ms\"");
  g.window_s = integer(key, j, "window_s", 1, 3600, 30);
  g.min_requests = integer(key, j, "min_requests", 1, 1'000'000'000, 100);
  if (const auto it = j.find("relative_to_legacy"); it != j.end()) {
    if (!it->is_boolean()) bad(key, "\"relative_to_legacy\" must be true or false");
    g.relative_to_legacy = it->get<bool>();
    if (g.relative_to_legacy && !g.max_error_ratio)
      bad(key, "\"relative_to_legacy\" compares error ratios: it needs \"max_error_ratio\"");
  }
  return g;
}

void check_guard_tripped(const std::string& key, const std::string& text) {
  parse_object(key, text, "(what the guard wrote when it tripped)");
}

}  // namespace figshift::store_keys
