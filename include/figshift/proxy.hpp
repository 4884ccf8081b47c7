#pragma once
// The traffic side: N worker threads, each with its own io_context, SO_REUSEPORT
// acceptors, upstream connection pool and snapshot pointer.
// Thread-safety: construct, start, drain and join from one control thread;
// publish() may be called from any thread (it only posts to the workers).
// Lifetime: the Server keeps its own copy of the Config.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "figshift/config.hpp"
#include "figshift/routing.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {

struct JwtKeySet;  // figshift/identity.hpp

// Loads every TLS certificate, key and CA file the config names, as the Server
// will; throws ConfigError naming the field. For check-config and start-up.
void check_tls_files(const Config& config);

class Server {
 public:
  Server(const Config& config, std::shared_ptr<const Snapshot> initial);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listen address (throws std::runtime_error on failure) and starts the workers.
  void start();
  // "address:port" of each traffic listener, after start(); port 0 resolved.
  std::vector<std::string> bound_addresses() const;

  // Hands a new snapshot to every worker; requests already running keep theirs.
  void publish(std::shared_ptr<const Snapshot> snapshot);
  // Hands new JWT verification keys (#17) to every worker; each forgets its cached tokens.
  void publish_keys(std::shared_ptr<const JwtKeySet> keys);

  // Every worker's counters, each copied on its own thread, merged. Blocks the
  // caller up to `timeout`; a worker that does not answer in time is left out.
  TrafficStats collect_stats(std::chrono::milliseconds timeout) const;

  // Stops accepting, closes idle connections, lets in-flight requests finish.
  void drain();
  // Waits up to `timeout` for the workers to finish, then stops them. True if all finished.
  bool join(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace figshift
