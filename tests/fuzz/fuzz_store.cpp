// The store's input validation on arbitrary bytes:
//  1. the whole input as a KVS import file: parse_kvs_json + build_snapshot
//     either succeed or throw InvalidStore, and what parses round-trips;
//  2. the input read as a batch of writes ("key=value" puts, "-key" deletes,
//     one per line) applied to a Store over an in-memory backend: an invalid,
//     stale or unpersistable write never changes the store; a valid one
//     yields exactly the expected content, ETag and a Snapshot.

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "figshift/store/backend.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/store/store.hpp"
#include "fuzz_support.hpp"

namespace {

using figshift::KvMap;
using figshift::fuzz::as_view;
using figshift::fuzz::split;

class MemoryBackend : public figshift::StoreBackend {
 public:
  explicit MemoryBackend(bool fail_persist) : fail_persist_(fail_persist) {}
  std::optional<KvMap> load() override { return persisted_; }
  void persist(const KvMap& kv) override {
    if (fail_persist_) throw std::runtime_error("injected persist failure");
    persisted_ = kv;
  }
  std::string describe() const override { return "memory"; }
  bool changed() override { return false; }
  const std::optional<KvMap>& persisted() const { return persisted_; }

 private:
  bool fail_persist_;
  std::optional<KvMap> persisted_;
};

const KvMap& seed() {
  static const KvMap kv{
      {"APIGW_A_URL", "http://127.0.0.1:9001"},
      {"APIGW_B1_URL", "https://b1.example.com/prod"},
      {"traffic-split", "25"},
      {"route:/orders", "B1 /v2/orders"},
      {"hash-salt", "s1"},
  };
  return kv;
}

void check_import_file(std::string_view text) {
  KvMap kv;
  try {
    kv = figshift::parse_kvs_json(text);
  } catch (const figshift::InvalidStore& e) {
    FUZZ_CHECK(*e.what() != '\0');
    (void)nlohmann::json{{"error", e.what()}}.dump();  // the admin API's error body
    return;
  }
  // What parses serialises and parses back to the same content, with the same ETag.
  const std::string json = figshift::to_kvs_json(kv);
  FUZZ_CHECK(figshift::parse_kvs_json(json) == kv);
  FUZZ_CHECK(figshift::etag_of(kv) == figshift::etag_of(figshift::parse_kvs_json(json)));
  try {
    const auto snapshot = figshift::build_snapshot(kv, 7, "\"x\"");
    FUZZ_CHECK(snapshot && snapshot->legacy < snapshot->upstreams.size());
    for (const auto& route : snapshot->routes.routes())
      FUZZ_CHECK(route.upstream < snapshot->upstreams.size());
    FUZZ_CHECK(snapshot->split >= 0 && snapshot->split <= 100);
  } catch (const figshift::InvalidStore&) {
  }
}

void check_batch(std::string_view text) {
  // First byte: options; the rest: one write per line.
  const unsigned options = text.empty() ? 0 : static_cast<unsigned char>(text[0]);
  if (!text.empty()) text.remove_prefix(1);
  const bool fail_persist = (options & 1) != 0;
  const bool stale_if_match = (options & 2) != 0;
  const bool current_if_match = (options & 4) != 0;

  figshift::Batch batch;
  for (std::string_view line : split(text, '\n')) {
    if (line.starts_with('-')) {
      batch.deletes.emplace_back(line.substr(1));
    } else {
      const auto eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      batch.puts.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    }
  }

  auto backend_owner = std::make_unique<MemoryBackend>(fail_persist);
  MemoryBackend& backend = *backend_owner;
  figshift::Store store(std::move(backend_owner), seed());
  const KvMap before = store.items();
  const std::string etag_before = store.etag();
  const auto version_before = store.version();
  const auto snapshot_before = store.snapshot();

  std::optional<std::string> if_match;
  if (stale_if_match) if_match = "\"stale\"";
  else if (current_if_match) if_match = etag_before;

  KvMap expected = before;
  for (const auto& key : batch.deletes) expected.erase(key);
  for (const auto& [key, value] : batch.puts) expected[key] = value;

  const figshift::WriteResult result = store.apply(batch, if_match);
  FUZZ_CHECK(result.etag == store.etag());
  if (result.status != figshift::WriteStatus::ok) {
    // A reason, printable: it goes into a log line and a JSON error body.
    FUZZ_CHECK(!result.message.empty());
    for (const char c : result.message)
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    (void)nlohmann::json{{"error", result.message}}.dump();  // throws on invalid UTF-8
    FUZZ_CHECK(store.items() == before);
    FUZZ_CHECK(store.etag() == etag_before);
    FUZZ_CHECK(store.version() == version_before);
    FUZZ_CHECK(store.snapshot() == snapshot_before);
    FUZZ_CHECK(!backend.persisted().has_value());
    if (stale_if_match) FUZZ_CHECK(result.status == figshift::WriteStatus::precondition_failed);
    // An invalid result is one build_snapshot refuses too.
    if (result.status == figshift::WriteStatus::invalid) {
      bool refused = false;
      try {
        figshift::build_snapshot(expected);
      } catch (const figshift::InvalidStore&) {
        refused = true;
      }
      FUZZ_CHECK(refused);
    }
    return;
  }
  FUZZ_CHECK(!stale_if_match);
  FUZZ_CHECK(store.items() == expected);
  FUZZ_CHECK(store.etag() == figshift::etag_of(expected));
  const auto snapshot = store.snapshot();
  FUZZ_CHECK(snapshot && snapshot->etag == store.etag());
  FUZZ_CHECK(snapshot->version == store.version());
  if (expected == before) {
    FUZZ_CHECK(store.version() == version_before);  // a no-op write publishes nothing
  } else {
    FUZZ_CHECK(!fail_persist);
    FUZZ_CHECK(store.version() == version_before + 1);
    FUZZ_CHECK(backend.persisted() == expected);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // refused writes log a warning each
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = as_view(data, size);
  check_import_file(text);
  check_batch(text);
  return 0;
}
