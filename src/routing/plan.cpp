// The split during a guarded rollout: a pure function of the plan and the wall
// clock, computed the same way as a ramp's (split_at), one step at a time.

#include <cstdint>

#include "figshift/routing.hpp"

namespace figshift {

PlanProgress plan_progress(const TrafficPlan& plan, std::int64_t now_ms) {
  PlanProgress p;
  int level = plan.from;
  std::int64_t phase_start = plan.start_ms;
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    p.step = i;
    p.step_start_ms = phase_start;
    // The ramp of this step, exactly as a traffic-ramp from `level` to `to`.
    const Ramp ramp{level, step.to, phase_start, step.over_ms};
    if (now_ms < phase_start + step.over_ms) {
      p.split = split_at(step.to, ramp, now_ms);
      p.next_change_ms = phase_start + step.over_ms;
      return p;
    }
    level = step.to;
    const std::int64_t hold_start = phase_start + step.over_ms;
    if (now_ms < hold_start + step.hold_ms) {
      p.split = level;
      p.holding = true;
      p.next_change_ms = hold_start + step.hold_ms;
      return p;
    }
    phase_start = hold_start + step.hold_ms;
  }
  p.split = level;
  p.step = plan.steps.size();
  p.done = true;
  p.step_start_ms = phase_start;
  return p;
}

}  // namespace figshift
