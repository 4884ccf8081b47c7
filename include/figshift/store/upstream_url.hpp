#pragma once
// Parsing of the store's `APIGW_<NAME>_URL` values into Upstreams.
// Thread-safety: a pure function, no shared state.

#include <string>
#include <string_view>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"

namespace figshift {

// Parses `APIGW_<NAME>_URL` values: http:// or https://, a host name, IPv4 or
// bracketed IPv6 address, an optional port 1..65535 and an optional base path
// (its trailing '/' dropped); no credentials, query or fragment. Throws
// InvalidStore naming the key.
Upstream parse_upstream_url(std::string name, std::string_view url);

}  // namespace figshift
