// The embedded `file` backend: one KVS JSON file, replaced atomically so that a
// crash at any moment leaves either the old or the new content, never a mix.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <system_error>

#include "figshift/store/file_backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/store.hpp"
#include "figshift/util/file.hpp"

namespace figshift {
namespace {

std::string read_or_throw(const std::filesystem::path& path) {
  std::error_code error;
  std::optional<std::string> text = read_file(path, error);
  if (!text) throw std::runtime_error(path.string() + ": cannot be read: " + error.message());
  return std::move(*text);
}

void write_all(int fd, const std::string& data, const std::filesystem::path& path) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "write " + path.string());
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// The permission bits of the file at `path`, when it is a regular file.
std::optional<mode_t> existing_mode(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return st.st_mode & 0777;  // never set-id or sticky bits
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the rename itself is already atomic
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

FileBackend::FileBackend(std::filesystem::path path) : path_(std::move(path)) {
  // A crash between writing a temp file and renaming it leaves the temp file
  // behind (the store itself is intact): clear those from earlier runs.
  std::error_code ec;
  const auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  const std::string prefix = "." + path_.filename().string() + ".tmp.";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().filename().string().starts_with(prefix)) std::filesystem::remove(entry.path(), ec);
}

std::string FileBackend::describe() const { return "file " + path_.string(); }

FileBackend::FileId FileBackend::stat_now() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return {};
  return {static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

void FileBackend::remember_stat() { seen_ = stat_now(); }

bool FileBackend::changed() { return stat_now() != seen_; }

std::optional<KvMap> FileBackend::load() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) {
    remember_stat();
    return std::nullopt;
  }
  // Remember what was seen before reading, so an edit racing the read is seen next time.
  remember_stat();
  return parse_kvs_json(read_or_throw(path_));
}

void FileBackend::persist(const KvMap& kv) {
  const std::string text = to_kvs_json(kv);
  const auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(dir);
  // A name nobody can guess, created only if nothing (not even a symlink) is
  // there yet: mkostemp opens with O_CREAT|O_EXCL, so a link planted at a
  // predictable name (the pid used to be the suffix) can no longer redirect
  // the write to another file. It creates the file 0600, whatever the umask.
  std::string tmp_name = (dir / ("." + path_.filename().string() + ".tmp.XXXXXX")).string();
  int fd = ::mkostemp(tmp_name.data(), O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + tmp_name);
  const std::filesystem::path tmp = tmp_name;
  try {
    // The store holds upstream URLs and routes: a new store file is the
    // owner's alone. An existing one keeps the mode its operator gave it (a
    // group that reads it), or every write would silently undo a chmod.
    const mode_t mode = existing_mode(path_).value_or(0600);
    if (::fchmod(fd, mode) != 0)
      throw std::system_error(errno, std::generic_category(), "chmod " + tmp_name);
    write_all(fd, text, tmp);
    if (::fsync(fd) != 0) throw std::system_error(errno, std::generic_category(), "fsync");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "rename to " + path_.string());
  }
  fsync_dir(dir);
  remember_stat();
}

std::unique_ptr<Store> open_store(const std::filesystem::path& path,
                                  const std::filesystem::path& seed) {
  auto backend = std::make_unique<FileBackend>(path);
  std::optional<KvMap> existing;
  try {
    existing = backend->load();
  } catch (const InvalidStore& e) {
    throw InvalidStore(path.string() + ": " + e.what());
  }
  if (existing) {
    try {
      return std::make_unique<Store>(std::move(backend), *existing);
    } catch (const InvalidStore& e) {
      throw InvalidStore(path.string() + ": " + e.what());
    }
  }
  if (seed.empty())
    throw InvalidStore(path.string() + " does not exist and no store.seed is configured");
  KvMap initial;
  try {
    initial = parse_kvs_json(read_or_throw(seed));
  } catch (const std::exception& e) {
    throw InvalidStore("seed " + seed.string() + ": " + e.what());
  }
  std::unique_ptr<Store> store;
  try {
    store = std::make_unique<Store>(std::move(backend), initial);
  } catch (const InvalidStore& e) {
    throw InvalidStore("seed " + seed.string() + ": " + e.what());
  }
  store->backend().persist(initial);
  return store;
}

}  // namespace figshift
