#include "admin/request_guard.hpp"

#include <algorithm>
#include <cctype>

#include "figshift/admin.hpp"

namespace figshift::admin {
namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_port(std::string_view port) {
  // RFC 3986 §3.2.3 allows an empty port ("host:"); more than 5 digits is no port.
  return port.size() <= 5 &&
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Refusal refuse(unsigned status, std::string message) {
  Refusal r{status, std::move(message), {}};
  r.reason = r.message;
  return r;
}

}  // namespace

std::optional<std::string_view> host_part(std::string_view host_header) {
  if (host_header.empty()) return std::nullopt;
  if (host_header.front() == '[') {
    const auto close = host_header.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    const auto after = host_header.substr(close + 1);
    if (!after.empty() && (after.front() != ':' || !valid_port(after.substr(1))))
      return std::nullopt;
    return host_header.substr(1, close - 1);
  }
  const auto colon = host_header.find(':');
  const auto host = host_header.substr(0, colon);
  if (host.empty()) return std::nullopt;
  if (colon != std::string_view::npos && !valid_port(host_header.substr(colon + 1)))
    return std::nullopt;  // also a second colon: an unbracketed IPv6 address
  return host;
}

bool host_allowed(std::string_view host, const HostPolicy& policy) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (!ec) {
    // A browser only sends an IP literal when the page's URL held it: no DNS
    // answer can put it there, so rebinding cannot reach the listener this way.
    return policy.listener.is_unspecified() || address == policy.listener;
  }
  if (iequals(host, "localhost")) return true;  // resolved by the machine, not by DNS
  return std::any_of(policy.allowed_names.begin(), policy.allowed_names.end(),
                     [&](const std::string& name) { return iequals(host, name); });
}

bool same_origin(std::string_view origin, std::string_view host_header) {
  constexpr std::string_view scheme = "http://";
  return !host_header.empty() && origin.size() == scheme.size() + host_header.size() &&
         iequals(origin.substr(0, scheme.size()), scheme) &&
         iequals(origin.substr(scheme.size()), host_header);
}

bool is_json_media_type(std::string_view content_type) {
  return iequals(trim_blanks(content_type.substr(0, content_type.find(';'))), "application/json");
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool is_health_path(std::string_view path) {
  return path == "/healthz" || path == "/readyz";
}

bool needs_token(std::string_view method, std::string_view path) {
  if (is_health_path(path)) return false;
  // The dashboard page carries no data; everything it fetches needs the token.
  return !(path == "/" && method == "GET");
}

std::optional<Refusal> check_head(const RequestHead& head, const HostPolicy& policy,
                                  std::string_view token) {
  const auto path = path_of(head.target);
  const bool health = is_health_path(path);
  if (health && (head.method == "GET" || head.method == "HEAD")) return std::nullopt;

  // Host: a page whose name an attacker re-pointed at this address (DNS
  // rebinding) is same-origin to the browser, so only the name it sends tells.
  if (head.host_count > 1) return refuse(400, "more than one Host header");
  if (head.host_count == 0) {
    if (head.version >= 11) return refuse(400, "missing Host header");
  } else {
    const auto host = host_part(head.host);
    if (!host) return refuse(400, "invalid Host header \"" + printable(head.host) + "\"");
    if (!host_allowed(*host, policy))
      return refuse(403, "Host \"" + printable(*host) +
                             "\" is not allowed: use the admin listener's IP address or "
                             "localhost, or add the name to admin.allowed_hosts");
  }
  if (health) return std::nullopt;  // another method: answered 405 without the token

  // Origin: browsers send it on every cross-origin request and on same-origin
  // non-GET ones; any origin but the listener's own is another site's page.
  if (head.origin_count > 1)
    return refuse(403, "cross-origin request refused: more than one Origin");
  if (head.origin_count == 1 && !same_origin(head.origin, head.host))
    return refuse(403, "cross-origin request refused: Origin \"" + printable(head.origin) +
                           "\" is not this admin API's origin");

  if (!token.empty() && needs_token(head.method, path) &&
      !bearer_matches(head.authorization, token)) {
    Refusal r{401, "unauthorized", "missing or wrong bearer token"};
    return r;
  }

  // A browser posts text/plain, form-urlencoded or multipart to any site without
  // a CORS preflight; application/json needs one, which this server never grants.
  // PUT and DELETE always need a preflight, so their bodies stay free.
  if (head.method == "POST" && (head.has_body || head.content_type_count > 0)) {
    if (head.content_type_count == 0)
      return refuse(415, "a POST with a body needs Content-Type: application/json (none was sent)");
    if (head.content_type_count > 1 || !is_json_media_type(head.content_type))
      return refuse(415, "a POST needs Content-Type: application/json, not \"" +
                             printable(head.content_type) + "\"");
  }
  return std::nullopt;
}

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (const char c : text.substr(0, max))
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace figshift::admin
