#pragma once
// Where a store's content lives: the interface a Store persists through.
// Thread-safety: a backend is not thread-safe; its Store calls it under its
// own mutex, and the store-file watcher calls changed() from the one control
// thread. Lifetime: owned by its Store.

#include <optional>
#include <string>

#include "figshift/store/kv_map.hpp"

namespace figshift {

// Where a store's content lives. `load` returns nullopt when nothing exists yet.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual std::optional<KvMap> load() = 0;    // throws on unreadable/invalid content
  virtual void persist(const KvMap& kv) = 0;  // throws std::runtime_error on I/O failure
  virtual std::string describe() const = 0;
  // True when the content may have changed behind the store's back (a hand edit).
  virtual bool changed() = 0;
};

}  // namespace figshift
