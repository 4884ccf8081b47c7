// FileBackend, open_store and reload_from_backend on real files in a temp folder.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "figshift/store/file_backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/store.hpp"
#include "store_test_support.hpp"

namespace figshift {
namespace {

namespace fs = std::filesystem;
using store_test::contains;
using store_test::read_text;
using store_test::TempDir;
using store_test::typical_store;
using store_test::write_text;

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A hand edit: rewritten in place with a different size, so that the change
// is visible even where mtime is coarse.
void hand_edit(const fs::path& path, KvMap kv, const std::string& padding_key = "hash-salt") {
  kv[padding_key] += "-edited-by-hand-" + std::to_string(read_text(path).size());
  write_text(path, to_kvs_json(kv));
}

TEST(StoreFileBackend, LoadOfAMissingFileIsNothing) {
  TempDir dir;
  FileBackend backend(dir / "kvs.json");
  EXPECT_EQ(backend.load(), std::nullopt);
  EXPECT_FALSE(backend.changed());
  EXPECT_TRUE(contains(backend.describe(), (dir / "kvs.json").string())) << backend.describe();
}

TEST(StoreFileBackend, PersistWritesKvsJsonThatLoadReadsBack) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  backend.persist(typical_store());
  ASSERT_TRUE(fs::exists(path));
  const std::string text = read_text(path);
  EXPECT_EQ(parse_kvs_json(text), typical_store());  // a valid KVS import file
  EXPECT_TRUE(nlohmann::json::parse(text).contains("data"));
  EXPECT_EQ(backend.load(), std::optional<KvMap>(typical_store()));
  // A second backend (another process) reads the same.
  FileBackend other(path);
  EXPECT_EQ(other.load(), std::optional<KvMap>(typical_store()));
}

TEST(StoreFileBackend, PersistLeavesNoTempFileBehind) {
  TempDir dir;
  FileBackend backend(dir / "kvs.json");
  backend.persist(typical_store());
  KvMap next = typical_store();
  next["traffic-split"] = "99";
  backend.persist(next);  // replacing an existing file
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"kvs.json"});
  EXPECT_EQ(parse_kvs_json(read_text(dir / "kvs.json")), next);
}

TEST(StoreFileBackend, PersistCreatesMissingFolders) {
  TempDir dir;
  const auto path = dir / "var" / "lib" / "kvs.json";
  FileBackend backend(path);
  backend.persist(typical_store());
  EXPECT_EQ(parse_kvs_json(read_text(path)), typical_store());
}

TEST(StoreFileBackend, PersistFailureThrowsAndLeavesNoTempFile) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  backend.persist(typical_store());
  // The target is a non-empty folder, so the rename must fail.
  const auto blocked = dir / "blocked";
  fs::create_directories(blocked / "inside");
  FileBackend broken(blocked);
  EXPECT_THROW(broken.persist(typical_store()), std::exception);
  EXPECT_TRUE(fs::is_directory(blocked));
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"blocked", "kvs.json"}));
}

TEST(StoreFileBackend, ChangedOnlyAfterAnEditBehindItsBack) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  backend.persist(typical_store());
  EXPECT_FALSE(backend.changed());
  EXPECT_FALSE(backend.changed());  // asking does not change the answer

  hand_edit(path, typical_store());
  EXPECT_TRUE(backend.changed());
  EXPECT_TRUE(backend.changed());  // still true until reloaded

  auto loaded = backend.load();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_NE(*loaded, typical_store());
  EXPECT_FALSE(backend.changed());

  backend.persist(typical_store());
  EXPECT_FALSE(backend.changed());
}

TEST(StoreFileBackend, ChangedWhenTheFileIsReplacedOrRemoved) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  backend.persist(typical_store());
  ASSERT_FALSE(backend.changed());
  // Another writer's atomic replace: a new inode (and here a new size too).
  FileBackend writer(path);
  KvMap next = typical_store();
  next["hash-salt"] = "another writer";
  writer.persist(next);
  EXPECT_TRUE(backend.changed());
  ASSERT_EQ(backend.load(), std::optional<KvMap>(next));
  EXPECT_FALSE(backend.changed());

  fs::remove(path);
  EXPECT_TRUE(backend.changed());
}

TEST(StoreFileBackend, ChangedWhenAMissingFileAppears) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  ASSERT_EQ(backend.load(), std::nullopt);
  EXPECT_FALSE(backend.changed());
  write_text(path, to_kvs_json(typical_store()));
  EXPECT_TRUE(backend.changed());
}

TEST(StoreFileBackend, LoadOfAnInvalidFileThrows) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, "{\"data\": [");
  FileBackend backend(path);
  EXPECT_THROW(backend.load(), std::exception);
}

// ---- finding 7: the temp file, symlinks and file modes ----------------------

// The temp name the backend used to write: predictable from the pid alone.
fs::path old_temp_name(const fs::path& store) {
  return store.parent_path() /
         ("." + store.filename().string() + ".tmp." + std::to_string(::getpid()));
}

fs::perms mode_of(const fs::path& path) {
  return fs::status(path).permissions() & fs::perms::mask;
}

// Sets the process umask for one scope (the unit tests are one process).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

TEST(StoreFileBackend, PersistDoesNotFollowASymlinkAtTheOldTempName) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);  // clears leftovers: plant the link after it
  backend.persist(typical_store());
  const auto victim = dir / "victim";
  write_text(victim, "do not touch\n");
  fs::create_symlink(victim, old_temp_name(path));
  KvMap next = typical_store();
  next["traffic-split"] = "77";
  backend.persist(next);
  EXPECT_EQ(read_text(victim), "do not touch\n");
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(parse_kvs_json(read_text(path)), next);
}

TEST(StoreFileBackend, PersistDoesNotCreateTheTargetOfADanglingSymlink) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  FileBackend backend(path);
  const auto target = dir / "created-through-the-link";
  fs::create_symlink(target, old_temp_name(path));
  backend.persist(typical_store());
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(parse_kvs_json(read_text(path)), typical_store());
}

TEST(StoreFileBackend, ANewStoreFileIsReadableByItsOwnerOnly) {
  for (const mode_t mask : {mode_t{022}, mode_t{0}, mode_t{077}}) {
    ScopedUmask umask(mask);
    TempDir dir;
    const auto path = dir / "kvs.json";
    FileBackend backend(path);
    backend.persist(typical_store());
    EXPECT_EQ(mode_of(path), fs::perms::owner_read | fs::perms::owner_write) << "umask " << mask;
  }
}

TEST(StoreFileBackend, AnExistingStoreFileKeepsItsMode) {
  ScopedUmask umask(077);
  for (const auto mode : {fs::perms(0640), fs::perms(0644), fs::perms(0600), fs::perms(0660)}) {
    TempDir dir;
    const auto path = dir / "kvs.json";
    write_text(path, to_kvs_json(typical_store()));
    fs::permissions(path, mode);
    FileBackend backend(path);
    KvMap next = typical_store();
    next["traffic-split"] = "5";
    backend.persist(next);
    EXPECT_EQ(mode_of(path), mode);
    EXPECT_EQ(parse_kvs_json(read_text(path)), next);
  }
}

TEST(StoreFileBackend, LeftoverTempFilesAreClearedAtStart) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(dir / ".kvs.json.tmp.123", "half");
  write_text(dir / ".kvs.json.tmp.aB3xYz", "half");
  write_text(dir / "other.json", "{}");
  FileBackend backend(path);
  backend.persist(typical_store());
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"kvs.json", "other.json"}));
}

TEST(StoreOpenStore, SeedsFromTheSeedFileWhenPathIsMissing) {
  TempDir dir;
  const auto path = dir / "var" / "kvs.json";
  const auto seed = dir / "seed.json";
  write_text(seed, to_kvs_json(typical_store()));
  auto store = open_store(path, seed);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->items(), typical_store());
  EXPECT_EQ(store->snapshot()->split, 25);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(parse_kvs_json(read_text(path)), typical_store());
  EXPECT_EQ(read_text(seed), to_kvs_json(typical_store()));  // the seed is left alone
  EXPECT_FALSE(store->backend().changed());
}

TEST(StoreOpenStore, ExistingPathWinsOverTheSeed) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  const auto seed = dir / "seed.json";
  KvMap existing = typical_store();
  existing["traffic-split"] = "75";
  write_text(path, to_kvs_json(existing));
  write_text(seed, to_kvs_json(typical_store()));
  auto store = open_store(path, seed);
  EXPECT_EQ(store->items(), existing);
  EXPECT_EQ(store->snapshot()->split, 75);
  EXPECT_EQ(parse_kvs_json(read_text(path)), existing);
}

TEST(StoreOpenStore, ExistingPathNeedsNoSeed) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, to_kvs_json(typical_store()));
  EXPECT_EQ(open_store(path, {})->items(), typical_store());
}

TEST(StoreOpenStore, InvalidExistingFileThrowsNamingThePath) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  const auto seed = dir / "seed.json";
  write_text(seed, to_kvs_json(typical_store()));
  for (const std::string text : {std::string("not json"), std::string(R"({"data":{}})"),
                                 to_kvs_json({{"traffic-split", "5"}}),  // no upstream A
                                 to_kvs_json(store_test::with(typical_store(), "mode", "x"))}) {
    write_text(path, text);
    try {
      open_store(path, seed);
      ADD_FAILURE() << "accepted " << text;
    } catch (const InvalidStore& e) {
      EXPECT_TRUE(contains(e.what(), path.string())) << e.what();
    }
    EXPECT_EQ(read_text(path), text);  // neither reseeded nor rewritten
  }
}

TEST(StoreOpenStore, MissingPathWithoutSeedThrows) {
  TempDir dir;
  EXPECT_THROW(open_store(dir / "kvs.json", {}), std::exception);
  EXPECT_FALSE(fs::exists(dir / "kvs.json"));
}

TEST(StoreOpenStore, MissingOrInvalidSeedThrowsNamingTheSeed) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  const auto seed = dir / "seed.json";
  for (const std::optional<std::string> text :
       {std::optional<std::string>(), std::optional<std::string>("{"),
        std::optional<std::string>(to_kvs_json({{"route:/x", "B1"}}))}) {
    if (text)
      write_text(seed, *text);
    else
      fs::remove(seed);
    try {
      open_store(path, seed);
      ADD_FAILURE() << "accepted seed " << text.value_or("<missing>");
    } catch (const std::exception& e) {
      EXPECT_TRUE(contains(e.what(), seed.string())) << e.what();
    }
    EXPECT_FALSE(fs::exists(path));
  }
}

TEST(StoreOpenStore, WritesGoToTheFile) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, to_kvs_json(typical_store()));
  auto store = open_store(path, {});
  Batch batch;
  batch.puts = {{"traffic-split", "42"}};
  ASSERT_EQ(store->apply(batch).status, WriteStatus::ok);
  EXPECT_EQ(parse_kvs_json(read_text(path)).at("traffic-split"), "42");
  EXPECT_FALSE(store->backend().changed());  // its own write is not an edit
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"kvs.json"});
}

TEST(StoreReload, HandEditIsPickedUp) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, to_kvs_json(typical_store()));
  auto store = open_store(path, {});
  KvMap edited = typical_store();
  edited["traffic-split"] = "100";
  edited["hash-salt"] = "hand";
  write_text(path, to_kvs_json(edited));
  ASSERT_TRUE(store->backend().changed());
  const WriteResult r = reload_from_backend(*store);
  ASSERT_EQ(r.status, WriteStatus::ok) << r.message;
  EXPECT_EQ(store->items(), edited);
  EXPECT_EQ(store->snapshot()->split, 100);
  EXPECT_EQ(store->reload_successes(), 1u);
  EXPECT_FALSE(store->backend().changed());
  EXPECT_EQ(read_text(path), to_kvs_json(edited));
}

TEST(StoreReload, BrokenFileIsRefusedAndTheOldContentKeepsServing) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, to_kvs_json(typical_store()));
  auto store = open_store(path, {});
  const auto etag = store->etag();
  const auto snapshot = store->snapshot();

  const std::vector<std::string> broken = {
      "{\"data\": [ {\"key\": \"traffic-split\"",                      // truncated JSON
      to_kvs_json(store_test::with(typical_store(), "traffic-split", "150")),  // invalid store
  };
  std::uint64_t failures = 0;
  for (const auto& text : broken) {
    write_text(path, text);
    ASSERT_TRUE(store->backend().changed());
    const WriteResult r = reload_from_backend(*store);
    EXPECT_EQ(r.status, WriteStatus::invalid) << text;
    EXPECT_FALSE(r.message.empty());
    EXPECT_EQ(r.etag, etag);
    EXPECT_EQ(store->reload_failures(), ++failures);
    EXPECT_EQ(store->reload_successes(), 0u);
    EXPECT_EQ(store->items(), typical_store());
    EXPECT_EQ(store->etag(), etag);
    EXPECT_EQ(store->snapshot(), snapshot);
    EXPECT_EQ(read_text(path), text);  // the operator's file is not overwritten
  }

  // Fixing the file is picked up again.
  hand_edit(path, typical_store());
  EXPECT_EQ(reload_from_backend(*store).status, WriteStatus::ok);
  EXPECT_EQ(store->reload_successes(), 1u);
}

TEST(StoreReload, DeletedFileIsRefused) {
  TempDir dir;
  const auto path = dir / "kvs.json";
  write_text(path, to_kvs_json(typical_store()));
  auto store = open_store(path, {});
  fs::remove(path);
  EXPECT_EQ(reload_from_backend(*store).status, WriteStatus::invalid);
  EXPECT_EQ(store->reload_failures(), 1u);
  EXPECT_EQ(store->items(), typical_store());
}

}  // namespace
}  // namespace figshift
