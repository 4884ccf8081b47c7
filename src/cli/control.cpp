// `figshift shift`, `figshift rollback`, `figshift status`: the traffic
// controls, as clients of a running daemon's admin API (docs/admin-api.md).

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "admin_client.hpp"
#include "figshift/cli.hpp"

namespace figshift::cli {
namespace {

using json = nlohmann::json;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) {
  g_interrupted = 1;
}

// Installs the SIGINT handler for its lifetime (no SA_RESTART: a blocked
// sleep or read wakes up).
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ {};
};

json get_status(const AdminClient& client) {
  return parse_json(client.call("GET", "/admin/status"), "GET /admin/status");
}

long long int_of(const json& j, const char* key, long long fallback = -1) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<long long>();
}

std::string str_of(const json& j, const char* key, std::string fallback = {}) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

const json* ramp_of(const json& status) {
  if (!status.is_object()) return nullptr;
  auto it = status.find("ramp");
  if (it == status.end() || !it->is_object()) return nullptr;
  return &*it;
}

// "31s", "4m05s", "2h03m".
std::string duration_text(long long ms) {
  if (ms < 0) ms = 0;
  const long long s = (ms + 999) / 1000;
  std::ostringstream out;
  if (s < 60) {
    out << s << "s";
  } else if (s < 3600) {
    out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  } else {
    out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  }
  return out.str();
}

std::map<std::string, long long> requests_of(const json& status) {
  std::map<std::string, long long> out;
  if (!status.is_object()) return out;
  auto it = status.find("requests");
  if (it == status.end() || !it->is_object()) return out;
  for (auto& [name, value] : it->items())
    if (value.is_number()) out[name] = value.get<long long>();
  return out;
}

// Upstream names in the status' order, then any other name that has counters.
std::vector<std::string> upstream_names(const json& status) {
  std::vector<std::string> names;
  if (auto it = status.find("upstreams"); it != status.end() && it->is_array())
    for (const auto& u : *it) {
      const std::string name = str_of(u, "name");
      if (!name.empty()) names.push_back(name);
    }
  for (const auto& [name, count] : requests_of(status))
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

std::string requests_since(const json& status, const std::map<std::string, long long>& baseline,
                           bool tty) {
  const auto now = requests_of(status);
  std::ostringstream out;
  bool first = true;
  for (const auto& name : upstream_names(status)) {
    long long delta = 0;
    if (auto it = now.find(name); it != now.end()) delta = it->second;
    if (auto it = baseline.find(name); it != baseline.end()) delta -= it->second;
    out << (first ? "" : tty ? "  " : " ") << name << (tty ? " " : "=") << std::max(0LL, delta);
    first = false;
  }
  return first ? "-" : out.str();
}

std::string bar(double fraction, int width = 20) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(std::floor(fraction * width + 1e-9));
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

struct RampWatch {
  int percent = 0;
  long long start_ms = -1;
  int from = 0;
  long long duration_ms = 0;
  std::map<std::string, long long> baseline;
};

enum class RampState { running, done, replaced };

RampState state_of(const json& status, const RampWatch& watch) {
  const json* ramp = ramp_of(status);
  if (!ramp)
    return int_of(status, "traffic_split") == watch.percent ? RampState::done : RampState::replaced;
  if (int_of(*ramp, "start_ms") != watch.start_ms || int_of(*ramp, "to") != watch.percent)
    return RampState::replaced;
  if (auto it = ramp->find("active"); it != ramp->end() && it->is_boolean() && !it->get<bool>())
    return RampState::done;
  if (int_of(*ramp, "remaining_ms", 1) <= 0) return RampState::done;
  return RampState::running;
}

std::string progress_line(const json& status, const RampWatch& watch, bool tty) {
  const char* arrow = tty ? " → " : " -> ";
  const json* ramp = ramp_of(status);
  double progress = 1.0;
  long long remaining = 0;
  if (ramp) {
    if (auto it = ramp->find("progress"); it != ramp->end() && it->is_number())
      progress = it->get<double>();
    remaining = int_of(*ramp, "remaining_ms", 0);
  }
  std::ostringstream out;
  out << "split " << int_of(status, "split") << "%" << arrow << watch.percent << "%  "
      << bar(progress) << " " << std::setw(3)
      << static_cast<int>(std::floor(std::clamp(progress, 0.0, 1.0) * 100)) << "%  "
      << duration_text(remaining)
      << " left  requests since shift: " << requests_since(status, watch.baseline, tty);
  return out.str();
}

void print_progress(const std::string& line, bool tty) {
  if (tty)
    std::cout << "\r" << line << "\x1b[K" << std::flush;
  else
    std::cout << line << "\n" << std::flush;
}

// Sleeps until `until`, waking early on SIGINT. True when interrupted.
bool sleep_until(std::chrono::steady_clock::time_point until) {
  while (!g_interrupted) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  return true;
}

constexpr const char* kStoppedWatching =
    "stopped watching; the ramp keeps running in the daemon (figshift status to check, figshift "
    "rollback to undo)";

int watch_ramp(const AdminClient& client, json status, const RampWatch& watch) {
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  SigintGuard guard;
  auto tick = std::chrono::steady_clock::now();
  while (true) {
    const RampState state = state_of(status, watch);
    if (state == RampState::replaced) {
      if (tty) std::cout << "\n";
      std::cout << "the ramp was replaced (another shift, a rollback or a kv write): split now "
                << int_of(status, "split") << "%, target " << int_of(status, "traffic_split")
                << "%; requests since shift: " << requests_since(status, watch.baseline, tty)
                << "\n";
      return kExitError;
    }
    if (state == RampState::done) {
      const std::string line =
          "done: split " + std::to_string(int_of(status, "split")) + "% (ramp " +
          std::to_string(watch.from) + "%" + (tty ? " → " : " -> ") +
          std::to_string(watch.percent) + "% over " + duration_text(watch.duration_ms) +
          "); requests since shift: " + requests_since(status, watch.baseline, tty);
      print_progress(line, tty);
      if (tty) std::cout << "\n";
      return kExitOk;
    }
    print_progress(progress_line(status, watch, tty), tty);
    tick += std::chrono::seconds(1);
    if (sleep_until(tick)) break;
    try {
      status = get_status(client);
    } catch (const CliError&) {
      if (tty) std::cout << "\n";
      std::cout.flush();
      std::cerr << "figshift: lost the admin API while watching; the ramp keeps running in the "
                   "daemon\n";
      throw;
    }
    if (g_interrupted) break;
  }
  if (tty) std::cout << "\n";
  std::cout << kStoppedWatching << "\n" << std::flush;
  return kExitOk;
}

}  // namespace

int run_shift(const AdminOptions& admin, int percent, int seconds, bool wait) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const json body = {{"percent", percent}, {"seconds", seconds}};
    json status = parse_json(client.call("POST", "/admin/traffic-shift", body.dump()),
                             "POST /admin/traffic-shift");
    const json* ramp = ramp_of(status);
    if (!ramp || seconds == 0) {
      std::cout << "split now " << int_of(status, "split") << "% (target " << percent << "%)\n";
      return kExitOk;
    }
    RampWatch watch;
    watch.percent = percent;
    watch.start_ms = int_of(*ramp, "start_ms");
    watch.from = static_cast<int>(int_of(*ramp, "from", 0));
    watch.duration_ms = int_of(*ramp, "duration_ms", seconds * 1000LL);
    watch.baseline = requests_of(status);
    if (!wait) {
      std::cout << "ramp started: split " << watch.from << "% -> " << percent << "% over "
                << duration_text(watch.duration_ms)
                << " (figshift status to check, figshift rollback to undo)\n";
      return kExitOk;
    }
    std::cout << "ramp started: split " << watch.from << "% -> " << percent << "% over "
              << duration_text(watch.duration_ms) << " (Ctrl-C stops watching, not the ramp)\n"
              << std::flush;
    return watch_ramp(client, std::move(status), watch);
  });
}

int run_rollback(const AdminOptions& admin) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const json status = parse_json(client.call("POST", "/admin/rollback"), "POST /admin/rollback");
    std::cout << "rolled back: split now " << int_of(status, "split")
              << "%; every user goes to the legacy upstream "
              << str_of(status, "legacy_upstream", "?") << "\n";
    return kExitOk;
  });
}

int run_status(const AdminOptions& admin, bool as_json) {
  return run_guarded([&] {
    const AdminClient client(admin);
    const AdminResponse res = client.call("GET", "/admin/status");
    if (as_json) {
      std::cout << res.body;
      if (res.body.empty() || res.body.back() != '\n') std::cout << "\n";
      return kExitOk;
    }
    const json status = parse_json(res, "GET /admin/status");
    const auto row = [](const char* label) -> std::ostream& {
      return std::cout << std::left << std::setw(12) << label << std::right;
    };
    row("split") << int_of(status, "split") << "%   (target " << int_of(status, "traffic_split")
                 << "%)\n";
    // A shared store (etcd, #14): whether this replica follows it, and how stale it may be.
    if (const auto store = status.find("store"); store != status.end() && store->is_object()) {
      const json& s = *store;
      row("store") << "etcd " << str_of(s, "connection", "?") << " (" << str_of(s, "endpoint") << "), revision "
                   << int_of(s, "revision", 0);
      if (auto since = s.find("seconds_since_sync"); since != s.end() && since->is_number())
        std::cout << ", synced " << std::llround(since->get<double>() * 10) / 10 << "."
                  << std::llround(since->get<double>() * 10) % 10 << " s ago";  // no sticky stream flags
      if (auto stale = s.find("stale_since_ms"); stale != s.end() && stale->is_number_integer())
        std::cout << ", may be stale since Unix ms " << stale->get<long long>();
      std::cout << "\n";
      if (auto refused = s.find("refused"); refused != s.end() && refused->is_string())
        row("refused") << refused->get<std::string>() << "\n";
    }
    if (const json* ramp = ramp_of(status)) {
      double progress = 0;
      if (auto it = ramp->find("progress"); it != ramp->end() && it->is_number())
        progress = it->get<double>();
      const bool active = ramp->value("active", false);
      row("ramp") << int_of(*ramp, "from") << "% -> " << int_of(*ramp, "to") << "% over "
                  << duration_text(int_of(*ramp, "duration_ms", 0)) << "  " << bar(progress) << " "
                  << static_cast<int>(std::floor(std::clamp(progress, 0.0, 1.0) * 100)) << "%";
      if (active)
        std::cout << ", " << duration_text(int_of(*ramp, "remaining_ms", 0)) << " left\n";
      else
        std::cout << ", finished\n";
    } else {
      row("ramp") << "none\n";
    }
    if (const auto plan = status.find("plan"); plan != status.end() && plan->is_object())
      row("plan") << "step " << std::min<long long>(int_of(*plan, "step", 0) + 1, int_of(*plan, "step_count", 0))
                  << "/" << int_of(*plan, "step_count", 0) << ", " << str_of(*plan, "phase", "?") << "\n";
    if (const auto guard = status.find("guard"); guard != status.end() && guard->is_object()) {
      const json& g = *guard;
      if (auto t = g.find("tripped"); t != g.end() && t->is_object())
        row("guard") << "TRIPPED: " << str_of(*t, "metric", "?") << " on " << str_of(*t, "upstream", "?")
                     << " was " << t->value("value", 0.0) << " (threshold " << t->value("threshold", 0.0)
                     << "); figshift guard reset to re-arm\n";
      else if (g.value("configured", false))
        row("guard") << "armed\n";
      if (auto readings = g.find("readings"); readings != g.end() && readings->is_array())
        for (const auto& r : *readings)
          std::cout << "            " << str_of(r, "upstream", "?") << ": " << int_of(r, "requests", 0)
                    << " requests, error ratio " << r.value("error_ratio", 0.0) << ", p99 "
                    << (r.contains("p99_ms") && r["p99_ms"].is_number() ? std::to_string(r["p99_ms"].get<double>()) + " ms" : "-")
                    << "\n";
    }
    row("mode") << str_of(status, "mode", "?") << "\n";
    row("legacy") << str_of(status, "legacy_upstream", "?") << "\n";
    row("version") << int_of(status, "version") << "   etag " << str_of(status, "etag") << "\n";
    if (auto it = status.find("draining");
        it != status.end() && it->is_boolean() && it->get<bool>())
      row("draining") << "yes\n";

    const auto requests = requests_of(status);
    std::map<std::string, std::string> urls;
    if (auto it = status.find("upstreams"); it != status.end() && it->is_array())
      for (const auto& u : *it) urls[str_of(u, "name")] = str_of(u, "url");
    std::size_t width = 8;
    for (const auto& name : upstream_names(status)) width = std::max(width, name.size() + 2);
    std::cout << "\nupstreams\n";
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << "name" << std::setw(40)
              << "url" << std::right << std::setw(10) << "requests"
              << "\n";
    for (const auto& name : upstream_names(status)) {
      long long count = 0;
      if (auto it = requests.find(name); it != requests.end()) count = it->second;
      const auto url = urls.find(name);
      std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << name << std::setw(40)
                << (url == urls.end() ? "(not in the store)" : url->second) << std::right
                << std::setw(10) << count << "\n";
    }
    std::cout << "\nroutes\n";
    bool any_route = false;
    if (auto it = status.find("routes"); it != status.end() && it->is_array())
      for (const auto& r : *it) {
        any_route = true;
        std::cout << "  " << std::left << std::setw(20) << str_of(r, "prefix") << std::right
                  << " -> " << str_of(r, "upstream");
        const std::string replacement = str_of(r, "replacement");
        if (!replacement.empty()) std::cout << " " << replacement;
        std::cout << "\n";
      }
    if (!any_route) std::cout << "  (none)\n";
    return kExitOk;
  });
}

}  // namespace figshift::cli
