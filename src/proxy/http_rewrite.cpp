#include "proxy/http_rewrite.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>
#include <nlohmann/json.hpp>

namespace figshift::proxy {
namespace {

namespace beast = boost::beast;
// Beast 1.81 has no enum values for these de-facto standard fields.
constexpr std::string_view x_forwarded_for = "X-Forwarded-For";
constexpr std::string_view x_forwarded_proto = "X-Forwarded-Proto";
constexpr std::string_view x_forwarded_host = "X-Forwarded-Host";
constexpr std::string_view x_forwarded_port = "X-Forwarded-Port";
constexpr std::string_view x_real_ip = "X-Real-IP";

void append_version(unsigned version, std::string& out) {
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
}

void append_status(unsigned status, std::string_view reason, http::status code, std::string& out) {
  out += ' ';
  out += static_cast<char>('0' + status / 100 % 10);
  out += static_cast<char>('0' + status / 10 % 10);
  out += static_cast<char>('0' + status % 10);
  out += ' ';
  out += reason.empty() ? std::string_view(http::obsolete_reason(code)) : reason;
  out += "\r\n";
}

void append_field(std::string_view name, std::string_view value, std::string& out) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void append_content_length(std::uint64_t length, std::string& out) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, length).ptr;
  append_field("Content-Length", std::string_view(digits, end - digits), out);
}

void append_fields(const Fields& fields, std::string& out) {
  for (const auto& field : fields) append_field(field.name_string(), field.value(), out);
  out += "\r\n";
}

bool is_named(const Fields::value_type& field, std::string_view name) {
  return field.name() == http::field::unknown && beast::iequals(field.name_string(), name);
}

bool is_always_hop_by_hop(http::field name) {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

// Tells the hop-by-hop fields of one message; finds its Connection lines once.
class HopByHop {
 public:
  explicit HopByHop(const Fields& fields)
      : fields_(fields), connection_(first_field(fields, http::field::connection)) {}

  bool operator()(const Fields::value_type& field) const {
    if (is_always_hop_by_hop(field.name())) return true;
    // Beast inserts a repeated name next to its namesakes, so the Connection lines are adjacent.
    for (auto it = connection_; it != fields_.end() && it->name() == http::field::connection; ++it)
      for (auto token : http::token_list(it->value()))
        if (beast::iequals(token, field.name_string())) return true;
    return false;
  }

 private:
  const Fields& fields_;
  Fields::const_iterator connection_;
};

}  // namespace

Fields::const_iterator first_field(const Fields& fields, http::field name) {
  auto it = fields.begin();
  while (it != fields.end() && it->name() != name) ++it;
  return it;
}

std::string_view field_value(const Fields& fields, http::field name) {
  const auto it = first_field(fields, name);
  return it == fields.end() ? std::string_view() : std::string_view(it->value());
}

bool is_hop_by_hop(const Fields& fields, const Fields::value_type& field) {
  return HopByHop(fields)(field);
}

void write_upstream_head(const http::request_header<Fields>& client, const Upstream& upstream,
                         std::string_view target, std::string_view client_ip,
                         std::string_view client_proto, bool trusted_peer, BodyFraming body,
                         bool upgrade, std::string& out) {
  out.clear();
  out += client.method_string();  // as sent, also an extension method ("QUERY")
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\n";
  append_field("Host", upstream.host_header, out);
  const HopByHop hop_by_hop(client);
  std::string_view client_host;  // the first, as client[host] would give
  for (const auto& field : client) {
    switch (field.name()) {
      case http::field::host:  // replaced by the upstream's
        if (client_host.empty()) client_host = field.value();
        continue;
      case http::field::content_length:  // written below, as `body` says
        continue;
      case http::field::expect:  // the body is already here: a 100 would pass for the response
        continue;
      case http::field::forwarded:
        if (!trusted_peer) continue;
        break;
      default:
        break;
    }
    if (is_named(field, x_forwarded_for) || is_named(field, x_forwarded_proto) ||
        is_named(field, x_forwarded_host))
      continue;
    if (!trusted_peer && (is_named(field, x_real_ip) || is_named(field, x_forwarded_port)))
      continue;
    if (hop_by_hop(field)) continue;
    append_field(field.name_string(), field.value(), out);
  }
  // Repeated X-Forwarded-For lines form one list (RFC 9110 §5.3): keep them all.
  out += x_forwarded_for;
  out += ": ";
  if (trusted_peer)
    for (const auto& field : client)
      if (is_named(field, x_forwarded_for) && !field.value().empty()) {
        out += field.value();
        out += ", ";
      }
  out += client_ip;
  out += "\r\n";
  append_field(x_forwarded_proto, client_proto, out);
  if (!client_host.empty()) append_field(x_forwarded_host, client_host, out);
  switch (body.kind) {
    case BodyFraming::Kind::length:
      append_content_length(body.length, out);
      break;
    case BodyFraming::Kind::chunked:
      append_field("Transfer-Encoding", "chunked", out);
      break;
    default:  // a request body is never delimited by the connection's end
      break;
  }
  if (upgrade) {
    append_field("Connection", "upgrade", out);
    append_field("Upgrade", field_value(client, http::field::upgrade), out);
  }
  out += "\r\n";
}

void write_client_head(const http::response_header<Fields>& upstream_response, bool head_request,
                       unsigned client_version, bool keep_alive, BodyFraming body,
                       std::string_view debug_header, std::string_view upstream_name,
                       std::string& out) {
  out.clear();
  append_version(client_version, out);
  const unsigned status = upstream_response.result_int();
  append_status(status, upstream_response.reason(), upstream_response.result(), out);
  const auto& fields = upstream_response;
  const HopByHop hop_by_hop(fields);
  for (const auto& field : fields) {
    if (field.name() == http::field::content_length || hop_by_hop(field)) continue;
    if (!debug_header.empty() && beast::iequals(field.name_string(), debug_header)) continue;
    append_field(field.name_string(), field.value(), out);
  }
  if (status == 101) {  // the switch a WebSocket handshake asked for: the rest is a tunnel
    append_field("Connection", "upgrade", out);
    append_field("Upgrade", field_value(fields, http::field::upgrade), out);
    if (!debug_header.empty()) append_field(debug_header, upstream_name, out);
    out += "\r\n";
    return;
  }
  if (head_request || status == 304) {
    // They announce the length of a body they do not carry.
    if (const auto length = field_value(fields, http::field::content_length); !length.empty())
      append_field("Content-Length", length, out);
  } else if (status / 100 != 1 && status != 204) {
    if (body.kind == BodyFraming::Kind::length) append_content_length(body.length, out);
    if (body.kind == BodyFraming::Kind::chunked) append_field("Transfer-Encoding", "chunked", out);
  }
  if (client_version >= 11 && !keep_alive) append_field("Connection", "close", out);
  if (client_version < 11 && keep_alive) append_field("Connection", "keep-alive", out);
  if (!debug_header.empty()) append_field(debug_header, upstream_name, out);
  out += "\r\n";
}

void serialize_head(const Response& response, std::string& out) {
  append_version(response.version(), out);
  append_status(response.result_int(), response.reason(), response.result(), out);
  append_fields(response.base(), out);
}

Response json_error(http::status status, std::string_view message, unsigned version,
                    bool keep_alive) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = nlohmann::json{{"error", message}}.dump() + "\n";
  res.prepare_payload();
  res.keep_alive(keep_alive);
  return res;
}

}  // namespace figshift::proxy
