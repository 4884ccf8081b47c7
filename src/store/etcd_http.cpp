// HTTP to etcd's JSON gateway: one-shot POSTs and the endless watch stream.
#include "store/etcd_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace figshift::etcd {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// A message bigger than this is not a routing store's; refuse it instead of growing forever.
constexpr std::size_t max_message_bytes = 16 * 1024 * 1024;

http::request<http::string_body> post(const Endpoint& endpoint, std::string target,
                                      std::string body) {
  http::request<http::string_body> request{http::verb::post, std::move(target), 11};
  request.set(http::field::host, endpoint.host + ":" + endpoint.port);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::user_agent, "figshift");
  // The gateway passes Authorization on as the "authorization" metadata etcd reads a token from.
  if (!endpoint.token.empty()) request.set(http::field::authorization, endpoint.token);
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

}  // namespace

std::optional<Endpoint> parse_endpoint(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return std::nullopt;
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return Endpoint{url, host, rest.substr(colon + 1), {}};
}

// --- HttpCall ----------------------------------------------------------------

HttpCall::HttpCall(boost::asio::io_context& ioc, Endpoint endpoint, std::string target,
                   std::string body)
    : resolver_(ioc), stream_(ioc), endpoint_(std::move(endpoint)),
      request_(post(endpoint_, std::move(target), std::move(body))) {}

void HttpCall::start(std::chrono::milliseconds deadline, Done done) {
  done_ = std::move(done);
  // One deadline for the whole call: the stream's timer covers connect, write
  // and read; the resolver has none of its own, so a name lookup is bounded by
  // cancelling it from the same timer's budget (stream expiry starts now).
  stream_.expires_after(deadline);
  resolver_.async_resolve(endpoint_.host, endpoint_.port,
                          [self = shared_from_this()](auto ec, auto results) {
                            self->on_resolve(ec, std::move(results));
                          });
}

void HttpCall::cancel() {
  resolver_.cancel();
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

void HttpCall::on_resolve(boost::system::error_code ec, tcp::resolver::results_type results) {
  if (ec) return finish(ec);
  stream_.async_connect(results, [self = shared_from_this()](auto ec, const auto&) {
    self->on_connect(ec);
  });
}

void HttpCall::on_connect(boost::system::error_code ec) {
  if (ec) return finish(ec);
  http::async_write(stream_, request_, [self = shared_from_this()](auto ec, std::size_t) {
    self->on_write(ec);
  });
}

void HttpCall::on_write(boost::system::error_code ec) {
  if (ec) return finish(ec);
  response_.body_limit(max_message_bytes);
  http::async_read(stream_, buffer_, response_, [self = shared_from_this()](auto ec, std::size_t) {
    self->on_read(ec);
  });
}

void HttpCall::on_read(boost::system::error_code ec) { finish(ec); }

void HttpCall::finish(boost::system::error_code ec) {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
  if (!done_) return;
  auto done = std::move(done_);
  done_ = nullptr;
  HttpResult result;
  result.error = ec;
  if (!ec) {
    result.status = response_.get().result_int();
    result.body = std::move(response_.get().body());
  }
  done(std::move(result));
}

HttpResult post_blocking(const Endpoint& endpoint, const std::string& target,
                         const std::string& body, std::chrono::milliseconds deadline) {
  boost::asio::io_context ioc;
  HttpResult out;
  out.error = boost::asio::error::timed_out;
  auto call = std::make_shared<HttpCall>(ioc, endpoint, target, body);
  call->start(deadline, [&out](HttpResult result) { out = std::move(result); });
  // The stream's deadline ends the call; the extra second only guards a
  // resolver that ignores it (getaddrinfo runs on Asio's own thread).
  ioc.run_for(deadline + std::chrono::seconds(1));
  if (!ioc.stopped()) {
    call->cancel();
    ioc.run_for(std::chrono::milliseconds(100));
  }
  return out;
}

// --- WatchStream ---------------------------------------------------------------

WatchStream::WatchStream(boost::asio::io_context& ioc, Endpoint endpoint, std::string body)
    : resolver_(ioc), stream_(ioc), endpoint_(std::move(endpoint)),
      request_(post(endpoint_, "/v3/watch", std::move(body))) {
  parser_.body_limit(boost::none);  // the stream never ends
  // Beast keeps a reference to the callback: it lives in a member beside the parser.
  chunk_body_ = [this](std::uint64_t, std::string_view data, beast::error_code& ec) -> std::size_t {
    partial_.append(data);
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      // A copy: the handler may close() this stream, which drops on_line_.
      if (nl > start && on_line_ && !ended_) {
        const OnLine handler = on_line_;
        handler(partial_.substr(start, nl - start));
      }
    }
    partial_.erase(0, start);
    if (partial_.size() > max_message_bytes) ec = http::error::body_limit;
    return data.size();
  };
  parser_.on_chunk_body(chunk_body_);
}

void WatchStream::start(std::chrono::milliseconds first_deadline, OnLine on_line, OnEnd on_end) {
  on_line_ = std::move(on_line);
  on_end_ = std::move(on_end);
  stream_.expires_after(first_deadline);
  resolver_.async_resolve(endpoint_.host, endpoint_.port,
                          [self = shared_from_this()](auto ec, auto results) {
                            self->on_resolve(ec, std::move(results));
                          });
}

void WatchStream::close() {
  resolver_.cancel();
  beast::error_code ignored;
  stream_.socket().close(ignored);
  end(boost::asio::error::operation_aborted, "closed");
}

void WatchStream::no_more_deadline() { stream_.expires_never(); }

void WatchStream::on_resolve(boost::system::error_code ec, tcp::resolver::results_type results) {
  if (ec) return end(ec, "resolve " + endpoint_.host + ": " + ec.message());
  stream_.async_connect(results, [self = shared_from_this()](auto ec, const auto&) {
    self->on_connect(ec);
  });
}

void WatchStream::on_connect(boost::system::error_code ec) {
  if (ec) return end(ec, "connect: " + ec.message());
  http::async_write(stream_, request_, [self = shared_from_this()](auto ec, std::size_t) {
    self->on_write(ec);
  });
}

void WatchStream::on_write(boost::system::error_code ec) {
  if (ec) return end(ec, "send the watch: " + ec.message());
  http::async_read_header(stream_, buffer_, parser_,
                          [self = shared_from_this()](auto ec, std::size_t) {
                            if (ec) return self->end(ec, "watch response: " + ec.message());
                            const unsigned status = self->parser_.get().result_int();
                            if (status != 200)
                              return self->end(boost::asio::error::connection_refused,
                                               "watch answered HTTP " + std::to_string(status));
                            self->do_read();
                          });
}

void WatchStream::do_read() {
  if (ended_) return;
  http::async_read_some(stream_, buffer_, parser_,
                        [self = shared_from_this()](auto ec, std::size_t) { self->on_read(ec); });
}

void WatchStream::on_read(boost::system::error_code ec) {
  if (ec) return end(ec, ec == beast::error::timeout ? "no watch response in time" : ec.message());
  if (parser_.is_done()) return end(http::error::end_of_stream, "etcd ended the watch stream");
  do_read();
}

void WatchStream::end(boost::system::error_code ec, const std::string& why) {
  if (ended_) return;
  ended_ = true;
  beast::error_code ignored;
  stream_.socket().close(ignored);
  if (auto on_end = std::move(on_end_)) {
    on_end_ = nullptr;
    on_line_ = nullptr;
    on_end(ec, why);
  }
}

}  // namespace figshift::etcd
