#pragma once
// Helpers for the store unit tests: a minimal valid store, a recording fake
// backend (the unit under test is Store, not a backend) and a temp folder.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "figshift/store/backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/store/store.hpp"

namespace figshift::store_test {

// The smallest valid store: the default legacy upstream A.
inline KvMap minimal_store() { return {{"APIGW_A_URL", "http://legacy.example"}}; }

// A, B1 (API Gateway stage), a route and a split.
inline KvMap typical_store() {
  return {{"APIGW_A_URL", "http://legacy.example"},
          {"APIGW_B1_URL", "https://b1.execute-api.eu-west-1.amazonaws.com/prod"},
          {"route:/orders", "B1 /v2/orders"},
          {"traffic-split", "25"}};
}

inline KvMap with(KvMap kv, const std::string& key, const std::string& value) {
  kv[key] = value;
  return kv;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The InvalidStore message for `kv`, or a test failure when it is accepted.
inline std::string rejection(const KvMap& kv) {
  try {
    build_snapshot(kv);
  } catch (const InvalidStore& e) {
    return e.what();
  }
  ADD_FAILURE() << "the store was accepted";
  return {};
}

// Refusals go into log lines, JSON error bodies and terminals: never a raw control byte.
inline void expect_printable(const std::string& message) {
  EXPECT_FALSE(message.empty());
  for (unsigned char c : message)
    EXPECT_TRUE(c >= 0x20 && c != 0x7F) << "byte " << int(c) << " in " << message;
  for (std::size_t i = 0; i + 1 < message.size(); ++i)  // nor a C1 control (C2 80..C2 9F)
    EXPECT_FALSE(message[i] == '\xC2' && static_cast<unsigned char>(message[i + 1]) <= 0x9F)
        << message;
  EXPECT_NO_THROW(((void)nlohmann::json{{"error", message}}.dump())) << message;
}

// Records what the Store asks of its backend.
struct BackendLog {
  std::vector<KvMap> persisted;
  bool fail_persist = false;
  std::optional<KvMap> to_load;
  bool fail_load = false;
  bool changed = false;
};

class FakeBackend : public StoreBackend {
 public:
  explicit FakeBackend(std::shared_ptr<BackendLog> log) : log_(std::move(log)) {}
  std::optional<KvMap> load() override {
    if (log_->fail_load) throw std::runtime_error("fake: unreadable");
    return log_->to_load;
  }
  void persist(const KvMap& kv) override {
    if (log_->fail_persist) throw std::runtime_error("fake: disk full");
    log_->persisted.push_back(kv);
  }
  std::string describe() const override { return "fake backend"; }
  bool changed() override { return log_->changed; }

 private:
  std::shared_ptr<BackendLog> log_;
};

// A fresh folder under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<unsigned> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            ("figshift-unit-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" +
             std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ASSERT_TRUE(out) << "could not write " << path;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace figshift::store_test
