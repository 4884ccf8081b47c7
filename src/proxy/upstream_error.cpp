#include "proxy/upstream_error.hpp"

namespace figshift::proxy {

namespace http = boost::beast::http;

http::status status_for(UpstreamError error) {
  switch (error) {
    case UpstreamError::connect_timeout:
    case UpstreamError::response_timeout:
      return http::status::gateway_timeout;
    case UpstreamError::dns_failed:
    case UpstreamError::connect_failed:
    case UpstreamError::tls_failed:
    case UpstreamError::reset:
    case UpstreamError::bad_response:
    case UpstreamError::response_too_large:
      return http::status::bad_gateway;
  }
  return http::status::bad_gateway;
}

std::string_view describe(UpstreamError error) {
  switch (error) {
    case UpstreamError::dns_failed: return "upstream host name could not be resolved";
    case UpstreamError::connect_failed: return "upstream unreachable";
    case UpstreamError::connect_timeout: return "upstream connect timed out";
    case UpstreamError::tls_failed: return "upstream TLS handshake or certificate verification failed";
    case UpstreamError::reset: return "upstream closed the connection";
    case UpstreamError::bad_response: return "upstream sent an invalid response";
    case UpstreamError::response_too_large: return "upstream response too large";
    case UpstreamError::response_timeout: return "upstream timed out";
  }
  return "upstream failed";
}

}  // namespace figshift::proxy
