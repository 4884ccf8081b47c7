#include "figshift/config.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include <sched.h>

#include "figshift/util/file.hpp"

namespace figshift {
namespace {

using json = nlohmann::json;

// Walks one JSON object, remembering which keys were read so that any key left
// over is reported: a typo in a timeout must not silently keep the default.
class Section {
 public:
  Section(const json& node, std::string path) : node_(node), path_(std::move(path)) {
    if (!node_.is_object()) fail(path_.empty() ? "the config" : path_, "must be a JSON object");
  }

  const json* get(const std::string& key) {
    seen_.insert(key);
    auto it = node_.find(key);
    return it == node_.end() ? nullptr : &*it;
  }

  std::string where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  [[noreturn]] static void fail(const std::string& where, const std::string& why) {
    throw ConfigError(where + ": " + why);
  }

  template <typename Int>
  void integer(const std::string& key, Int& out, std::int64_t min, std::int64_t max) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_number_integer()) fail(where(key), "must be an integer, got " + v->dump());
    auto n = v->get<std::int64_t>();
    if (n < min || n > max)
      fail(where(key), "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           ", got " + std::to_string(n));
    out = static_cast<Int>(n);
  }

  void millis(const std::string& key, Config::ms& out) {
    std::int64_t n = out.count();
    integer(key, n, 1, 24LL * 3600 * 1000);
    out = Config::ms(n);
  }

  void string(const std::string& key, std::string& out, bool allow_empty = true) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_string()) fail(where(key), "must be a string, got " + v->dump());
    out = v->get<std::string>();
    if (!allow_empty && out.empty()) fail(where(key), "must not be empty");
  }

  void boolean(const std::string& key, bool& out) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_boolean()) fail(where(key), "must be true or false, got " + v->dump());
    out = v->get<bool>();
  }

  void finish() const {
    for (const auto& [key, value] : node_.items())
      if (!seen_.count(key)) fail(where(key), "unknown key");
  }

 private:
  const json& node_;
  std::string path_;
  std::set<std::string> seen_;
};

std::filesystem::path relative_to(const std::filesystem::path& dir, const std::string& p) {
  std::filesystem::path path(p);
  return (path.is_absolute() ? path : dir / path).lexically_normal();
}

TrafficListener traffic_listener(const json& node, const std::string& path,
                                 const std::filesystem::path& dir) {
  Section s(node, path);
  TrafficListener out;
  if (!s.get("address")) Section::fail(s.where("address"), "is required");
  s.string("address", out.address, false);
  if (!s.get("port")) Section::fail(s.where("port"), "is required");
  s.integer("port", out.port, 0, 65535);
  if (const json* tls = s.get("tls")) {
    Section t(*tls, path + ".tls");
    std::string cert, key;
    if (!t.get("cert_file")) Section::fail(t.where("cert_file"), "is required (PEM certificate chain)");
    t.string("cert_file", cert, false);
    if (!t.get("key_file")) Section::fail(t.where("key_file"), "is required (PEM private key)");
    t.string("key_file", key, false);
    // Aggregate-initialised, not emplace(): Clang cannot use the default
    // constructor of a struct nested in a class it is still completing (the
    // optional member), and the fuzz build is Clang.
    out.tls = TrafficListener::Tls{relative_to(dir, cert), relative_to(dir, key), true};
    t.boolean("session_tickets", out.tls->session_tickets);
    t.finish();
  }
  s.finish();
  return out;
}

// store.backend "etcd" (#14). Checked without contacting etcd, so that
// check-config works on a host where etcd is down.
void etcd_store(Section& s, const std::filesystem::path& dir, Config::Store& out) {
  const json* endpoints = s.get("endpoints");
  if (!endpoints) Section::fail("store.endpoints", "is required for the etcd backend");
  if (!endpoints->is_array() || endpoints->empty())
    Section::fail("store.endpoints", "must be a non-empty array of \"http://host:port\" URLs");
  for (std::size_t i = 0; i < endpoints->size(); ++i) {
    const json& e = (*endpoints)[i];
    const std::string where = "store.endpoints[" + std::to_string(i) + "]";
    if (!e.is_string()) Section::fail(where, "must be a string, got " + e.dump());
    const std::string url = e.get<std::string>();
    if (url.starts_with("https://"))
      Section::fail(where, "https endpoints are not supported yet (TLS to etcd is not implemented); "
                           "use http:// on a trusted network");
    if (!url.starts_with("http://"))
      Section::fail(where, "must start with http://, got \"" + url + "\"");
    std::string_view rest = std::string_view(url).substr(7);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    const auto colon = rest.rfind(':');
    unsigned port = 0;
    const bool port_ok =
        colon != std::string_view::npos && colon > 0 &&
        std::from_chars(rest.data() + colon + 1, rest.data() + rest.size(), port).ec == std::errc() &&
        port > 0 && port < 65536 &&
        std::all_of(rest.begin() + colon + 1, rest.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!port_ok || rest.find_first_of("/?#@ ") != std::string_view::npos)
      Section::fail(where, "must be http://host:port (no path), got \"" + url + "\"");
    out.endpoints.push_back(url);
  }
  s.string("prefix", out.prefix, false);
  for (unsigned char ch : out.prefix)
    if (ch < 0x20 || ch == 0x7f) Section::fail("store.prefix", "must not hold control characters");
  std::string seed, cache, password_file, ca, cert, key;
  s.string("seed", seed);
  s.string("cache", cache);
  if (!seed.empty()) out.seed = relative_to(dir, seed);
  if (!cache.empty()) out.cache = relative_to(dir, cache);
  s.string("username", out.username);
  s.string("password_file", password_file);
  if (out.username.empty() != password_file.empty())
    Section::fail(out.username.empty() ? "store.password_file" : "store.username",
                  "username and password_file go together");
  if (!password_file.empty()) out.password_file = relative_to(dir, password_file);
  s.string("ca_file", ca);
  s.string("cert_file", cert);
  s.string("key_file", key);
  if (!ca.empty() || !cert.empty() || !key.empty())
    Section::fail(!ca.empty() ? "store.ca_file" : !cert.empty() ? "store.cert_file" : "store.key_file",
                  "TLS to etcd is not supported yet (https endpoints are refused)");
  if (s.get("path")) Section::fail("store.path", "is for the file backend; the etcd backend uses "
                                                  "endpoints, prefix and cache");
  if (s.get("reload_interval_ms"))
    Section::fail("store.reload_interval_ms", "is for the file backend (etcd changes arrive by watch)");
}

unsigned usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

}  // namespace

std::optional<IpNetwork> IpNetwork::parse(std::string_view text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  const bool v4 = address.is_v4();
  if (v4) address = boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4());
  IpNetwork out;
  out.text = std::string(text);
  out.address = address.to_v6().to_bytes();
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    unsigned bits = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || err != std::errc() || end != digits.data() + digits.size() ||
        bits > (v4 ? 32u : 128u))
      return std::nullopt;
    out.prefix_bits = v4 ? 96 + bits : bits;
  }
  // Host bits set ("10.0.0.1/8") are cleared, as nginx and Envoy read such a block.
  for (unsigned bit = out.prefix_bits; bit < 128; ++bit)
    out.address[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return out;
}

bool IpNetwork::contains(const Bytes& candidate) const {
  const unsigned whole = prefix_bits / 8, rest = prefix_bits % 8;
  for (unsigned i = 0; i < whole; ++i)
    if (candidate[i] != address[i]) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (candidate[whole] & mask) == address[whole];
}

Config parse_config(const std::string& json_text, const std::filesystem::path& file) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a huge number
    throw ConfigError(file.string() + ": not valid JSON: " + e.what());
  }
  Config c;
  c.file = file;
  const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  Section top(root, "");

  const json* listen = top.get("listen");
  if (!listen) Section::fail("listen", "is required (e.g. [{\"address\":\"0.0.0.0\",\"port\":8080}])");
  {
    if (!listen->is_array() || listen->empty())
      Section::fail("listen", "must be a non-empty array of {\"address\",\"port\"}");
    c.listen.clear();
    for (std::size_t i = 0; i < listen->size(); ++i)
      c.listen.push_back(
          traffic_listener((*listen)[i], "listen[" + std::to_string(i) + "]", dir));
  }

  if (const json* admin = top.get("admin")) {
    Section s(*admin, "admin");
    s.string("address", c.admin.listen.address, false);
    s.integer("port", c.admin.listen.port, 0, 65535);
    std::string token_file;
    s.string("token_file", token_file);
    if (!token_file.empty()) c.admin.token_file = relative_to(dir, token_file);
    s.string("token_env", c.admin.token_env);
    if (const json* hosts = s.get("allowed_hosts")) {
      if (!hosts->is_array()) Section::fail("admin.allowed_hosts", "must be an array of host names");
      for (std::size_t i = 0; i < hosts->size(); ++i) {
        const auto where = "admin.allowed_hosts[" + std::to_string(i) + "]";
        const json& h = (*hosts)[i];
        if (!h.is_string() || h.get<std::string>().empty())
          Section::fail(where, "must be a non-empty string, got " + h.dump());
        std::string name = h.get<std::string>();
        for (char& ch : name) {
          if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.')
            Section::fail(where, "\"" + h.get<std::string>() +
                                     "\" is not a host name (letters, digits, '-' and '.'; no port)");
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        c.admin.allowed_hosts.push_back(std::move(name));
      }
    }
    s.integer("max_connections", c.admin.max_connections, 1, 100'000);
    s.finish();
  }

  const json* store = top.get("store");
  if (!store) Section::fail("store", "is required");
  {
    Section s(*store, "store");
    s.string("backend", c.store.backend, false);
    if (c.store.backend == "etcd") {
      etcd_store(s, dir, c.store);
    } else if (c.store.backend == "file") {
      std::string path, seed;
      if (!s.get("path")) Section::fail("store.path", "is required");
      s.string("path", path, false);
      s.string("seed", seed);
      c.store.path = relative_to(dir, path);
      if (!seed.empty()) c.store.seed = relative_to(dir, seed);
      s.millis("reload_interval_ms", c.store.reload_interval);
    } else {
      Section::fail("store.backend", "\"" + c.store.backend +
                                         "\" is not supported (supported: \"file\", \"etcd\")");
    }
    s.finish();
  }

  top.integer("workers", c.workers, 0, 1024);
  if (c.workers == 0) c.workers = usable_cpus();

  if (const json* t = top.get("timeouts")) {
    Section s(*t, "timeouts");
    s.millis("client_header_ms", c.timeouts.client_header);
    s.millis("client_body_ms", c.timeouts.client_body);
    s.millis("client_idle_ms", c.timeouts.client_idle);
    s.millis("client_write_ms", c.timeouts.client_write);
    s.millis("upstream_connect_ms", c.timeouts.upstream_connect);
    s.millis("upstream_response_ms", c.timeouts.upstream_response);
    s.millis("upstream_idle_ms", c.timeouts.upstream_idle);
    s.millis("drain_ms", c.timeouts.drain);
    s.millis("tunnel_idle_ms", c.timeouts.tunnel_idle);
    s.finish();
  }

  if (const json* l = top.get("limits")) {
    Section s(*l, "limits");
    // Beast cannot hold a single field over 64 KiB; the whole head stays under that.
    s.integer("header_bytes", c.limits.header_bytes, 1024, 60 * 1024);
    s.integer("body_bytes", c.limits.body_bytes, 0, std::numeric_limits<std::int64_t>::max());
    s.integer("response_body_bytes", c.limits.response_body_bytes, 0,
              std::numeric_limits<std::int64_t>::max());
    s.integer("max_connections", c.limits.max_connections, 1, 10'000'000);
    s.integer("upstream_idle_per_origin", c.limits.upstream_idle_per_origin, 0, 100'000);
    s.integer("buffered_body_bytes", c.limits.buffered_body_bytes, 0,
              std::numeric_limits<std::int64_t>::max());
    s.integer("buffer_request_bytes", c.limits.buffer_request_bytes, 0, 64 * 1024 * 1024);
    s.integer("buffer_response_bytes", c.limits.buffer_response_bytes, 0, 64 * 1024 * 1024);
    s.integer("stream_buffer_bytes", c.limits.stream_buffer_bytes, 1024, 16 * 1024 * 1024);
    s.integer("body_min_bytes_per_s", c.limits.body_min_bytes_per_s, 0, 1'000'000'000);
    s.finish();
  }

  if (const json* trusted = top.get("trusted_proxies")) {
    if (!trusted->is_array())
      Section::fail("trusted_proxies", "must be an array of CIDR blocks (\"10.0.0.0/8\")");
    for (std::size_t i = 0; i < trusted->size(); ++i) {
      const json& n = (*trusted)[i];
      const auto where = "trusted_proxies[" + std::to_string(i) + "]";
      if (!n.is_string()) Section::fail(where, "must be a string, got " + n.dump());
      auto network = IpNetwork::parse(n.get<std::string>());
      if (!network)
        Section::fail(where, "\"" + n.get<std::string>() +
                                 "\" is not an IP address or CIDR block (\"10.0.0.0/8\", \"::1/128\")");
      c.trusted_proxies.push_back(std::move(*network));
    }
  }

  if (const json* t = top.get("upstream_tls")) {
    Section s(*t, "upstream_tls");
    s.boolean("verify", c.upstream_tls.verify);
    std::string ca;
    s.string("ca_file", ca);
    if (!ca.empty()) c.upstream_tls.ca_file = relative_to(dir, ca);
    s.finish();
  }

  if (const json* a = top.get("access_log")) {
    Section s(*a, "access_log");
    s.boolean("enabled", c.access_log.enabled);
    std::string path = c.access_log.path;
    s.string("path", path, false);
    c.access_log.path = path == "-" ? path : relative_to(dir, path).string();
    s.boolean("include_username", c.access_log.include_username);
    s.millis("flush_interval_ms", c.access_log.flush_interval);
    s.finish();
  }

  if (const json* j = top.get("jwt")) {
    Section s(*j, "jwt");
    Config::Jwt jwt;
    std::string keys_file;
    if (!s.get("keys_file")) Section::fail("jwt.keys_file", "is required (a JWKS file)");
    s.string("keys_file", keys_file, false);
    jwt.keys_file = relative_to(dir, keys_file);
    s.string("issuer", jwt.issuer);
    s.string("audience", jwt.audience);
    s.integer("leeway_s", jwt.leeway_s, 0, 3600);
    s.boolean("cache", jwt.cache);
    s.finish();
    c.jwt = std::move(jwt);
  }

  top.string("debug_header", c.debug_header);
  for (char ch : c.debug_header)  // RFC 9110 token characters only: no spaces, no CR/LF
    if (!std::isalnum(static_cast<unsigned char>(ch)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos)
      Section::fail("debug_header", "\"" + c.debug_header + "\" is not a valid header name");

  if (const json* l = top.get("log")) {
    Section s(*l, "log");
    s.string("level", c.log_level, false);
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
    if (!levels.count(c.log_level))
      Section::fail("log.level", "must be one of trace, debug, info, warn, error, off");
    s.finish();
  }

  top.finish();
  return c;
}

Config load_config(const std::filesystem::path& file) {
  const std::optional<std::string> text = read_file(file);
  if (!text) throw ConfigError(file.string() + ": cannot be read");
  return parse_config(*text, file);
}

}  // namespace figshift
