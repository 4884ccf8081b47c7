// The etcd sync loop, on the control io_context: a watch from the revision
// last seen, a heartbeat that checks the link and that the watch has not
// fallen behind, full re-reads when the watch cannot continue (compaction,
// cancellation, a revision going backwards), and reconnection with jittered
// backoff over the endpoints. Every state it sees goes through
// Store::replace, validated as a whole like a file reload.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <random>

#include "figshift/store/etcd_backend.hpp"
#include "store/etcd_json.hpp"
#include "store/etcd_state.hpp"

namespace figshift {

struct EtcdSync::Impl : std::enable_shared_from_this<EtcdSync::Impl> {
  Impl(std::shared_ptr<etcd::Shared> shared, Store& store)
      : shared_(std::move(shared)), store_(store), rng_(std::random_device{}()) {}

  void start(boost::asio::io_context& ioc);
  void stop();

 private:
  using Link = etcd::Link;

  etcd::Endpoint endpoint() const;
  void do_resync(const char* why);
  void on_resync(std::uint64_t generation, const etcd::HttpResult& result);
  void do_watch(std::int64_t from);
  void on_watch_line(std::uint64_t generation, const std::string& line);
  void on_watch_end(std::uint64_t generation, const std::string& why);
  void do_heartbeat();
  void on_heartbeat(std::uint64_t generation, const etcd::HttpResult& result);
  void on_connected();
  void on_failure(const std::string& why);
  void do_reconnect();
  void do_authenticate();
  void on_authenticate(std::uint64_t generation, const etcd::HttpResult& result);
  void apply_state(KvMap kv, std::int64_t revision);
  // Drops the watch and pending calls of the current attempt: their handlers become no-ops.
  void reset_attempt();

  std::shared_ptr<etcd::Shared> shared_;
  Store& store_;
  boost::asio::io_context* ioc_ = nullptr;
  std::optional<boost::asio::steady_timer> heartbeat_timer_;
  std::optional<boost::asio::steady_timer> backoff_timer_;
  std::shared_ptr<etcd::WatchStream> watch_;
  std::shared_ptr<etcd::HttpCall> call_;  // the range read or heartbeat in flight
  std::uint64_t generation_ = 0;          // bumped by reset_attempt
  unsigned attempts_ = 0;                 // failures since the last working link
  unsigned drift_checks_ = 0;             // heartbeats in a row that saw etcd ahead of the watch
  bool stopped_ = false;
  std::mt19937 rng_;
};

namespace {

// A result that is a 200 with a parsable body, or the reason it is not.
std::string failure_of(const etcd::HttpResult& r) {
  if (r.error) return r.error.message();
  if (r.status != 200) return "HTTP " + std::to_string(r.status) + " " + etcd::error_message(r.body);
  return {};
}

}  // namespace

std::shared_ptr<EtcdSync::Impl> etcd::make_sync_impl(std::shared_ptr<Shared> shared, Store& store) {
  return std::make_shared<EtcdSync::Impl>(std::move(shared), store);
}

EtcdSync::EtcdSync(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
void EtcdSync::start(boost::asio::io_context& control) { impl_->start(control); }
void EtcdSync::stop() { impl_->stop(); }

void EtcdSync::Impl::start(boost::asio::io_context& ioc) {
  ioc_ = &ioc;
  heartbeat_timer_.emplace(ioc);
  backoff_timer_.emplace(ioc);
  std::int64_t revision = 0;
  {
    std::lock_guard lock(shared_->mutex);
    revision = shared_->revision;
  }
  if (revision > 0)
    do_watch(revision + 1);
  else
    do_reconnect();  // started from the cache: authenticate if needed, then read
}

void EtcdSync::Impl::stop() {
  stopped_ = true;
  reset_attempt();
  if (heartbeat_timer_) heartbeat_timer_->cancel();
  if (backoff_timer_) backoff_timer_->cancel();
}

etcd::Endpoint EtcdSync::Impl::endpoint() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->current();
}

void EtcdSync::Impl::reset_attempt() {
  ++generation_;
  if (auto watch = std::move(watch_)) watch->close();
  if (auto call = std::move(call_)) call->cancel();
  if (heartbeat_timer_) heartbeat_timer_->cancel();
}

void EtcdSync::Impl::do_resync(const char* why) {
  if (stopped_) return;
  reset_attempt();
  spdlog::debug("etcd store: full read of the prefix ({})", why);
  const std::uint64_t generation = generation_;
  call_ = std::make_shared<etcd::HttpCall>(*ioc_, endpoint(), "/v3/kv/range",
                                           etcd::range_request(shared_->options.prefix, false));
  call_->start(shared_->options.request_timeout,
               [self = shared_from_this(), generation](etcd::HttpResult result) {
                 self->on_resync(generation, result);
               });
}

void EtcdSync::Impl::on_resync(std::uint64_t generation, const etcd::HttpResult& result) {
  if (stopped_ || generation != generation_) return;
  call_.reset();
  if (auto why = failure_of(result); !why.empty()) return on_failure("range read: " + why);
  std::string error;
  etcd::RangeResult range = etcd::parse_range(result.body, shared_->options.prefix, error);
  if (!error.empty()) return on_failure(error);
  {
    std::lock_guard lock(shared_->mutex);
    if (range.revision < shared_->revision)
      spdlog::warn("etcd store: etcd's revision went back from {} to {} (a restored cluster?); "
                   "its content is taken as it is now",
                   shared_->revision, range.revision);
    shared_->revision = 0;  // apply_state takes the read as a whole, whatever came before
  }
  apply_state(std::move(range.kv), range.revision);
  do_watch(range.revision + 1);
}

void EtcdSync::Impl::do_watch(std::int64_t from) {
  if (stopped_) return;
  reset_attempt();
  drift_checks_ = 0;
  const std::uint64_t generation = generation_;
  watch_ = std::make_shared<etcd::WatchStream>(*ioc_, endpoint(),
                                               etcd::watch_request(shared_->options.prefix, from));
  auto self = shared_from_this();
  watch_->start(
      shared_->options.request_timeout,
      [self, generation](const std::string& line) { self->on_watch_line(generation, line); },
      [self, generation](boost::system::error_code, const std::string& why) {
        self->on_watch_end(generation, why);
      });
}

void EtcdSync::Impl::on_watch_line(std::uint64_t generation, const std::string& line) {
  if (stopped_ || generation != generation_) return;
  std::string error;
  etcd::WatchMessage message = etcd::parse_watch_line(line, shared_->options.prefix, error);
  if (!error.empty()) return on_failure(error);
  std::int64_t revision = 0;
  KvMap seen;
  {
    std::lock_guard lock(shared_->mutex);
    revision = shared_->revision;
    seen = shared_->seen;
  }
  if (message.compact_revision > 0 || message.canceled) {
    spdlog::warn("etcd store: the watch from revision {} cannot continue ({}{}); reading the "
                 "prefix again",
                 revision + 1,
                 message.compact_revision > 0
                     ? "compacted up to " + std::to_string(message.compact_revision)
                     : std::string("cancelled"),
                 message.cancel_reason.empty() ? "" : ": " + message.cancel_reason);
    return do_resync("watch compacted or cancelled");
  }
  if (message.created) {
    if (message.revision < revision) {
      spdlog::warn("etcd store: etcd is at revision {}, behind the {} this replica saw "
                   "(a restored cluster?); reading the prefix again",
                   message.revision, revision);
      return do_resync("revision went backwards");
    }
    watch_->no_more_deadline();
    on_connected();
    return;
  }
  bool changed = false;
  for (const auto& event : message.events) {
    if (event.mod_revision <= revision) continue;  // already in `seen` (this replica's own write)
    if (event.deleted)
      seen.erase(event.key);
    else
      seen[event.key] = event.value;
    changed = true;
  }
  if (!changed) {
    std::lock_guard lock(shared_->mutex);
    shared_->revision = std::max(shared_->revision, message.revision);
    shared_->last_sync_ms = etcd::unix_ms_now();
    return;
  }
  apply_state(std::move(seen), std::max(revision, message.revision));
}

void EtcdSync::Impl::on_watch_end(std::uint64_t generation, const std::string& why) {
  if (stopped_ || generation != generation_) return;
  watch_.reset();
  on_failure("watch: " + why);
}

void EtcdSync::Impl::apply_state(KvMap kv, std::int64_t revision) {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->seen = kv;
    shared_->revision = std::max(shared_->revision, revision);
    shared_->last_sync_ms = etcd::unix_ms_now();
  }
  const WriteResult result = store_.replace(kv, false);
  const std::uint64_t serving = store_.version();  // before locking: the Store's mutex comes first
  std::lock_guard lock(shared_->mutex);
  if (result.status == WriteStatus::ok) {
    if (!shared_->refused.empty())
      spdlog::info("etcd store: revision {} is valid again", shared_->revision);
    shared_->refused.clear();
    shared_->write_cache(kv);
  } else {
    if (shared_->refused != result.message)
      spdlog::warn("etcd store: the content at revision {} is refused, still serving version {}: {}",
                   revision, serving, result.message);
    shared_->refused = result.message;
  }
}

void EtcdSync::Impl::on_connected() {
  attempts_ = 0;
  Link before;
  {
    std::lock_guard lock(shared_->mutex);
    before = shared_->link;
    shared_->link = Link::connected;
    shared_->stale_since_ms = 0;
    shared_->last_error.clear();
    shared_->last_sync_ms = etcd::unix_ms_now();
  }
  if (before != Link::connected)
    spdlog::info("etcd store: connected to {}, watching from revision {}", endpoint().url,
                 shared_->status().revision + 1);
  heartbeat_timer_->expires_after(shared_->options.heartbeat);
  const std::uint64_t generation = generation_;
  heartbeat_timer_->async_wait([self = shared_from_this(), generation](boost::system::error_code ec) {
    if (!ec && !self->stopped_ && generation == self->generation_) self->do_heartbeat();
  });
}

void EtcdSync::Impl::do_heartbeat() {
  const std::uint64_t generation = generation_;
  call_ = std::make_shared<etcd::HttpCall>(*ioc_, endpoint(), "/v3/kv/range",
                                           etcd::range_request(shared_->options.prefix, true));
  call_->start(shared_->options.request_timeout,
               [self = shared_from_this(), generation](etcd::HttpResult result) {
                 self->on_heartbeat(generation, result);
               });
}

void EtcdSync::Impl::on_heartbeat(std::uint64_t generation, const etcd::HttpResult& result) {
  if (stopped_ || generation != generation_) return;
  call_.reset();
  if (auto why = failure_of(result); !why.empty()) return on_failure("heartbeat: " + why);
  std::string error;
  const etcd::RangeResult keys = etcd::parse_range(result.body, shared_->options.prefix, error);
  if (!error.empty()) return on_failure(error);
  bool behind = false;
  std::int64_t revision = 0;
  {
    std::lock_guard lock(shared_->mutex);
    revision = shared_->revision;
    // The watch should have delivered every change these keys show; one
    // heartbeat may race a change in flight, three in a row may not.
    behind = keys.mod_revision.size() != shared_->seen.size();
    for (const auto& [key, mod] : keys.mod_revision)
      behind = behind || mod > shared_->revision || !shared_->seen.count(key);
  }
  if (keys.revision < revision) return do_resync("revision went backwards");
  drift_checks_ = behind ? drift_checks_ + 1 : 0;
  if (drift_checks_ >= 3) {
    spdlog::warn("etcd store: the watch fell behind etcd (revision {}); reading the prefix again",
                 keys.revision);
    return do_resync("watch behind");
  }
  on_connected();
}

void EtcdSync::Impl::on_failure(const std::string& why) {
  reset_attempt();
  const std::uint64_t serving = store_.version();  // before locking: the Store's mutex comes first
  {
    std::lock_guard lock(shared_->mutex);
    const auto& url = shared_->endpoints[shared_->endpoint].url;
    if (shared_->link == Link::connected) {
      spdlog::warn("etcd store: lost {} ({}); still serving version {}, reconnecting", url, why,
                   serving);
      shared_->stale_since_ms = shared_->last_sync_ms;
      shared_->link = Link::disconnected;
    } else if (attempts_ == 0 || attempts_ % 20 == 0) {
      spdlog::warn("etcd store: {} does not answer ({})", url, why);
    }
    shared_->last_error = url + ": " + why;
    shared_->endpoint = (shared_->endpoint + 1) % shared_->endpoints.size();
    // A new token for the next endpoint (and in case this failure was an expired one).
    shared_->token.clear();
  }
  // Jittered exponential backoff: replicas that lost etcd together do not come back in step.
  const auto cap = shared_->options.max_backoff.count();
  const auto base = std::min<std::int64_t>(cap, 100LL << std::min(attempts_, 10u));
  std::uniform_int_distribution<std::int64_t> jitter(base / 2, base);
  ++attempts_;
  backoff_timer_->expires_after(std::chrono::milliseconds(jitter(rng_)));
  backoff_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->stopped_) self->do_reconnect();
  });
}

void EtcdSync::Impl::do_reconnect() {
  if (!shared_->options.username.empty() && endpoint().token.empty()) return do_authenticate();
  std::int64_t revision = 0;
  {
    std::lock_guard lock(shared_->mutex);
    revision = shared_->revision;
  }
  // Catch up from the last revision seen; a compacted one makes the watch say so (-> re-read).
  if (revision > 0)
    do_watch(revision + 1);
  else
    do_resync("reconnect");
}

void EtcdSync::Impl::do_authenticate() {
  reset_attempt();
  const std::uint64_t generation = generation_;
  call_ = std::make_shared<etcd::HttpCall>(
      *ioc_, endpoint(), "/v3/auth/authenticate",
      etcd::auth_request(shared_->options.username, shared_->password));
  call_->start(shared_->options.request_timeout,
               [self = shared_from_this(), generation](etcd::HttpResult result) {
                 self->on_authenticate(generation, result);
               });
}

void EtcdSync::Impl::on_authenticate(std::uint64_t generation, const etcd::HttpResult& result) {
  if (stopped_ || generation != generation_) return;
  call_.reset();
  if (auto why = failure_of(result); !why.empty()) return on_failure("authenticate: " + why);
  std::string error;
  std::string token = etcd::parse_auth(result.body, error);
  if (!error.empty()) return on_failure(error);
  {
    std::lock_guard lock(shared_->mutex);
    shared_->token = std::move(token);
  }
  do_reconnect();
}

}  // namespace figshift
