#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "figshift/proxy.hpp"
#include "figshift/telemetry/access_log.hpp"
#include "figshift/telemetry/stats.hpp"
#include "proxy/tls_contexts.hpp"
#include "proxy/worker.hpp"

namespace figshift {

using namespace figshift::proxy;

struct Server::Impl {
  Impl(const Config& c, std::shared_ptr<const Snapshot> initial)
      : config(c),
        upstream_tls(make_upstream_tls_context(config)),
        listener_tls(make_listener_tls_contexts(config)) {
    if (config.access_log.enabled) access_log = std::make_unique<AccessLog>(config.access_log.path);
    for (unsigned i = 0; i < config.workers; ++i)
      workers.push_back(
          std::make_unique<Worker>(i, config, *upstream_tls, initial, access_log.get()));
  }

  Config config;
  std::unique_ptr<asio::ssl::context> upstream_tls;
  std::vector<std::unique_ptr<asio::ssl::context>> listener_tls;  // per listen[i]; null: plain
  std::unique_ptr<AccessLog> access_log;  // outlives the workers (declared before them)
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::condition_variable finished_cv;
  unsigned finished = 0;
};

Server::Server(const Config& config, std::shared_ptr<const Snapshot> initial)
    : impl_(std::make_unique<Impl>(config, std::move(initial))) {}

Server::~Server() {
  for (auto& worker : impl_->workers) worker->stop();
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
}

void Server::start() {
  std::vector<Listener> listeners;
  for (std::size_t i = 0; i < impl_->config.listen.size(); ++i) {
    const auto& listen = impl_->config.listen[i];
    boost::system::error_code ec;
    auto address = asio::ip::make_address(listen.address, ec);
    if (ec)
      throw ConfigError("listen[" + std::to_string(i) + "].address: \"" + listen.address +
                        "\" is not an IP address");
    listeners.push_back({{address, listen.port}, impl_->listener_tls[i].get()});
  }
  // The first worker resolves port 0; the others join its ports through SO_REUSEPORT.
  impl_->workers.front()->listen(listeners);
  const auto bound = impl_->workers.front()->local_endpoints();
  for (std::size_t i = 0; i < listeners.size(); ++i) listeners[i].endpoint = bound[i];
  for (std::size_t i = 1; i < impl_->workers.size(); ++i) impl_->workers[i]->listen(listeners);
  const auto addresses = bound_addresses();
  for (std::size_t i = 0; i < addresses.size(); ++i)
    spdlog::info("listening for traffic on {}{}", addresses[i],
                 listeners[i].tls ? " (TLS)" : "");

  for (auto& worker : impl_->workers) {
    impl_->threads.emplace_back([this, w = worker.get()] {
      w->run();
      std::lock_guard lock(impl_->mutex);
      ++impl_->finished;
      impl_->finished_cv.notify_all();
    });
  }
  spdlog::info("{} worker thread(s) started", impl_->workers.size());
}

std::vector<std::string> Server::bound_addresses() const {
  std::vector<std::string> out;
  for (const auto& endpoint : impl_->workers.front()->local_endpoints()) {
    const auto address = endpoint.address();
    out.push_back((address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
                  std::to_string(endpoint.port()));
  }
  return out;
}

void Server::publish(std::shared_ptr<const Snapshot> snapshot) {
  for (auto& worker : impl_->workers) worker->publish(snapshot);
}

void Server::publish_keys(std::shared_ptr<const JwtKeySet> keys) {
  for (auto& worker : impl_->workers) worker->publish_keys(keys);
}

TrafficStats Server::collect_stats(std::chrono::milliseconds timeout) const {
  std::vector<std::future<TrafficStats>> copies;
  for (const auto& worker : impl_->workers) {
    auto task = std::make_shared<std::packaged_task<TrafficStats()>>(
        [w = worker.get()] { return w->collect(); });
    copies.push_back(task->get_future());
    asio::post(worker->io_context(), [task] { (*task)(); });
  }
  TrafficStats total;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& copy : copies)
    if (copy.wait_until(deadline) == std::future_status::ready) try {
        total.merge(copy.get());
      } catch (const std::future_error&) {  // that worker has already stopped
      }
  if (impl_->access_log) total.access_log_dropped_bytes = impl_->access_log->dropped_bytes();
  return total;
}

void Server::drain() {
  for (auto& worker : impl_->workers) worker->drain();
}

bool Server::join(std::chrono::milliseconds timeout) {
  bool all_finished;
  {
    std::unique_lock lock(impl_->mutex);
    all_finished = impl_->finished_cv.wait_for(
        lock, timeout, [&] { return impl_->finished == impl_->workers.size(); });
  }
  for (auto& worker : impl_->workers) worker->stop();
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
  return all_finished;
}

}  // namespace figshift
