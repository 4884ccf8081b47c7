#pragma once
// The embedded `file` backend (one KVS JSON file, replaced atomically) and
// open_store, which opens it and seeds it on first start. Thread-safety: as
// every StoreBackend, not thread-safe: its Store serialises the calls.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "figshift/store/backend.hpp"
#include "figshift/store/store.hpp"

namespace figshift {

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

// Opens the store file at `path` (a FileBackend), seeding it from the KVS
// import file `seed` when it does not exist yet. Throws on failure:
// InvalidStore, naming the file, for content that breaks a rule.
std::unique_ptr<Store> open_store(const std::filesystem::path& path,
                                  const std::filesystem::path& seed);

}  // namespace figshift
