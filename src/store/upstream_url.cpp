// `APIGW_<NAME>_URL` values. Boost.URL parses the authority (credentials,
// host: name, IPv4 or IPv6 literal, port); the rules around it are figshift's
// own, each checked explicitly below where it is narrower than RFC 3986.
#include <cctype>
#include <charconv>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/upstream_url.hpp"
#include "figshift/util/url.hpp"

namespace figshift {
namespace {

[[noreturn]] void bad(const std::string& name, std::string_view url, const std::string& why) {
  throw InvalidStore("APIGW_" + name + "_URL: \"" + std::string(url) + "\" " + why);
}

// Host names hold only RFC 3986 unreserved characters. A reg-name may also
// hold sub-delims (!$&'()*+,;=) and %HH escapes, which no DNS name has.
bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// Path characters an upstream base path may hold: RFC 3986 pchar without
// percent-decoding, so what the operator wrote is what is sent. A '%' need not
// start a %HH escape here (Boost.URL's path rule would refuse "/100%"): that
// has always been accepted, so it still is.
bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~!$&'()*+,;=:@/%").find(c) != std::string_view::npos;
}

}  // namespace

Upstream parse_upstream_url(std::string name, std::string_view url) {
  Upstream u;
  u.name = std::move(name);
  u.url = std::string(url);
  // The scheme exactly as written: RFC 3986 would also take "HTTP://".
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    u.tls = true;
    rest.remove_prefix(8);
  } else {
    bad(u.name, url, "must start with http:// or https://");
  }
  // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'.
  const auto authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    bad(u.name, url, "must not carry credentials (user@host)");
  if (path.find_first_of("?#") != std::string_view::npos)
    bad(u.name, url, "must not carry a query or fragment");

  // An IPv6 literal must be an IPv6 address (RFC 4291): "[abc]" or "[1:2:3]"
  // are refused. The hand-written parser before Boost.URL checked only for hex
  // digits, ':' and '.', and handed such a literal to the resolver as a name.
  const UrlAuthority parsed = parse_url_authority(authority);
  switch (parsed.problem) {
    case UrlAuthority::Problem::none:
      break;
    case UrlAuthority::Problem::port:
      bad(u.name, url, "has an invalid port");
    case UrlAuthority::Problem::ip_literal:
      bad(u.name, url, "has an invalid IPv6 literal");
    case UrlAuthority::Problem::host:
      bad(u.name, url, "has an invalid character in its host name");
  }
  if (parsed.host_type == UrlAuthority::HostType::ipvfuture)  // "[v1.x]": no resolver has one
    bad(u.name, url, "has an invalid IPv6 literal");
  if (parsed.host_type != UrlAuthority::HostType::ipv6)
    for (char c : parsed.host)
      if (!host_char(c)) bad(u.name, url, "has an invalid character in its host name");
  if (parsed.host.empty()) bad(u.name, url, "has no host");
  u.host = parsed.host;

  u.port = u.tls ? 443 : 80;
  if (parsed.has_port) {
    const std::string_view port = parsed.port;
    if (port.empty()) bad(u.name, url, "has an empty port");
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      bad(u.name, url, "has an invalid port");
    u.port = static_cast<std::uint16_t>(value);
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
