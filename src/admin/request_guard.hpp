#pragma once
// What the admin listener checks on a request's head, before it reads a body or
// runs a route: the Host (against DNS rebinding), the Origin (against
// cross-site requests), the bearer token, and a POST's Content-Type (against
// the "simple" cross-site form and fetch posts that need no CORS preflight).
// Pure functions, free of sockets; thread-safe.

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace figshift::admin {

// The host part of a Host header value, without the port: "[::1]:9901" -> "::1",
// "Example.com:80" -> "Example.com", "10.0.0.1" -> "10.0.0.1". nullopt when
// malformed: empty, an unterminated bracket, a non-numeric port, or a colon
// outside brackets (an IPv6 address must be bracketed).
std::optional<std::string_view> host_part(std::string_view host_header);

// Who the admin API answers to.
struct HostPolicy {
  boost::asio::ip::address listener;       // the bound address
  std::vector<std::string> allowed_names;  // admin.allowed_hosts, lower case
};

// Whether `host` (from host_part) names this listener in a way DNS cannot
// rebind: an IP literal equal to the listener's address (any IP literal when
// it listens on 0.0.0.0 or ::), "localhost", or a configured name; names
// compare case-insensitively.
bool host_allowed(std::string_view host, const HostPolicy& policy);

// Whether an Origin header is the origin of a page served by this listener
// under `host_header`: exactly "http://" + the Host value (case-insensitive).
// "null" and every other origin are foreign.
bool same_origin(std::string_view origin, std::string_view host_header);

// Whether a Content-Type value's media type is application/json (parameters
// such as "; charset=utf-8" allowed, case-insensitive, surrounding blanks ignored).
bool is_json_media_type(std::string_view content_type);

// What the guard needs from a request head. Counts are of header lines, so a
// repeated header cannot hide a second value behind the first.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  unsigned version = 11;  // 10 or 11
  int host_count = 0;
  std::string_view host;
  int origin_count = 0;
  std::string_view origin;
  std::string_view authorization;
  int content_type_count = 0;
  std::string_view content_type;
  bool has_body = false;  // a Content-Length above 0, or chunked
};

struct Refusal {
  unsigned status = 0;  // 400, 401, 403 or 415
  std::string message;  // for the client's {"error": ...}
  std::string reason;   // for the log line; never holds the token
};

// The path of a request-target, without the query.
std::string_view path_of(std::string_view target);

// Health probes come from load balancers and orchestrators with whatever Host
// they were configured with, and reveal nothing: exempt from every check.
bool is_health_path(std::string_view path);

// Routes served without the token: the health probes and the dashboard page.
bool needs_token(std::string_view method, std::string_view path);

// nullopt: the request may proceed (its body may be read). Otherwise the answer
// to send instead; checks run in the order Host, Origin, token, Content-Type.
std::optional<Refusal> check_head(const RequestHead& head, const HostPolicy& policy,
                                  std::string_view token);

// `text` with bytes outside printable ASCII replaced by '?' and cut to `max`
// bytes: client-chosen values quoted in log lines.
std::string printable(std::string_view text, std::size_t max = 100);

}  // namespace figshift::admin
