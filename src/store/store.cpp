#include <spdlog/spdlog.h>

#include "figshift/store/backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/store/store.hpp"

namespace figshift {

Store::Store(std::unique_ptr<StoreBackend> backend, const KvMap& initial)
    : backend_(std::move(backend)) {
  kv_ = initial;
  etag_ = etag_of(kv_);
  version_ = 1;
  snapshot_ = build_snapshot(kv_, version_, etag_);
}

std::shared_ptr<const Snapshot> Store::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

KvMap Store::items() const {
  std::lock_guard lock(mutex_);
  return kv_;
}

std::string Store::etag() const {
  std::lock_guard lock(mutex_);
  return etag_;
}

std::uint64_t Store::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

std::uint64_t Store::reload_failures() const {
  std::lock_guard lock(mutex_);
  return reload_failures_;
}

std::uint64_t Store::reload_successes() const {
  std::lock_guard lock(mutex_);
  return reload_successes_;
}

std::uint64_t Store::rejected_writes() const {
  std::lock_guard lock(mutex_);
  return rejected_writes_;
}

void Store::count_reload_failure() {
  std::lock_guard lock(mutex_);
  ++reload_failures_;
}

void Store::subscribe(Listener listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

WriteResult Store::apply(const Batch& batch, const std::optional<std::string>& if_match) {
  std::lock_guard lock(mutex_);
  if (if_match && *if_match != "*" && *if_match != etag_) {
    ++rejected_writes_;
    return {WriteStatus::precondition_failed,
            "If-Match " + *if_match + " does not match the current ETag " + etag_, etag_};
  }
  // A hand edit of the file not yet picked up by the watcher must not be
  // overwritten by a write based on the older content.
  if (backend_->changed()) {
    ++rejected_writes_;
    return {WriteStatus::precondition_failed,
            "the store file changed on disk and has not been reloaded yet; retry", etag_};
  }
  KvMap next = kv_;
  for (const auto& key : batch.deletes) next.erase(key);
  for (const auto& [key, value] : batch.puts) next[key] = value;
  auto result = commit_locked(std::move(next), true);
  if (result.status != WriteStatus::ok) {
    ++rejected_writes_;
    spdlog::warn("store write refused, still serving version {}: {}", version_, result.message);
  }
  return result;
}

WriteResult Store::replace(const KvMap& kv, bool persist) {
  std::lock_guard lock(mutex_);
  auto result = commit_locked(kv, persist);
  if (!persist) {
    if (result.status == WriteStatus::ok)
      ++reload_successes_;
    else
      ++reload_failures_;
  }
  return result;
}

WriteResult Store::commit_locked(KvMap next, bool persist) {
  if (next == kv_) return {WriteStatus::ok, {}, etag_};
  std::string etag = etag_of(next);
  std::shared_ptr<const Snapshot> snapshot;
  try {
    snapshot = build_snapshot(next, version_ + 1, etag);
  } catch (const InvalidStore& e) {
    return {WriteStatus::invalid, e.what(), etag_};
  }
  if (persist) {
    try {
      backend_->persist(next);
    } catch (const StoreConflict& e) {
      return {WriteStatus::precondition_failed, e.what(), etag_};
    } catch (const StoreUnavailable& e) {
      return {WriteStatus::unavailable, e.what(), etag_};
    } catch (const std::exception& e) {
      return {WriteStatus::io_error, std::string("could not persist the store: ") + e.what(),
              etag_};
    }
  }
  kv_ = std::move(next);
  etag_ = std::move(etag);
  ++version_;
  snapshot_ = std::move(snapshot);
  spdlog::info("store version {} published (etag {}, {} keys)", version_, etag_, kv_.size());
  for (const auto& listener : listeners_) listener(snapshot_);
  return {WriteStatus::ok, {}, etag_};
}

WriteResult reload_from_backend(Store& store) {
  std::optional<KvMap> kv;
  try {
    kv = store.backend().load();
  } catch (const std::exception& e) {
    store.count_reload_failure();
    return {WriteStatus::invalid, e.what(), store.etag()};
  }
  if (!kv) {
    store.count_reload_failure();
    return {WriteStatus::invalid, store.backend().describe() + " has disappeared", store.etag()};
  }
  return store.replace(*kv, false);
}

}  // namespace figshift
