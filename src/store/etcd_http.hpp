#pragma once
// HTTP/1.1 to one etcd endpoint's JSON gateway, with Boost.Beast on an
// io_context the caller runs: a one-shot POST (range, txn), and the watch
// stream (a POST whose chunked response never ends; etcd 3.4's gateway
// cannot cancel a watch, so it is stopped by closing its connection).
// Thread-safety: each object lives on the one thread running its io_context.
// Lifetime: both classes are held by shared_ptr; every pending operation
// keeps its object alive (shared_from_this) until its handler has run, and
// every handler is called exactly once.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace figshift::etcd {

struct Endpoint {
  std::string url;  // as configured, for messages
  std::string host;
  std::string port;
  std::string token;  // etcd auth token sent as Authorization ("" without auth)
};
// "http://host:port" (already checked by the config) -> host and port.
std::optional<Endpoint> parse_endpoint(const std::string& url);

struct HttpResult {
  boost::system::error_code error;  // transport failure or timeout
  unsigned status = 0;
  std::string body;
};

// One POST on a new connection; `done` is called once, with an error when the
// deadline (resolve, connect, write and read together) passes first.
class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  using Done = std::function<void(HttpResult)>;
  HttpCall(boost::asio::io_context& ioc, Endpoint endpoint, std::string target, std::string body);
  void start(std::chrono::milliseconds deadline, Done done);
  void cancel();  // done() is then called with operation_aborted

 private:
  void on_resolve(boost::system::error_code ec, boost::asio::ip::tcp::resolver::results_type results);
  void on_connect(boost::system::error_code ec);
  void on_write(boost::system::error_code ec);
  void on_read(boost::system::error_code ec);
  void finish(boost::system::error_code ec);

  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::tcp_stream stream_;
  Endpoint endpoint_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  // A parser, not a message: Beast's default body limit (8 MiB) would refuse a
  // range read of a large prefix; max_message_bytes is set instead.
  boost::beast::http::response_parser<boost::beast::http::string_body> response_;
  boost::beast::flat_buffer buffer_;
  Done done_;
};

// The same POST, run to completion on a private io_context in the calling thread.
HttpResult post_blocking(const Endpoint& endpoint, const std::string& target,
                         const std::string& body, std::chrono::milliseconds deadline);

// The watch stream. `on_line` gets each newline-separated JSON message;
// `on_end` is called once when the stream ends, fails or is closed. The
// connect and the first message have `first_deadline`; after that the stream
// may stay silent for as long as nothing changes (its owner's heartbeat
// decides when it is dead and calls close()).
class WatchStream : public std::enable_shared_from_this<WatchStream> {
 public:
  using OnLine = std::function<void(const std::string&)>;
  using OnEnd = std::function<void(boost::system::error_code, const std::string& why)>;
  WatchStream(boost::asio::io_context& ioc, Endpoint endpoint, std::string body);
  void start(std::chrono::milliseconds first_deadline, OnLine on_line, OnEnd on_end);
  void close();  // on_end is then called with operation_aborted
  void no_more_deadline();  // the stream is established: silence is normal from now on

 private:
  void on_resolve(boost::system::error_code ec, boost::asio::ip::tcp::resolver::results_type results);
  void on_connect(boost::system::error_code ec);
  void on_write(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec);
  void end(boost::system::error_code ec, const std::string& why);

  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::tcp_stream stream_;
  Endpoint endpoint_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  boost::beast::http::response_parser<boost::beast::http::empty_body> parser_;
  boost::beast::flat_buffer buffer_;
  std::function<std::size_t(std::uint64_t, std::string_view, boost::beast::error_code&)> chunk_body_;
  std::string partial_;  // bytes of a message whose newline has not arrived yet
  OnLine on_line_;
  OnEnd on_end_;
  bool ended_ = false;
};

}  // namespace figshift::etcd
