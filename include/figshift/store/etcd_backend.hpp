#pragma once
// The `etcd` backend (#14): the store's keys live under a prefix in an etcd v3
// cluster that many replicas share, read and written through etcd's JSON
// gateway. open_etcd_store reads (and, on an empty prefix, seeds) etcd once,
// or falls back to the local cache; EtcdSync then keeps the Store in step
// through a watch on the daemon's control io_context.
// Thread-safety: open_etcd_store blocks its caller (start-up only). EtcdSync's
// start() and stop() and all its work run on the control io_context's thread;
// the Store's writes to etcd run on the thread that calls Store::apply (the
// admin API's, the same control thread) and block it for at most
// request_timeout. Lifetime: the Store owns the backend; EtcdSync refers to the
// Store, which must outlive it (call stop() before destroying the Store).

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "figshift/store/store.hpp"

namespace boost::asio {
class io_context;
}

namespace figshift {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://host:port", failed over in turn
  std::string prefix = "/figshift/";
  std::filesystem::path seed;   // KVS import file written once into an empty prefix
  std::filesystem::path cache;  // every accepted content, written atomically; empty: none
  std::string username;         // etcd authentication (a simple or JWT token per connection)
  std::filesystem::path password_file;  // its password, one line, read at start
  std::chrono::milliseconds request_timeout{2000};  // each range, txn, and a watch's start
  std::chrono::milliseconds heartbeat{1000};        // link check and drift check
  std::chrono::milliseconds max_backoff{5000};      // reconnect delay cap (jittered)
};

class EtcdSync;

struct EtcdStore {
  std::unique_ptr<Store> store;
  std::shared_ptr<EtcdSync> sync;
};

// Reads the prefix from the first endpoint that answers; seeds an empty prefix
// (a transaction that succeeds only while it is still empty, so replicas
// starting together seed once). When no endpoint answers, serves the cache.
// Throws std::runtime_error (InvalidStore for content) with a message that
// says what to do: no etcd and no cache, an invalid seed, an invalid state in
// etcd with no cache to fall back to.
EtcdStore open_etcd_store(const EtcdOptions& options);

// Prometheus text for a shared store's link: figshift_store_connected (1/0),
// figshift_store_revision, figshift_store_seconds_since_sync, figshift_store_refused.
std::string render_remote_store_metrics(const RemoteStatus& status, std::int64_t now_ms);

class EtcdSync {
 public:
  struct Impl;
  explicit EtcdSync(std::shared_ptr<Impl> impl);
  // Watches from the revision read at start (or connects, when started from the cache).
  void start(boost::asio::io_context& control);
  void stop();  // closes the watch and timers; nothing runs afterwards

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace figshift
