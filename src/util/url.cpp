#include "figshift/util/url.hpp"

#include <boost/url/authority_view.hpp>
#include <boost/url/host_type.hpp>
#include <boost/url/parse.hpp>
#include <optional>

namespace figshift {
namespace {

namespace urls = boost::urls;

std::optional<UrlAuthority> parse(std::string_view authority) {
  auto parsed = urls::parse_authority(authority);
  // Boost.URL 1.81 takes a host that begins like an IPv4 address for one and
  // then fails on the rest ("10.0.0.1.nip.io", "1.2.3.4z"), where RFC 3986
  // reads a name (later Boost versions do too). Such an authority is parsed
  // again with a letter before the host, which makes it a name, and the
  // letter is taken off below.
  std::string with_letter;
  const auto host_at = authority.find('@') + 1;  // 0 without userinfo
  const bool retried = !parsed && host_at < authority.size() && authority[host_at] >= '0' &&
                       authority[host_at] <= '9';
  if (retried) {
    with_letter =
        std::string(authority.substr(0, host_at)) + "x" + std::string(authority.substr(host_at));
    parsed = urls::parse_authority(with_letter);
  }
  if (!parsed) return std::nullopt;

  UrlAuthority out;
  out.has_userinfo = parsed->has_userinfo();
  switch (parsed->host_type()) {
    case urls::host_type::ipv4:
      out.host_type = UrlAuthority::HostType::ipv4;
      break;
    case urls::host_type::ipv6:
      out.host_type = UrlAuthority::HostType::ipv6;
      break;
    case urls::host_type::ipvfuture:
      out.host_type = UrlAuthority::HostType::ipvfuture;
      break;
    default:
      out.host_type = UrlAuthority::HostType::name;
  }
  // encoded_host_address() is the host as written, IP literals without brackets.
  out.host = std::string(parsed->encoded_host_address());
  if (retried) out.host.erase(0, 1);
  out.has_port = parsed->has_port();
  // The port's text, never port_number(): Boost.URL 1.81 wraps 99999 around to 34463.
  out.port = std::string(parsed->port());
  return out;
}

}  // namespace

UrlAuthority parse_url_authority(std::string_view authority) {
  if (auto parsed = parse(authority)) return *parsed;
  // Boost.URL says only that the authority does not parse: find the part, for
  // the message. Without what follows the last ':' it parses: the port is bad.
  UrlAuthority bad;
  const auto colon = authority.rfind(':');
  const auto host_at = authority.find('@') + 1;
  if (colon != std::string_view::npos && parse(authority.substr(0, colon)))
    bad.problem = UrlAuthority::Problem::port;
  else if (authority.substr(host_at).starts_with('['))
    bad.problem = UrlAuthority::Problem::ip_literal;
  else
    bad.problem = UrlAuthority::Problem::host;
  return bad;
}

}  // namespace figshift
