#pragma once
// Static daemon settings (the --config JSON file), parsed and validated once at
// startup. Thread-safety: an immutable value after load_config returns.

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace figshift {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An IP network ("10.0.0.0/8", "::1/128", or one address). IPv4 is kept as its
// IPv4-mapped IPv6 form, so one comparison serves both families.
struct IpNetwork {
  using Bytes = std::array<std::uint8_t, 16>;
  Bytes address{};
  unsigned prefix_bits = 128;
  std::string text;  // as configured

  // nullopt when `text` is neither an address nor address/prefix-length.
  static std::optional<IpNetwork> parse(std::string_view text);
  bool contains(const Bytes& address_v6) const;
};

struct ListenAddress {
  std::string address;
  std::uint16_t port = 0;  // 0: any free port (logged once bound)
};

// A traffic listener; with both TLS files set it speaks HTTPS (TLS 1.2 and 1.3 only).
struct TrafficListener : ListenAddress {
  struct Tls {
    std::filesystem::path cert_file;  // PEM certificate chain, leaf first
    std::filesystem::path key_file;   // PEM private key
    // false: no session tickets and no session cache, so every handshake is a
    // full one (for measuring handshakes, or when resumption is unwanted).
    bool session_tickets = true;
  };
  std::optional<Tls> tls;
};

struct Config {
  using ms = std::chrono::milliseconds;

  std::filesystem::path file;  // the config file itself
  std::vector<TrafficListener> listen{TrafficListener{{"0.0.0.0", 8080}, {}}};

  struct Admin {
    ListenAddress listen{"127.0.0.1", 9901};
    std::filesystem::path token_file;  // bearer token read from this file, or
    std::string token_env;             // from this environment variable
    // Host names (besides the listener's own IP address and "localhost") that
    // the admin API answers to: a Host the browser took from DNS is otherwise
    // refused, so a DNS-rebinding page cannot reach it.
    std::vector<std::string> allowed_hosts;
    std::uint32_t max_connections = 64;  // open admin connections; beyond it new ones are closed
  } admin;

  struct Store {
    std::string backend = "file";
    std::filesystem::path path;  // resolved against the config file's folder
    std::filesystem::path seed;  // KVS import file used when `path` does not exist
    ms reload_interval{500};     // how often the file is checked for edits
    // backend "etcd" (#14): the store lives under `prefix` in an etcd v3
    // cluster, reached through its JSON gateway at one of `endpoints`.
    std::vector<std::string> endpoints;  // "http://host:port", tried in turn
    std::string prefix = "/figshift/";   // etcd key = prefix + store key
    std::filesystem::path cache;         // last accepted content, served when etcd is down at start
    std::string username;                // etcd auth (with password_file)
    std::filesystem::path password_file;
    std::filesystem::path ca_file, cert_file, key_file;  // https endpoints
  } store;

  unsigned workers = 0;  // resolved: never 0 after load_config

  struct Timeouts {
    ms client_header{10'000};    // first byte to end of request head
    // Reading a request body: the whole of one read into memory; for a
    // streamed one, each wait for more of it (see limits.body_min_bytes_per_s).
    ms client_body{30'000};
    ms client_idle{60'000};      // keep-alive wait for the next request
    ms client_write{30'000};     // writing a response to the client
    ms upstream_connect{3'000};  // DNS + TCP + TLS handshake
    // The response head after the request went out; for a streamed response,
    // also each wait for more of its body (an event stream must send within it).
    ms upstream_response{30'000};
    ms tunnel_idle{300'000};  // a WebSocket tunnel with no byte either way is closed
    ms upstream_idle{30'000};  // pooled keep-alive connection lifetime when unused
    ms drain{15'000};          // SIGTERM: time in-flight requests get to finish
  } timeouts;

  struct Limits {
    std::uint32_t header_bytes = 16 * 1024;
    std::uint64_t body_bytes = 10 * 1024 * 1024;
    std::uint64_t response_body_bytes = 0;  // 0: no limit (responses are streamed)
    // A request body with a Content-Length up to this is read whole before the
    // upstream is picked (and may be resent on a stale pooled connection);
    // a longer or chunked one is streamed.
    std::uint64_t buffer_request_bytes = 64 * 1024;
    // A response with a Content-Length up to this is read whole before the client
    // gets a byte, so a slow client does not hold the upstream connection; a
    // longer, chunked or unframed one is streamed and a slow reader slows the upstream.
    std::uint64_t buffer_response_bytes = 64 * 1024;
    // The buffer of each direction of a streamed body or tunnel.
    std::uint32_t stream_buffer_bytes = 64 * 1024;
    // A streamed request body must average at least this rate once
    // timeouts.client_body has passed (0: no minimum): a slow drip is cut off.
    std::uint64_t body_min_bytes_per_s = 1024;
    std::uint32_t max_connections = 10'000;  // per worker
    std::uint32_t upstream_idle_per_origin = 64;  // pooled connections per worker and origin
    // Request bodies held in memory at once, process-wide (each worker gets an
    // equal share); a body that does not fit is answered 503 before it is read.
    std::uint64_t buffered_body_bytes = 128 * 1024 * 1024;
  } limits;

  // Peers (CIDR blocks) whose X-Forwarded-For, Forwarded, X-Real-IP and
  // X-Forwarded-Port are passed on; from anyone else those are removed and
  // X-Forwarded-For starts afresh with the peer's address.
  std::vector<IpNetwork> trusted_proxies;

  struct UpstreamTls {
    bool verify = true;
    std::filesystem::path ca_file;  // empty: the system CA store
  } upstream_tls;

  struct AccessLog {
    bool enabled = true;
    std::string path = "-";         // "-": standard output
    bool include_username = false;  // the decoded Basic-auth username, opt-in only
    ms flush_interval{250};         // longest a line waits in a worker's buffer
  } access_log;

  // Bearer tokens for user-key jwt (#17). Without this section every token is
  // anonymous (counted as no_keys).
  struct Jwt {
    std::filesystem::path keys_file;  // JWKS; reloaded on change and on SIGHUP
    std::string issuer;               // empty: any iss
    std::string audience;             // empty: any aud
    std::int64_t leeway_s = 30;       // clock skew allowed on exp and nbf
    bool cache = true;                // verified tokens kept per worker; false only to measure
  };
  std::optional<Jwt> jwt;

  std::string debug_header = "x-figshift-upstream";  // empty: off
  std::string log_level = "info";
};

// Throws ConfigError naming the offending field ("timeouts.client_header_ms: ...").
Config load_config(const std::filesystem::path& file);
Config parse_config(const std::string& json_text, const std::filesystem::path& file);

}  // namespace figshift
