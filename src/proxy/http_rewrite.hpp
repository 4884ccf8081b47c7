#pragma once
// Header rewriting between client and upstream (RFC 9110 §7.6).
// Pure functions over Beast messages; no I/O.

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift::proxy {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Removes Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade and every header the Connection header names.
void remove_hop_by_hop(http::fields& fields);

// The request sent upstream: client headers minus hop-by-hop, Host set to the
// upstream, X-Forwarded-* added, Authorization untouched, body moved.
void make_upstream_request(Request& client, Request& out, const Upstream& upstream,
                           std::string target, std::string_view client_ip,
                           std::string_view client_proto);

// The upstream's response made fit for the client.
void make_client_response(Response& res, bool head_request, unsigned client_version,
                          bool keep_alive, std::string_view debug_header,
                          std::string_view upstream_name);

// The start line and header fields of a message, as they go on the wire,
// appended to `out` (reused across requests, so no allocation once grown).
// Replaces Beast's generic serializer on the hot path; bodies are written
// after it as they are (always framed by Content-Length here).
void serialize_head(const Request& request, std::string& out);
void serialize_head(const Response& response, std::string& out);

// A serialized head and a body as one buffer sequence. Deliberately not a
// std::array: Asio's special case for arrays passes an empty first buffer once
// the head is written, and Beast's TLS flat_stream then writes nothing, which
// ends the write short of the body.
struct HeadAndBody {
  using value_type = boost::asio::const_buffer;
  using const_iterator = const boost::asio::const_buffer*;
  HeadAndBody(const std::string& head, const std::string& body)
      : parts{boost::asio::buffer(head), boost::asio::buffer(body)} {}
  const_iterator begin() const { return parts; }
  const_iterator end() const { return parts + 2; }
  boost::asio::const_buffer parts[2];
};

// {"error": message} with the proxy's own status.
Response json_error(http::status status, std::string_view message, unsigned version,
                    bool keep_alive);

}  // namespace figshift::proxy
