// The admin API client of the control subcommands: one HTTP/1.1 exchange per
// call on a fresh loopback connection, bounded by one deadline. Beast's
// tcp_stream enforces its expiry only on asynchronous operations, so each step
// is started asynchronously and the private io_context is run to completion:
// synchronous for the caller, with a real deadline.

#include "admin_client.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <system_error>

#include "figshift/util/file.hpp"
#include "figshift/util/url.hpp"

namespace figshift::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr const char* kDefaultUrl = "http://127.0.0.1:9901";
constexpr std::size_t kMaxResponseBody = 64u << 20;

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

bool header_safe(std::string_view token) {
  for (unsigned char c : token)
    if (c < 0x21 || c == 0x7f) return false;
  return true;
}

// The token; `where` names its source for messages (never the token itself).
std::string read_token(const AdminOptions& options) {
  if (!options.token_file.empty()) {
    std::error_code error;
    std::optional<std::string> text = read_file(options.token_file, error);
    if (!text)
      throw CliError(kExitError,
                     "cannot read token file " + options.token_file + ": " + error.message());
    std::string token = trim(std::move(*text));
    if (token.empty()) throw CliError(kExitError, "token file " + options.token_file + " is empty");
    if (!header_safe(token))
      throw CliError(kExitError, "token file " + options.token_file +
                                     " holds characters not allowed in an HTTP header");
    return token;
  }
  if (const char* env = std::getenv("FIGSHIFT_ADMIN_TOKEN")) {
    std::string token = trim(env);
    if (!header_safe(token))
      throw CliError(kExitError,
                     "FIGSHIFT_ADMIN_TOKEN holds characters not allowed in an HTTP header");
    return token;
  }
  return {};
}

std::string seconds_text(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << static_cast<double>(ms.count()) / 1000.0 << " s";
  return out.str();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

AdminClient::AdminClient(const AdminOptions& options) {
  url_ = options.url;
  if (url_.empty()) {
    const char* env = std::getenv("FIGSHIFT_ADMIN_URL");
    url_ = env && *env ? env : kDefaultUrl;
  }
  const std::string scheme = "http://";
  if (lower(url_.substr(0, scheme.size())) != scheme) {
    if (lower(url_.substr(0, 8)) == "https://")
      throw CliError(kExitUsage, "admin URL " + url_ +
                                     ": only http:// is supported (the admin API is plain HTTP "
                                     "on loopback)");
    throw CliError(kExitUsage, "admin URL " + url_ + ": expected http://HOST[:PORT]");
  }
  // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'. Boost.URL
  // parses it; the path after it is sent as given (only its trailing '/' dropped).
  std::string_view rest = std::string_view(url_).substr(scheme.size());
  const auto authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    throw CliError(kExitUsage,
                   "credentials in the admin URL are not supported; use --token-file or "
                   "FIGSHIFT_ADMIN_TOKEN");
  // A host that is no RFC 3986 host (a space in it, "[abc]") is a usage error
  // here; the hand-written parser before Boost.URL passed it on to fail at
  // name resolution (exit 3).
  const UrlAuthority parsed = parse_url_authority(authority);
  switch (parsed.problem) {
    case UrlAuthority::Problem::none:
      break;
    case UrlAuthority::Problem::port:
      throw CliError(kExitUsage, "admin URL " + url_ + ": bad port");
    case UrlAuthority::Problem::ip_literal:
      throw CliError(kExitUsage, "admin URL " + url_ + ": bad [IPv6 address]");
    case UrlAuthority::Problem::host:
      throw CliError(kExitUsage, "admin URL " + url_ + ": bad host");
  }
  host_ = parsed.host;  // an IPv6 address without its brackets, for the resolver
  if (host_.empty()) throw CliError(kExitUsage, "admin URL " + url_ + ": no host");
  // Digits only (Boost.URL's port rule). "host:" is port 80, as "host" is
  // (RFC 3986 §3.2.3 allows the empty port).
  const std::string_view port = parsed.port;
  if (port.empty()) {
    port_ = "80";
  } else {
    if (port.size() > 5 || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535)
      throw CliError(kExitUsage, "admin URL " + url_ + ": bad port");
    port_ = std::string(port);
  }
  host_header_ = std::string(authority);
  const auto query = path.find_first_of("?#");
  if (query != std::string_view::npos)
    throw CliError(kExitUsage, "admin URL " + url_ + ": no query or fragment allowed");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  base_path_ = std::string(path);

  if (!(options.timeout_seconds > 0) || !std::isfinite(options.timeout_seconds))
    throw CliError(kExitUsage, "--timeout must be a positive number of seconds");
  timeout_ = std::chrono::milliseconds(static_cast<long long>(options.timeout_seconds * 1000));
  token_ = read_token(options);
}

AdminResponse AdminClient::request(std::string_view method, std::string_view target,
                                   std::string_view body, std::string_view if_match,
                                   std::string_view content_type) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const auto unreachable = [&](const std::string& what, const beast::error_code& ec) {
    std::string reason =
        ec == beast::error::timeout ? "no answer within " + seconds_text(timeout_) : ec.message();
    return CliError(kExitUnreachable, "cannot " + what + " the admin API at " + url_ + ": " +
                                          reason +
                                          " (is the daemon running? set --admin URL or "
                                          "FIGSHIFT_ADMIN_URL to its admin address)");
  };

  net::io_context ioc;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(host_, port_, tcp::resolver::numeric_service, ec);
  if (ec) throw unreachable("resolve the host of", ec);

  beast::tcp_stream stream(ioc);
  stream.expires_at(deadline);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  if (ec) throw unreachable("connect to", ec);

  const http::verb verb = http::string_to_verb(method);
  http::request<http::string_body> req{verb, base_path_ + std::string(target), 11};
  req.set(http::field::host, host_header_);
  req.set(http::field::user_agent, "figshift-cli");
  req.set(http::field::accept, "application/json");
  req.set(http::field::connection, "close");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!if_match.empty()) req.set(http::field::if_match, if_match);
  if (!body.empty() || verb == http::verb::put || verb == http::verb::post) {
    req.set(http::field::content_type, content_type);
    req.body() = std::string(body);
  }
  req.prepare_payload();

  ioc.restart();
  stream.expires_at(deadline);
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  if (ec) throw unreachable("send a request to", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  ioc.restart();
  stream.expires_at(deadline);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  if (ec) throw unreachable("read the answer of", ec);

  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  auto& res = parser.get();
  AdminResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  if (auto it = res.find(http::field::etag); it != res.end()) out.etag = std::string(it->value());
  return out;
}

AdminResponse AdminClient::call(std::string_view method, std::string_view target,
                                std::string_view body, std::string_view if_match,
                                std::string_view content_type) const {
  AdminResponse res = request(method, target, body, if_match, content_type);
  check(res, method, target);
  return res;
}

void AdminClient::check(const AdminResponse& res, std::string_view method,
                        std::string_view target) const {
  if (res.status >= 200 && res.status < 300) return;
  const std::string message = error_message(res);
  switch (res.status) {
    case 401:
      throw CliError(kExitUnauthorized, std::string("unauthorized: token missing or wrong (") +
                                            (token_.empty() ? "none was sent; " : "") +
                                            "pass --token-file FILE or set FIGSHIFT_ADMIN_TOKEN)");
    case 412:
      throw CliError(
          kExitPrecondition,
          "precondition failed: the store changed since you read it; re-read and retry (" +
              message + ")");
    case 400:
      throw CliError(kExitInvalid, "invalid: " + message);
    case 413:
      throw CliError(kExitError,
                     "request too large for the admin API (at most 64 KiB per write): " + message);
    default:
      throw CliError(kExitError, "the admin API answered " + std::to_string(res.status) + " to " +
                                     std::string(method) + " " + base_path_ + std::string(target) +
                                     ": " + message);
  }
}

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const CliError& e) {
    std::cout.flush();
    std::cerr << "figshift: " << e.what() << "\n";
    return e.exit_code;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "figshift: " << e.what() << "\n";
    return kExitError;
  }
}

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string normalize_etag(std::string_view etag) {
  if (etag == "*") return "*";
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
  if (etag.size() >= 4 && etag.substr(0, 3) == "W/\"" && etag.back() == '"')
    return std::string(etag);
  return "\"" + std::string(etag) + "\"";
}

nlohmann::json parse_json(const AdminResponse& response, std::string_view what) {
  try {
    return nlohmann::json::parse(response.body);
  } catch (const nlohmann::json::exception&) {
    throw CliError(kExitError,
                   "the admin API answered " + std::string(what) + " with invalid JSON");
  }
}

std::string error_message(const AdminResponse& response) {
  try {
    const auto j = nlohmann::json::parse(response.body);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
      return j["error"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  std::string body = trim(response.body);
  if (body.size() > 300) body = body.substr(0, 300) + "…";
  return body.empty() ? "(no message)" : body;
}

}  // namespace figshift::cli
