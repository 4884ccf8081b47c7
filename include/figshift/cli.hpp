#pragma once
// The subcommands of the `figshift` binary. Each returns the process exit code.

#include <cstdint>
#include <string>
#include <vector>

namespace figshift::cli {

// `figshift serve`: runs the daemon until SIGTERM/SIGINT, then drains.
int run_serve(const std::string& config_path);
// `figshift check-config`: validates the config file and the store it points at.
int run_check_config(const std::string& config_path);
// `figshift bucket`: the routing rule for one username, explained.
int run_bucket(const std::string& username, const std::string& salt, int split);

struct DemoUpstream {
  std::string name;  // "A", "B1", "B2"
  std::uint16_t port = 0;
};

// Serves one small JSON API per entry on `address` until SIGINT/SIGTERM:
// {"message":"Hello from API B1","path":"/v2/orders/1","method":"GET"}.
int run_demo_upstreams(const std::string& address, const std::vector<DemoUpstream>& upstreams);

}  // namespace figshift::cli
