#pragma once
// OpenSSL contexts built once at startup: the client context for upstream TLS
// and one server context per TLS traffic listener. Thread-safety: an
// SSL_CTX is shared read-only by every worker once built; build on one thread.

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "figshift/config.hpp"

namespace figshift::proxy {

// Verifies upstream certificates against upstream_tls.ca_file or the system store.
// Throws ConfigError when ca_file cannot be loaded.
std::unique_ptr<boost::asio::ssl::context> make_upstream_tls_context(const Config& config);

// TLS 1.2 and 1.3 only, no renegotiation, no compression; with
// tls.session_tickets false no session can be resumed. Throws ConfigError
// naming `where` ("listen[0].tls") when a file is unreadable or the key does
// not belong to the certificate.
std::unique_ptr<boost::asio::ssl::context> make_listener_tls_context(
    const TrafficListener::Tls& tls, const std::string& where);

// One entry per config.listen[i]: its server context, or null for plain HTTP.
std::vector<std::unique_ptr<boost::asio::ssl::context>> make_listener_tls_contexts(
    const Config& config);

}  // namespace figshift::proxy
