// `figshift rollout --steps 5:60:300,25:120:600,100:300` and `figshift guard
// reset`: guarded rollouts (issue #16) as clients of the admin API.

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "admin_client.hpp"
#include "figshift/cli.hpp"

namespace figshift::cli {
namespace {

using json = nlohmann::json;

// "5:60:300,25:120:600,100:300" -> [{"to":5,"over_s":60,"hold_s":300}, …]; the
// hold of a step may be left out ("100:300"). The daemon validates the rest.
json parse_steps(const std::string& text) {
  json steps = json::array();
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    std::stringstream fields(item);
    std::string field;
    std::vector<long long> numbers;
    while (std::getline(fields, field, ':')) {
      std::size_t used = 0;
      long long value = -1;
      try {
        value = std::stoll(field, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (field.empty() || used != field.size() || value < 0)
        throw CliError(kExitUsage, "--steps: \"" + item +
                                       "\" is not TO:OVER_S[:HOLD_S] with whole numbers (e.g. 5:60:300)");
      numbers.push_back(value);
    }
    if (numbers.size() < 2 || numbers.size() > 3)
      throw CliError(kExitUsage, "--steps: \"" + item + "\" is not TO:OVER_S[:HOLD_S] (e.g. 5:60:300)");
    json step = {{"to", numbers[0]}, {"over_s", numbers[1]}};
    if (numbers.size() == 3) step["hold_s"] = numbers[2];
    steps.push_back(step);
  }
  if (steps.empty()) throw CliError(kExitUsage, "--steps: no step given (e.g. 5:60:300,100:300)");
  return steps;
}

std::string plan_line(const json& status) {
  const json& plan = status["plan"];
  std::ostringstream out;
  out << "split " << status.value("split", -1) << "%";
  if (plan.is_object()) {
    const auto step = plan.value("step", 0);
    const auto count = plan.value("step_count", 0);
    const std::string phase = plan.value("phase", "");
    if (phase == "done") {
      out << ", plan done";
    } else {
      const auto steps = plan["steps"];
      const int to = steps.is_array() && step < static_cast<int>(steps.size()) ? steps[step].value("to", 0) : 0;
      out << ", step " << step + 1 << "/" << count << " (" << phase << " to " << to << "%)";
    }
  }
  return out.str();
}

}  // namespace

int run_rollout(const AdminOptions& admin, const std::string& steps_text, bool wait) {
  return run_guarded([&] {
    const json body = {{"steps", parse_steps(steps_text)}};
    const AdminClient client(admin);
    json status = parse_json(client.call("POST", "/admin/rollout", body.dump()), "POST /admin/rollout");
    std::cout << "rollout started: " << plan_line(status)
              << (wait ? " (Ctrl-C stops watching, not the rollout)\n"
                       : " (figshift status to check, figshift rollback to undo)\n")
              << std::flush;
    if (!wait) return kExitOk;
    std::string last;
    while (true) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      status = parse_json(client.call("GET", "/admin/status"), "GET /admin/status");
      const json& guard = status["guard"];
      if (guard.is_object() && guard["tripped"].is_object()) {
        const json& t = guard["tripped"];
        std::cout << "GUARD TRIPPED: " << t.value("metric", "?") << " on " << t.value("upstream", "?")
                  << " was " << t.value("value", 0.0) << " (threshold " << t.value("threshold", 0.0)
                  << "); split rolled back to " << status.value("split", -1) << "%\n";
        return kExitError;
      }
      if (!status["plan"].is_object()) {
        std::cout << "the plan was ended (a shift, a rollback or a kv write): split now "
                  << status.value("split", -1) << "%\n";
        return kExitError;
      }
      const std::string line = plan_line(status);
      if (line != last) std::cout << line << "\n" << std::flush;
      last = line;
      if (status["plan"].value("done", false)) return kExitOk;
    }
  });
}

int run_guard_reset(const AdminOptions& admin) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.request("DELETE", "/admin/kv/" + percent_encode("guard-tripped"));
    if (res.status == 404) {
      std::cout << "the guard has not tripped: nothing to reset\n";
      return kExitOk;
    }
    client.check(res, "DELETE", "/admin/kv/guard-tripped");
    std::cout << "guard reset: shifts and rollouts above 0 are accepted again\n";
    return kExitOk;
  });
}

}  // namespace figshift::cli
