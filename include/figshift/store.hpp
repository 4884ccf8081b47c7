#pragma once
// The versioned routing key-value store (DESIGN.md §2) and its validation into
// immutable Snapshots. Thread-safety: Store is safe to call from any thread;
// writes are serialised by one mutex, off the request path. Listeners run on
// the writing thread and must only hand the snapshot over (e.g. post it).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "figshift/routing.hpp"

namespace figshift {

using KvMap = std::map<std::string, std::string>;

// A store content that breaks a rule; what() names the key and the reason.
// The message quotes keys and values as sent, so control bytes (C0, DEL, and
// the two bytes of a C1 control) and bytes that are not UTF-8 are shown as
// \xNN: it goes into logs, terminals and JSON error bodies, and a NUL would
// otherwise end what() where it starts.
struct InvalidStore : std::runtime_error {
  explicit InvalidStore(const std::string& message);
};

// Parses `APIGW_<NAME>_URL` values. Throws InvalidStore.
Upstream parse_upstream_url(std::string name, std::string_view url);

// Validates a whole store content. Throws InvalidStore. Beyond the rules of
// each key: no key or value may hold a control character (C0, DEL, C1), and
// route prefixes and replacement prefixes are URL paths starting with '/'
// (RFC 3986 pchar and '/', %HH escapes well formed, UTF-8 beyond ASCII allowed).
std::shared_ptr<const Snapshot> build_snapshot(const KvMap& kv, std::uint64_t version = 0,
                                               std::string etag = {});

// CloudFront KeyValueStore import file: {"data":[{"key":"…","value":"…"}]}.
KvMap parse_kvs_json(std::string_view text);  // throws InvalidStore
std::string to_kvs_json(const KvMap& kv);     // stable, pretty-printed

// Content hash of a store, quoted as an HTTP entity tag.
std::string etag_of(const KvMap& kv);

struct Batch {
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> deletes;
};

enum class WriteStatus { ok, precondition_failed, invalid, io_error };

struct WriteResult {
  WriteStatus status = WriteStatus::ok;
  std::string message;  // why, for everything but ok
  std::string etag;     // the store's ETag after the call
};

// Where a store's content lives. `load` returns nullopt when nothing exists yet.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual std::optional<KvMap> load() = 0;         // throws on unreadable/invalid content
  virtual void persist(const KvMap& kv) = 0;       // throws std::runtime_error on I/O failure
  virtual std::string describe() const = 0;
  // True when the content may have changed behind the store's back (a hand edit).
  virtual bool changed() = 0;
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

// The embedded `file` backend: a KVS JSON file written atomically
// (temp file, fsync, rename, fsync of the folder). The temp file has a random
// name and is created exclusively (mkostemp), so a symlink planted in the
// folder is never followed. File mode: a new store file is 0600; when the
// store file already exists, the new version keeps its permission bits.
class FileBackend : public StoreBackend {
 public:
  explicit FileBackend(std::filesystem::path path);
  std::optional<KvMap> load() override;
  void persist(const KvMap& kv) override;
  std::string describe() const override;
  const std::filesystem::path& path() const { return path_; }

  // True when the file on disk differs (mtime, size, inode) from what was last loaded or written.
  bool changed() override;

 private:
  void remember_stat();
  std::filesystem::path path_;
  struct FileId {
    std::int64_t mtime_ns = -1;
    std::int64_t size = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileId&) const = default;
  } seen_;
  FileId stat_now() const;
};

// Re-reads the backend (a hand edit, SIGHUP). Unreadable or invalid content is
// refused and counted; the last good version keeps serving.
WriteResult reload_from_backend(Store& store);

// Opens the configured backend, seeding it on first start. Throws on failure.
std::unique_ptr<Store> open_store(const std::filesystem::path& path,
                                  const std::filesystem::path& seed);

}  // namespace figshift
