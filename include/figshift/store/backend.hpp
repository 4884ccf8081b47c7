#pragma once
// Where a store's content lives: the interface a Store persists through.
// Thread-safety: a backend is not thread-safe; its Store calls it under its
// own mutex, and the store-file watcher calls changed() from the one control
// thread. Lifetime: owned by its Store.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "figshift/store/kv_map.hpp"

namespace figshift {

// persist() of a backend shared by many replicas (etcd) refuses a write that
// another writer overtook (-> 412) or that cannot reach the store (-> 503).
struct StoreConflict : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct StoreUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// How a remote backend's link stands, for status and metrics. Times are Unix ms (0: never).
struct RemoteStatus {
  std::string connection;             // "connected", "connecting", "disconnected", "cache"
  std::string endpoint;               // the endpoint in use or last tried
  std::int64_t revision = 0;          // the last revision synced from the store
  std::int64_t last_sync_ms = 0;      // when the replica last knew it was up to date
  std::int64_t stale_since_ms = 0;    // since when it may be behind (0: it is not)
  std::string refused;                // why the store's current content is refused ("" if it is not)
  std::string last_error;
};

// Where a store's content lives. `load` returns nullopt when nothing exists yet.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual std::optional<KvMap> load() = 0;    // throws on unreadable/invalid content
  virtual void persist(const KvMap& kv) = 0;  // throws std::runtime_error on I/O failure
  virtual std::string describe() const = 0;
  // True when the content may have changed behind the store's back (a hand edit).
  virtual bool changed() = 0;
  // A backend many replicas share reports its link; thread-safe, unlike the rest.
  virtual std::optional<RemoteStatus> remote_status() const { return std::nullopt; }
};

}  // namespace figshift
