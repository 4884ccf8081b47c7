// `figshift check-config` and `figshift bucket`: offline answers, no daemon needed.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "figshift/cli.hpp"
#include "figshift/config.hpp"
#include "figshift/identity.hpp"
#include "figshift/proxy.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/util/file.hpp"

namespace figshift::cli {

namespace {

// The etcd backend's block is checked offline: etcd itself is not contacted
// (check-config must work where etcd is down); the seed, when set, is validated.
int check_etcd_store(const Config& config, const std::string& config_path) {
  std::string endpoints;
  for (const auto& e : config.store.endpoints) endpoints += (endpoints.empty() ? "" : ", ") + e;
  std::string seed = "no seed";
  if (!config.store.username.empty()) {
    const std::optional<std::string> password = read_file(config.store.password_file);
    if (!password || password->find_first_not_of("\r\n") == std::string::npos)
      throw ConfigError("store.password_file: " + config.store.password_file.string() +
                        (password ? " is empty" : " cannot be read"));
    endpoints += " as user " + config.store.username;
  }
  if (!config.store.seed.empty()) {
    const std::optional<std::string> text = read_file(config.store.seed);
    if (!text) throw InvalidStore(config.store.seed.string() + ": cannot be read");
    try {
      const auto snapshot = build_snapshot(parse_kvs_json(*text));
      seed = "seed " + config.store.seed.string() + ": " +
             std::to_string(snapshot->upstreams.size()) + " upstreams, " +
             std::to_string(snapshot->routes.routes().size()) + " routes, split " +
             std::to_string(snapshot->split);
    } catch (const InvalidStore& e) {
      throw InvalidStore("seed " + config.store.seed.string() + ": " + e.what());
    }
  }
  std::cout << "config " << config_path << " is valid\n"
            << "  traffic listeners: " << config.listen.size() << ", workers: " << config.workers
            << "\n  store etcd (not contacted) " << endpoints << " prefix " << config.store.prefix
            << "\n  " << seed << "\n  cache "
            << (config.store.cache.empty() ? std::string("none") : config.store.cache.string())
            << "\n";
  return 0;
}

// The JWKS of `jwt.keys_file` (#17) parses as the daemon will load it.
std::string check_jwt_keys(const Config& config) {
  if (!config.jwt) return {};
  JwtKeysFile file(config.jwt->keys_file);
  std::string error;
  const auto keys = file.load(error);
  if (!keys) throw ConfigError("jwt.keys_file: " + error);
  return "  jwt keys " + file.path().string() + ": " + std::to_string(keys->keys.size()) +
         " key(s)\n";
}

}  // namespace

int run_check_config(const std::string& config_path) {
  try {
    const Config config = load_config(config_path);
    check_tls_files(config);
    const std::string jwt_keys = check_jwt_keys(config);
    if (config.store.backend == "etcd") {
      const int status = check_etcd_store(config, config_path);
      std::cout << jwt_keys;
      return status;
    }
    const bool exists = std::filesystem::exists(config.store.path);
    const auto& store_file = exists ? config.store.path : config.store.seed;
    if (store_file.empty()) throw InvalidStore("store.path does not exist and no seed is set");
    const std::optional<std::string> text = read_file(store_file);
    if (!text) throw InvalidStore(store_file.string() + ": cannot be read");
    std::shared_ptr<const Snapshot> snapshot;
    try {
      snapshot = build_snapshot(parse_kvs_json(*text));
    } catch (const InvalidStore& e) {
      throw InvalidStore(store_file.string() + ": " + e.what());
    }
    std::cout << "config " << config_path << " is valid\n"
              << "  traffic listeners: " << config.listen.size() << " ("
              << std::count_if(config.listen.begin(), config.listen.end(),
                               [](const auto& l) { return l.tls.has_value(); })
              << " TLS), workers: " << config.workers << "\n  store ("
              << (exists ? "current" : "seed") << ") " << store_file.string() << ": "
              << snapshot->upstreams.size() << " upstreams, " << snapshot->routes.routes().size()
              << " routes, split " << snapshot->split << "\n"
              << jwt_keys;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "figshift: invalid configuration: " << e.what() << "\n";
    return 1;
  }
}

int run_bucket(const std::string& username, const std::string& salt, int buckets,
               const std::optional<std::string>& split) {
  // Checked before anything is printed: a usage error prints only its reason.
  int threshold = -1;  // in buckets: the split in points (100) or in hundredths (10000)
  if (split) {
    try {
      const int hundredths = parse_traffic_split(*split, buckets);
      threshold = buckets == 100 ? hundredths / 100 : hundredths;
    } catch (const InvalidStore& e) {
      std::cerr << "figshift bucket: --split: " << e.what() << "\n";
      return 2;
    }
  }
  const std::int32_t hash =
      java_hash_code(utf8_to_utf16(username), java_hash_code(utf8_to_utf16(salt)));
  const int bucket = bucket_of_hash(hash, buckets);
  std::cout << "hashCode: " << hash << "\nbucket: " << bucket << " (of " << buckets << ")\n";
  if (threshold >= 0)
    std::cout << "group: " << (bucket < threshold ? "new" : "legacy") << " (split " << *split
              << (buckets == 100 ? ": new when bucket < split)\n"
                                 : ": new when bucket < split x 100)\n");
  return 0;
}

}  // namespace figshift::cli
