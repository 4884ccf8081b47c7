#pragma once
// The versioned routing key-value store (docs/design.md §2): validates every
// change into an immutable Snapshot and publishes it. Thread-safety: Store is
// safe to call from any thread; writes are serialised by one mutex, off the
// request path. Listeners run on the writing thread and must only hand the
// snapshot over (e.g. post it). Lifetime: a Snapshot stays valid as long as a
// shared_ptr to it is held, whatever the Store publishes meanwhile.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "figshift/routing.hpp"
#include "figshift/store/backend.hpp"
#include "figshift/store/kv_map.hpp"

namespace figshift {

struct Batch {
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> deletes;
};

enum class WriteStatus { ok, precondition_failed, invalid, io_error, unavailable };

struct WriteResult {
  WriteStatus status = WriteStatus::ok;
  std::string message;  // why, for everything but ok
  std::string etag;     // the store's ETag after the call
};

class Store {
 public:
  using Listener = std::function<void(const std::shared_ptr<const Snapshot>&)>;

  // Takes `initial` as the first content (validated: throws InvalidStore).
  Store(std::unique_ptr<StoreBackend> backend, const KvMap& initial);

  std::shared_ptr<const Snapshot> snapshot() const;
  KvMap items() const;
  std::string etag() const;
  std::uint64_t version() const;

  // Validates the result as a whole, persists, then publishes; on any failure nothing changes.
  WriteResult apply(const Batch& batch, const std::optional<std::string>& if_match = {});
  // Replaces the whole content (e.g. a file edited by hand). Invalid -> nothing changes.
  WriteResult replace(const KvMap& kv, bool persist);

  void subscribe(Listener listener);

  std::uint64_t reload_failures() const;
  std::uint64_t reload_successes() const;
  void count_reload_failure();
  std::uint64_t rejected_writes() const;  // apply() calls refused as invalid or stale
  StoreBackend& backend() { return *backend_; }

 private:
  WriteResult commit_locked(KvMap next, bool persist);

  mutable std::mutex mutex_;
  std::unique_ptr<StoreBackend> backend_;
  KvMap kv_;
  std::string etag_;
  std::uint64_t version_ = 0;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<Listener> listeners_;
  std::uint64_t reload_failures_ = 0;
  std::uint64_t reload_successes_ = 0;
  std::uint64_t rejected_writes_ = 0;
};

// Re-reads the backend (a hand edit, SIGHUP). Unreadable or invalid content is
// refused and counted; the last good version keeps serving.
WriteResult reload_from_backend(Store& store);

}  // namespace figshift
