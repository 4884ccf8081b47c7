#pragma once
// The admin HTTP API (docs/admin-api.md) on its own listener. It reads and writes
// only through the Store and never touches the workers.
// Thread-safety: runs on the io_context given to it (one thread); the
// AdminContext callbacks are called on that thread.
// Lifetime: the io_context, the Config and AdminContext::store must outlive the AdminServer.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "figshift/config.hpp"
#include "figshift/guard.hpp"
#include "figshift/store/store.hpp"
#include "figshift/telemetry/stats.hpp"

namespace boost::asio {
class io_context;
}

namespace figshift {

// The bearer token from admin.token_file / admin.token_env ("" when none), or a
// ConfigError: unreadable or empty token, or a non-loopback admin address without one.
std::string load_admin_token(const Config& config);

// Constant-time check of an Authorization header against "Bearer <token>".
bool bearer_matches(std::string_view authorization, std::string_view token);

struct AdminContext {
  Store& store;
  std::string token;                                   // empty: no authentication
  std::function<TrafficStats()> stats;                 // the proxy's counters, merged
  std::function<bool()> draining;                      // readiness
  std::function<std::int64_t()> now_ms;                // wall clock, Unix ms
  const GuardEvaluator* guard = nullptr;               // live guard values; null: none
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, const Config& config, AdminContext context);
  ~AdminServer();
  void start();                     // binds (throws std::runtime_error) and accepts
  std::string bound_address() const;
  void stop();                      // closes the listener and open admin connections

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace figshift
