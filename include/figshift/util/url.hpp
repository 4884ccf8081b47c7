#pragma once
// The authority of a URL ("host:port"), parsed by Boost.URL as RFC 3986 §3.2
// defines it, for the store's upstream URLs and the CLI's admin URL.
// Thread-safety: a pure function; the result owns its strings.

#include <string>
#include <string_view>

namespace figshift {

struct UrlAuthority {
  enum class Problem { none, host, ip_literal, port };
  enum class HostType { name, ipv4, ipv6, ipvfuture };

  Problem problem = Problem::none;  // the part that is malformed; the rest is unset then
  bool has_userinfo = false;        // "user@" (or "user:password@") before the host
  HostType host_type = HostType::name;
  std::string host;       // as written (case and %HH kept); an IP literal without its brackets
  bool has_port = false;  // a ':' after the host
  std::string port;       // the digits after it, as written; none for "host:"
};

// Parses `authority`: what follows "scheme://" up to the first '/', '?' or '#'.
UrlAuthority parse_url_authority(std::string_view authority);

}  // namespace figshift
