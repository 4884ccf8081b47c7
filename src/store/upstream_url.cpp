#include <cctype>
#include <charconv>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/upstream_url.hpp"

namespace figshift {
namespace {

[[noreturn]] void bad(const std::string& name, std::string_view url, const std::string& why) {
  throw InvalidStore("APIGW_" + name + "_URL: \"" + std::string(url) + "\" " + why);
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// Path characters an upstream base path may hold: RFC 3986 pchar without
// percent-decoding, so what the operator wrote is what is sent.
bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~!$&'()*+,;=:@/%").find(c) != std::string_view::npos;
}

}  // namespace

Upstream parse_upstream_url(std::string name, std::string_view url) {
  Upstream u;
  u.name = std::move(name);
  u.url = std::string(url);
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    u.tls = true;
    rest.remove_prefix(8);
  } else {
    bad(u.name, url, "must start with http:// or https://");
  }
  const auto path_at = rest.find('/');
  std::string_view authority = rest.substr(0, path_at);
  std::string_view path = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos)
    bad(u.name, url, "must not carry credentials (user@host)");
  if (path.find_first_of("?#") != std::string_view::npos)
    bad(u.name, url, "must not carry a query or fragment");

  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {  // IPv6 literal
    const auto close = authority.find(']');
    if (close == std::string_view::npos) bad(u.name, url, "has an unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad(u.name, url, "has garbage after the IPv6 literal");
      port = after.substr(1);
    }
    for (char c : host)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        bad(u.name, url, "has an invalid IPv6 literal");
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (char c : host)
      if (!host_char(c)) bad(u.name, url, "has an invalid character in its host name");
  }
  if (host.empty()) bad(u.name, url, "has no host");
  u.host = std::string(host);

  u.port = u.tls ? 443 : 80;
  const bool explicit_port = !port.empty();
  if (explicit_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      bad(u.name, url, "has an invalid port");
    u.port = static_cast<std::uint16_t>(value);
  } else if (authority.ends_with(':')) {
    bad(u.name, url, "has an empty port");
  }

  for (char c : path)
    if (!path_char(c)) bad(u.name, url, "has an invalid character in its path");
  while (path.ends_with('/')) path.remove_suffix(1);
  u.base_path = std::string(path);

  const bool default_port = u.port == (u.tls ? 443 : 80);
  const std::string bracketed = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  u.host_header = default_port ? bracketed : bracketed + ":" + std::to_string(u.port);
  u.origin = std::string(u.tls ? "https://" : "http://") + bracketed + ":" + std::to_string(u.port);
  return u;
}

}  // namespace figshift
