#pragma once
// Why an exchange with an upstream failed, mapped to the client's status in
// exactly one place (status_for).

#include <boost/beast/http/status.hpp>
#include <string_view>

namespace figshift::proxy {

enum class UpstreamError {
  dns_failed,
  connect_failed,
  connect_timeout,
  tls_failed,
  reset,             // closed or reset before a whole response arrived
  bad_response,      // unparsable or smuggling-prone response
  response_too_large,
  response_timeout,
};

boost::beast::http::status status_for(UpstreamError error);
std::string_view describe(UpstreamError error);

}  // namespace figshift::proxy
