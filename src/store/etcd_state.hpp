#pragma once
// What the etcd backend (persist, on the admin thread) and the sync loop (on
// the control thread) share: etcd's content as last seen, its revision, and
// the link's state. Thread-safety: every field is read and written under
// `mutex`; never call into the Store while holding it (the Store calls
// persist() under its own mutex, so the order is always Store, then this).
// Lifetime: held by shared_ptr by both the backend and the sync loop.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "figshift/store/backend.hpp"
#include "figshift/store/etcd_backend.hpp"
#include "figshift/store/file_backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "store/etcd_http.hpp"

namespace figshift::etcd {

enum class Link { cache, connecting, connected, disconnected };
const char* link_name(Link link);
std::int64_t unix_ms_now();

struct Shared {
  explicit Shared(const EtcdOptions& options);

  EtcdOptions options;
  std::vector<Endpoint> endpoints;

  mutable std::mutex mutex;
  KvMap seen;                 // etcd's content at `revision`, valid or not
  std::int64_t revision = 0;  // 0: never read
  std::size_t endpoint = 0;   // index of the endpoint in use
  Link link = Link::connecting;
  std::int64_t last_sync_ms = 0;
  std::int64_t stale_since_ms = 0;
  std::string refused;
  std::string last_error;
  std::optional<FileBackend> cache;
  std::string password;  // from options.password_file (auth only)
  std::string token;     // the current auth token ("": none yet, or auth is off)

  // The endpoint in use, carrying the current token. Call under `mutex`.
  Endpoint current() const;

  RemoteStatus status() const;
  // Writes the accepted content to the cache file; a failure is logged, not fatal.
  void write_cache(const KvMap& kv);
};

// Authenticates at `endpoint` when a username is configured (blocking, for
// start-up and writes); returns false with `why` when etcd refuses or does not answer.
bool authenticate_blocking(Shared& shared, const Endpoint& endpoint, std::string& why);

// The sync loop (etcd_sync.cpp) for a Store opened on `shared`.
std::shared_ptr<EtcdSync::Impl> make_sync_impl(std::shared_ptr<Shared> shared, Store& store);

}  // namespace figshift::etcd
