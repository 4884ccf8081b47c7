// The etcd backend: start-up (read, seed, or fall back to the cache) and
// writes, each one etcd transaction conditioned on the revision this replica
// last saw.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>

#include "figshift/store/etcd_backend.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/util/file.hpp"
#include "store/etcd_json.hpp"
#include "store/etcd_state.hpp"

namespace figshift {
namespace etcd {

const char* link_name(Link link) {
  switch (link) {
    case Link::cache: return "cache";
    case Link::connecting: return "connecting";
    case Link::connected: return "connected";
    case Link::disconnected: return "disconnected";
  }
  return "unknown";
}

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Shared::Shared(const EtcdOptions& o) : options(o) {
  for (const auto& url : options.endpoints) {
    auto endpoint = parse_endpoint(url);
    if (!endpoint) throw std::runtime_error("store.endpoints: cannot use \"" + url + "\"");
    endpoints.push_back(std::move(*endpoint));
  }
  if (endpoints.empty()) throw std::runtime_error("store.endpoints: none configured");
  if (!options.cache.empty()) cache.emplace(options.cache);
  if (!options.username.empty()) {
    std::error_code error;
    std::optional<std::string> text = read_file(options.password_file, error);
    if (!text)
      throw std::runtime_error("store.password_file " + options.password_file.string() +
                               ": cannot be read: " + error.message());
    while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
    if (text->empty())
      throw std::runtime_error("store.password_file " + options.password_file.string() + " is empty");
    password = std::move(*text);
    // As the admin token file: a password others can read is worth a warning, not a refusal.
    struct stat st {};
    if (::stat(options.password_file.c_str(), &st) == 0 && (st.st_mode & 044) != 0)
      spdlog::warn("store.password_file: {} is readable by group or others (mode {:03o}); run chmod 600 {}",
                   options.password_file.string(), st.st_mode & 0777, options.password_file.string());
  }
}

Endpoint Shared::current() const {
  Endpoint out = endpoints[endpoint];
  out.token = token;
  return out;
}

bool authenticate_blocking(Shared& shared, const Endpoint& endpoint, std::string& why) {
  if (shared.options.username.empty()) return true;
  const HttpResult r = post_blocking(endpoint, "/v3/auth/authenticate",
                                     auth_request(shared.options.username, shared.password),
                                     shared.options.request_timeout);
  std::string token;
  if (r.error) why = r.error.message();
  else if (r.status != 200) why = "HTTP " + std::to_string(r.status) + " " + error_message(r.body);
  else token = parse_auth(r.body, why);
  if (token.empty()) return false;
  std::lock_guard lock(shared.mutex);
  shared.token = std::move(token);
  return true;
}

RemoteStatus Shared::status() const {
  std::lock_guard lock(mutex);
  return RemoteStatus{link_name(link), endpoints[endpoint].url, revision, last_sync_ms,
                      stale_since_ms, refused, last_error};
}

void Shared::write_cache(const KvMap& kv) {
  if (!cache) return;
  try {
    cache->persist(kv);
  } catch (const std::exception& e) {
    spdlog::warn("etcd store: could not write the cache {}: {}", options.cache.string(), e.what());
  }
}

namespace {

// The backend a Store persists through. persist() runs on the admin thread
// under the Store's mutex and blocks it for at most one request_timeout.
class EtcdBackend : public StoreBackend {
 public:
  explicit EtcdBackend(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  std::optional<KvMap> load() override {
    std::lock_guard lock(shared_->mutex);
    if (shared_->revision == 0) return std::nullopt;
    return shared_->seen;
  }

  void persist(const KvMap& next) override {
    std::string body;
    Endpoint endpoint;
    std::int64_t based_on = 0;
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->link != Link::connected)
        throw StoreUnavailable(
            "etcd is unreachable (" + std::string(link_name(shared_->link)) +
            (shared_->last_error.empty() ? "" : ": " + shared_->last_error) +
            "); writes are refused until it is back, the last good version keeps serving");
      if (write_ops(shared_->seen, next) == 0) return;
      body = write_txn(shared_->options.prefix, shared_->seen, shared_->revision, next);
      endpoint = shared_->current();
      based_on = shared_->revision;
    }
    HttpResult result = post_blocking(endpoint, "/v3/kv/txn", body, shared_->options.request_timeout);
    // An auth token expires when unused (etcd's --auth-token-ttl): get a new one and retry once.
    if (!result.error && result.status == 401 && !shared_->options.username.empty()) {  // invalid auth token
      std::string why;
      if (!authenticate_blocking(*shared_, endpoint, why))
        throw StoreUnavailable("etcd " + endpoint.url + " refused to authenticate user " +
                               shared_->options.username + ": " + why);
      {
        std::lock_guard lock(shared_->mutex);
        endpoint.token = shared_->token;
      }
      result = post_blocking(endpoint, "/v3/kv/txn", body, shared_->options.request_timeout);
    }
    if (result.error)
      throw StoreUnavailable("etcd " + endpoint.url + " did not complete the write (" +
                             result.error.message() +
                             "); if it was applied after all, the watch will show it");
    if (result.status != 200)
      throw StoreUnavailable("etcd " + endpoint.url + " refused the write (HTTP " +
                             std::to_string(result.status) + "): " + error_message(result.body));
    std::string error;
    const TxnResult txn = parse_txn(result.body, error);
    if (!error.empty()) throw StoreUnavailable(error);
    if (!txn.succeeded)
      throw StoreConflict("the store in etcd changed after revision " + std::to_string(based_on) +
                          ", which this write was based on (another replica or tool wrote); "
                          "read it again and retry");
    {
      std::lock_guard lock(shared_->mutex);
      shared_->seen = next;
      shared_->revision = std::max(shared_->revision, txn.revision);
      shared_->refused.clear();
      shared_->write_cache(next);
    }
  }

  std::string describe() const override {
    std::string out = "etcd";
    for (const auto& e : shared_->endpoints) out += " " + e.url;
    return out + " prefix " + shared_->options.prefix;
  }

  bool changed() override { return false; }  // changes arrive through the watch
  std::optional<RemoteStatus> remote_status() const override { return shared_->status(); }

 private:
  std::shared_ptr<Shared> shared_;
};

KvMap read_seed(const std::filesystem::path& seed) {
  std::error_code error;
  const std::optional<std::string> text = read_file(seed, error);
  if (!text) throw InvalidStore("seed " + seed.string() + ": cannot be read: " + error.message());
  try {
    KvMap kv = parse_kvs_json(*text);
    build_snapshot(kv);
    return kv;
  } catch (const InvalidStore& e) {
    throw InvalidStore("seed " + seed.string() + ": " + e.what());
  }
}

// A range read of the prefix; nullopt (and `why`) when this endpoint does not answer.
std::optional<RangeResult> read_prefix(const Shared& shared, const Endpoint& endpoint,
                                       std::string& why) {
  const HttpResult r = post_blocking(endpoint, "/v3/kv/range",
                                     range_request(shared.options.prefix, false),
                                     shared.options.request_timeout);
  if (r.error) {
    why = endpoint.url + ": " + r.error.message();
    return std::nullopt;
  }
  if (r.status != 200) {
    why = endpoint.url + ": HTTP " + std::to_string(r.status) + " " + error_message(r.body);
    return std::nullopt;
  }
  std::string error;
  RangeResult range = parse_range(r.body, shared.options.prefix, error);
  if (!error.empty()) {
    why = endpoint.url + ": " + error;
    return std::nullopt;
  }
  return range;
}

void seed_prefix(const Shared& shared, const Endpoint& endpoint) {
  const KvMap seed = read_seed(shared.options.seed);
  const HttpResult r = post_blocking(endpoint, "/v3/kv/txn", seed_txn(shared.options.prefix, seed),
                                     shared.options.request_timeout);
  std::string error;
  if (r.error) error = r.error.message();
  else if (r.status != 200) error = "HTTP " + std::to_string(r.status) + " " + error_message(r.body);
  const TxnResult txn = error.empty() ? parse_txn(r.body, error) : TxnResult{};
  if (!error.empty())
    throw std::runtime_error("etcd " + endpoint.url + ": could not seed prefix " +
                             shared.options.prefix + ": " + error);
  if (txn.succeeded)
    spdlog::info("etcd store: seeded the empty prefix {} from {} at revision {}",
                 shared.options.prefix, shared.options.seed.string(), txn.revision);
  else
    spdlog::info("etcd store: prefix {} was seeded by another replica meanwhile",
                 shared.options.prefix);
}

std::int64_t mtime_ms(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

EtcdStore from_cache(const std::shared_ptr<Shared>& shared, const std::string& why) {
  const auto& path = shared->options.cache;
  std::optional<KvMap> kv;
  try {
    if (shared->cache) kv = shared->cache->load();
  } catch (const std::exception& e) {
    throw std::runtime_error(why + "; the cache " + path.string() + " is unusable: " + e.what());
  }
  if (!kv)
    throw std::runtime_error(why + " and there is no cache to serve (" +
                             (path.empty() ? std::string("store.cache is not set")
                                           : path.string() + " does not exist") +
                             "): refusing to start");
  std::unique_ptr<Store> store;
  try {
    store = std::make_unique<Store>(std::make_unique<EtcdBackend>(shared), *kv);
  } catch (const InvalidStore& e) {
    throw InvalidStore(why + "; the cache " + path.string() + " is invalid: " + e.what());
  }
  const std::int64_t written = mtime_ms(path);
  {
    std::lock_guard lock(shared->mutex);
    shared->link = Link::cache;
    shared->stale_since_ms = written;
    shared->last_error = why;
  }
  spdlog::warn("etcd store: {}; serving the cache {} (written at Unix ms {}) until etcd answers",
               why, path.string(), written);
  auto sync = std::make_shared<EtcdSync>(make_sync_impl(shared, *store));
  return {std::move(store), std::move(sync)};
}

}  // namespace
}  // namespace etcd

std::string render_remote_store_metrics(const RemoteStatus& status, std::int64_t now_ms) {
  std::string out;
  const auto gauge = [&out](const char* name, const char* help, const std::string& value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           " " + value + "\n";
  };
  gauge("figshift_store_connected", "1 while the shared store (etcd) is reachable and watched",
        status.connection == "connected" ? "1" : "0");
  gauge("figshift_store_revision", "etcd revision of the last content synced",
        std::to_string(status.revision));
  gauge("figshift_store_seconds_since_sync",
        "seconds since the replica last knew it was up to date with etcd (-1: never)",
        status.last_sync_ms > 0 ? std::to_string((now_ms - status.last_sync_ms) / 1000.0) : "-1");
  gauge("figshift_store_refused", "1 while etcd holds a content this replica refuses as invalid",
        status.refused.empty() ? "0" : "1");
  return out;
}

EtcdStore open_etcd_store(const EtcdOptions& options) {
  using namespace etcd;
  auto shared = std::make_shared<Shared>(options);
  std::string why;
  std::optional<RangeResult> range;
  for (std::size_t i = 0; i < shared->endpoints.size() && !range; ++i) {
    std::string failure;
    shared->endpoint = i;
    if (!authenticate_blocking(*shared, shared->endpoints[i], failure)) {
      // Wrong credentials are a configuration error, not an outage: say so now.
      if (failure.starts_with("HTTP "))
        throw std::runtime_error("etcd " + shared->endpoints[i].url + " refused to authenticate user " +
                                 options.username + ": " + failure);
      why += (why.empty() ? "" : "; ") + shared->endpoints[i].url + ": " + failure;
      continue;
    }
    range = read_prefix(*shared, shared->current(), failure);
    if (!range) why += (why.empty() ? "" : "; ") + failure;
  }
  if (!range) return from_cache(shared, "no etcd endpoint answered (" + why + ")");
  const Endpoint endpoint = shared->current();
  if (range->kv.empty()) {
    if (options.seed.empty())
      throw InvalidStore("etcd prefix " + options.prefix + " is empty and no store.seed is set");
    seed_prefix(*shared, endpoint);
    std::string failure;
    range = read_prefix(*shared, endpoint, failure);
    if (!range) throw std::runtime_error("etcd stopped answering after the seed: " + failure);
  }
  std::unique_ptr<Store> store;
  try {
    store = std::make_unique<Store>(std::make_unique<EtcdBackend>(shared), range->kv);
  } catch (const InvalidStore& e) {
    // Refused like any later invalid state: serve the last good content if there is one.
    return from_cache(shared, "the store in etcd (prefix " + options.prefix + ", revision " +
                                  std::to_string(range->revision) + ") is invalid: " + e.what());
  }
  {
    std::lock_guard lock(shared->mutex);
    shared->seen = range->kv;
    shared->revision = range->revision;
    shared->link = Link::connected;
    shared->last_sync_ms = unix_ms_now();
    shared->write_cache(range->kv);
  }
  spdlog::info("etcd store: {} keys under {} at revision {} from {}", range->kv.size(),
               options.prefix, range->revision, endpoint.url);
  auto sync = std::make_shared<EtcdSync>(make_sync_impl(shared, *store));
  return {std::move(store), std::move(sync)};
}

}  // namespace figshift
