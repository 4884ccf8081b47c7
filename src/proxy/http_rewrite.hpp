#pragma once
// Header rewriting between client and upstream (RFC 9110 §7.6).
// Pure functions over Beast messages; no I/O.

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"
#include "proxy/resource_allocator.hpp"

namespace figshift::proxy {

namespace http = boost::beast::http;
// The data path parses messages into their exchange's arena (see Exchange), so
// a proxied request costs no malloc once its worker is warm; messages made
// with a default allocator use the heap.
using Allocator = ResourceAllocator<char>;
using Fields = http::basic_fields<Allocator>;
using Body = http::basic_string_body<char, std::char_traits<char>, Allocator>;
using Request = http::request<Body, Fields>;
using Response = http::response<Body, Fields>;

// A hop-by-hop field (RFC 9110 §7.6.1): Connection, Keep-Alive, Proxy-Connection,
// TE, Trailer, Transfer-Encoding, Upgrade, or one that a Connection field of
// `fields` names. Such fields are never forwarded in either direction.
bool is_hop_by_hop(const Fields& fields, const Fields::value_type& field);

// The first field named `name` in the head's order (where Beast keeps namesakes
// adjacent), or end(). A walk over the few fields of a head costs less than
// Beast's lookup, which spells the name out and descends an ordered index
// comparing case-insensitively; the data path asks about a dozen per request.
Fields::const_iterator first_field(const Fields& fields, http::field name);
// Its value, or "" when absent (as fields[name]).
std::string_view field_value(const Fields& fields, http::field name);

// How a body is delimited on a connection we write (RFC 9112 §6).
struct BodyFraming {
  enum class Kind : std::uint8_t {
    none,         // no body
    length,       // Content-Length: length
    chunked,      // Transfer-Encoding: chunked (re-framed by us)
    until_close,  // the connection's end ends it (a response to an HTTP/1.0 client)
  };
  Kind kind = Kind::none;
  std::uint64_t length = 0;
  static BodyFraming of_length(std::uint64_t n) { return {Kind::length, n}; }
  static BodyFraming chunked() { return {Kind::chunked, 0}; }
};

// The head of the request sent upstream, written straight from the client's
// request into `out` (replaced; its capacity is reused, and no Beast message is
// built per request): method and `target` over HTTP/1.1, Host set to the
// upstream, the client's fields minus hop-by-hop ones, Expect and any
// X-Forwarded-Proto/-Host (replaced by ours), Authorization byte for byte, and
// the body's framing as `body` says (Content-Length of a body read whole or
// streamed with its length; Transfer-Encoding: chunked for one streamed as
// chunks). `upgrade`: a WebSocket handshake, whose Connection: upgrade and
// Upgrade fields are passed on (they are hop-by-hop otherwise).
// Forwarding fields: from a `trusted_peer` (a proxy in `trusted_proxies`) its
// X-Forwarded-For list is extended with `client_ip` and its Forwarded,
// X-Real-IP and X-Forwarded-Port pass on; from anyone else those are removed
// and X-Forwarded-For is `client_ip` alone, so a client cannot forge where
// it comes from.
void write_upstream_head(const http::request_header<Fields>& client, const Upstream& upstream,
                         std::string_view target, std::string_view client_ip,
                         std::string_view client_proto, bool trusted_peer, BodyFraming body,
                         bool upgrade, std::string& out);

// The head of the upstream's response as the client gets it, into `out`
// (replaced): the client's HTTP version, the upstream's status and fields minus
// hop-by-hop ones, the body's framing as `body` says (HEAD and 304 keep the
// upstream's Content-Length, 1xx and 204 have none; a 101 keeps the upstream's
// Upgrade with Connection: upgrade), Connection as `keep_alive` needs, and
// `debug_header: upstream_name` unless the name is empty.
void write_client_head(const http::response_header<Fields>& upstream_response, bool head_request,
                       unsigned client_version, bool keep_alive, BodyFraming body,
                       std::string_view debug_header, std::string_view upstream_name,
                       std::string& out);

// The status line and header fields of one of the proxy's own responses (an
// error, a redirect), appended to `out`. Its body goes after it as is (always
// framed by Content-Length here).
void serialize_head(const Response& response, std::string& out);

// A serialized head and a body as one buffer sequence. Deliberately not a
// std::array: Asio's special case for arrays passes an empty first buffer once
// the head is written, and Beast's TLS flat_stream then writes nothing, which
// ends the write short of the body.
struct HeadAndBody {
  using value_type = boost::asio::const_buffer;
  using const_iterator = const boost::asio::const_buffer*;
  HeadAndBody(std::string_view head, std::string_view body)
      : parts{boost::asio::buffer(head), boost::asio::buffer(body)} {}
  HeadAndBody(boost::asio::const_buffer head, boost::asio::const_buffer body)
      : parts{head, body} {}
  const_iterator begin() const { return parts; }
  const_iterator end() const { return parts + 2; }
  std::size_t size() const { return parts[0].size() + parts[1].size(); }
  // Drops the first `n` bytes (already sent).
  void consume(std::size_t n) {
    for (auto& part : parts) {
      const auto dropped = std::min(n, part.size());
      part += dropped;
      n -= dropped;
    }
  }
  boost::asio::const_buffer parts[2];
};

// An error from Beast's HTTP parser (malformed message), as opposed to an I/O error.
inline bool is_http_error(const boost::system::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

// {"error": message} with the proxy's own status.
Response json_error(http::status status, std::string_view message, unsigned version,
                    bool keep_alive);

}  // namespace figshift::proxy
