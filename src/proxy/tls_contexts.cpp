#include "proxy/tls_contexts.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "figshift/proxy.hpp"

namespace figshift::proxy {
namespace ssl = boost::asio::ssl;

namespace {

constexpr auto legacy_protocols = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                  ssl::context::no_tlsv1_1;

}  // namespace

std::unique_ptr<ssl::context> make_upstream_tls_context(const Config& config) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  context->set_options(legacy_protocols);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (!config.upstream_tls.ca_file.empty()) {
    context->load_verify_file(config.upstream_tls.ca_file.string(), ec);
    if (ec)
      throw ConfigError("upstream_tls.ca_file " + config.upstream_tls.ca_file.string() + ": " +
                        ec.message());
  } else {
    context->set_default_verify_paths(ec);
    if (ec) spdlog::warn("cannot load the system CA store: {}", ec.message());
  }
  return context;
}

std::unique_ptr<ssl::context> make_listener_tls_context(const TrafficListener::Tls& tls,
                                                        const std::string& where) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  // Protocol options and the minimum version both: the options alone would let
  // a later OpenSSL default re-enable a version, the minimum alone not SSLv3 on old builds.
  context->set_options(legacy_protocols | ssl::context::single_dh_use);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // Client-initiated renegotiation is a cheap way to burn our CPU; compression leaks (CRIME).
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!tls.session_tickets) {
    // All three are needed for no resumption at all: with SSL_OP_NO_TICKET alone
    // TLS 1.3 still issues (stateful) tickets backed by the session cache, and
    // TLS 1.2 clients still resume by session ID from that cache.
    SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(native, 0);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  }
  boost::system::error_code ec;
  context->use_certificate_chain_file(tls.cert_file.string(), ec);
  if (ec)
    throw ConfigError(where + ".cert_file " + tls.cert_file.string() +
                      ": cannot load a PEM certificate chain: " + ec.message());
  context->use_private_key_file(tls.key_file.string(), ssl::context::pem, ec);
  // OpenSSL also checks here that the key belongs to the certificate ("key values mismatch").
  if (ec)
    throw ConfigError(where + ".key_file " + tls.key_file.string() +
                      ": cannot load a PEM private key for " + tls.cert_file.string() + ": " +
                      ec.message());
  return context;
}

std::vector<std::unique_ptr<ssl::context>> make_listener_tls_contexts(const Config& config) {
  std::vector<std::unique_ptr<ssl::context>> out;
  for (std::size_t i = 0; i < config.listen.size(); ++i)
    out.push_back(config.listen[i].tls
                      ? make_listener_tls_context(*config.listen[i].tls,
                                                  "listen[" + std::to_string(i) + "].tls")
                      : nullptr);
  return out;
}

}  // namespace figshift::proxy

namespace figshift {

void check_tls_files(const Config& config) {
  // Without a ca_file there is nothing that could fail (OpenSSL's default
  // paths load even when there is no CA bundle), and the Server loads the
  // system store anyway: loading it here too cost ~40 ms of start-up CPU.
  if (!config.upstream_tls.ca_file.empty()) proxy::make_upstream_tls_context(config);
  proxy::make_listener_tls_contexts(config);
}

}  // namespace figshift
