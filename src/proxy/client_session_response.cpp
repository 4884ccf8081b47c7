// The response half of a ClientSession: the proxy's own answers and the
// exchange's response written to the client, the request's counters and
// access log line, and the lingering close that ends a connection. The request
// half is client_session.cpp, the upstream half client_session_upstream.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "figshift/routing.hpp"
#include "figshift/telemetry/access_log.hpp"
#include "proxy/client_session.hpp"
#include "proxy/send_now.hpp"
#include "proxy/worker.hpp"

namespace figshift::proxy {

void ClientSession::respond_error(http::status status, std::string_view message) {
  ++worker_.stats().rejected_requests;
  // After a malformed or refused request the rest of the stream cannot be trusted.
  do_write(json_error(status, message, client_version_ ? client_version_ : 11, false));
}

void ClientSession::write_access_log(AccessLogBuffer& log) {
  AccessRecord record;
  record.connection = id_;
  record.client = client_.ip();
  std::optional<std::string> username;
  auto& x = exchange();
  if (x.request_body_parser || (x.request_parser && x.request_parser->is_header_done())) {
    const auto& request = x.request_head();
    record.method = request.method_string();
    record.target = request.target();
    if (routed_ && worker_.config().access_log.include_username) {
      // The user the request was routed by: the user-key value (#17), or the
      // Basic username; never a token or a password.
      if (routing_->snapshot && routing_->snapshot->user_key.kind != UserKey::Kind::basic) {
        if (!routing_->logged_user.empty()) username = routing_->logged_user;
      } else {
        username = basic_auth_username(field_value(request, http::field::authorization));
      }
    }
  }
  // Status 0: the connection ended before a response began (see close()).
  record.status = response_status_;
  if (routed_) {
    record.upstream = routing_->decision.upstream->name;
    record.group = routing_->decision.group == Group::migrated ? "new" : "legacy";
    record.bucket = routing_->decision.bucket;
  }
  if (username) record.username = *username;
  record.latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - request_started_)
          .count();
  record.bytes = response_bytes_;
  log.write(record);
}

void ClientSession::do_write(Response response) {
  auto& x = exchange();
  const auto& own = x.respond_with(std::move(response));
  x.response_head.clear();
  serialize_head(own, x.response_head);
  do_write_prepared(own.keep_alive());
}

void ClientSession::count_response(unsigned status) {
  response_status_ = status;
  if (!routed_) return;
  const auto status_class = std::clamp(status / 100, 1u, 5u);
  ++routing_->upstream_stats
        ->responses[routing_->decision.group == Group::migrated ? 1 : 0][status_class - 1];
}

void ClientSession::do_write_prepared(bool keep_alive) {
  auto& x = exchange();
  count_response(x.response->result_int());
  response_bytes_ = x.response->body().size();
  close_after_write_ = !keep_alive;
  client_.arm(worker_.config().timeouts.client_write);
  HeadAndBody wire(x.response_head, x.response->body());
  if (error_code ec; send_now(client_.stream(), wire, ec)) return on_write(ec, 0);
  send_rest(client_.stream(), wire,
            beast::bind_front_handler(&ClientSession::on_write, shared_from_this()));
}

void ClientSession::on_write(error_code ec, std::size_t) {
  ec = client_.timed(ec);
  if (ec) return fail(ec, "write response");
  end_exchange();
}

// The response is out: the access log line, then the next request.
void ClientSession::end_exchange() {
  if (auto* log = worker_.access_log()) write_access_log(*log);
  routed_ = false;
  response_status_ = 0;
  response_bytes_ = 0;
  if (routing_) routing_->snapshot.reset();
  // Bytes of a pipelined request stay with this session, in its buffer.
  if (exchange_->read_buffer.size() == 0)
    worker_.exchanges().give(std::move(exchange_));
  else
    exchange_->reset();
  if (close_after_write_)
    return client_.linger(worker_.config().timeouts.client_write,
                          worker_.config().timeouts.client_header, shared_from_this());
  next_request();
}

void ClientSession::fail(error_code ec, const char* what) {
  ++worker_.stats().failures;
  spdlog::debug("conn {}: {}: {}", id_, what, ec.message());
  close();
}

void ClientSession::close() {
  // An exchange that did not end with its response (a failure on either side):
  // logged with the status sent, if any, so that an operator sees it.
  if (routed_) {
    if (auto* log = worker_.access_log()) write_access_log(*log);
    routed_ = false;
  }
  if (routing_) routing_->upstream.abandon();
  client_.close();
}

}  // namespace figshift::proxy
