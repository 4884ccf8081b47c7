#include "proxy/http_rewrite.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <nlohmann/json.hpp>
#include <vector>

namespace figshift::proxy {
namespace {

namespace beast = boost::beast;
// Beast 1.81 has no enum values for these de-facto standard fields.
constexpr std::string_view x_forwarded_for = "X-Forwarded-For";
constexpr std::string_view x_forwarded_proto = "X-Forwarded-Proto";
constexpr std::string_view x_forwarded_host = "X-Forwarded-Host";

}  // namespace

void remove_hop_by_hop(http::fields& fields) {
  std::vector<std::string> named;
  for (auto it = fields.find(http::field::connection);
       it != fields.end() && it->name() == http::field::connection; ++it)
    for (auto token : http::token_list(it->value())) named.emplace_back(token);
  for (const auto& name : named) fields.erase(name);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::te, http::field::trailer, http::field::transfer_encoding,
                 http::field::upgrade})
    fields.erase(f);
}

void make_upstream_request(Request& client, Request& out, const Upstream& upstream,
                           std::string target, std::string_view client_ip,
                           std::string_view client_proto) {
  out = Request{};
  // Beast throws on method(verb::unknown): an extension method ("QUERY") is kept as text.
  if (client.method() == http::verb::unknown)
    out.method_string(client.method_string());
  else
    out.method(client.method());
  out.target(target);
  out.version(11);
  const std::string original_host(client[http::field::host]);
  // Repeated X-Forwarded-For lines form one list (RFC 9110 §5.3): keep them all.
  std::string forwarded_for;
  for (const auto& field : client.base())
    if (beast::iequals(field.name_string(), x_forwarded_for) && !field.value().empty()) {
      if (!forwarded_for.empty()) forwarded_for += ", ";
      forwarded_for += field.value();
    }
  for (const auto& field : client.base()) {
    const auto name = field.name_string();
    if (field.name() == http::field::host || field.name() == http::field::content_length ||
        beast::iequals(name, x_forwarded_for) || beast::iequals(name, x_forwarded_proto) ||
        beast::iequals(name, x_forwarded_host))
      continue;
    out.insert(name, field.value());
  }
  remove_hop_by_hop(out.base());
  // The body is already here: an upstream 100 Continue would be taken for the response.
  out.erase(http::field::expect);
  out.set(http::field::host, upstream.host_header);
  forwarded_for = forwarded_for.empty() ? std::string(client_ip)
                                        : forwarded_for + ", " + std::string(client_ip);
  out.set(x_forwarded_for, forwarded_for);
  out.set(x_forwarded_proto, client_proto);
  if (!original_host.empty()) out.set(x_forwarded_host, original_host);
  out.body() = std::move(client.body());
  // The body was read whole, so it travels with a Content-Length, never chunked.
  const bool had_body = client.has_content_length() || client.chunked() || !out.body().empty();
  if (had_body) out.content_length(out.body().size());
  out.keep_alive(true);
}

void make_client_response(Response& res, bool head_request, unsigned client_version,
                          bool keep_alive, std::string_view debug_header,
                          std::string_view upstream_name) {
  const auto status = res.result_int();
  const bool bodiless = head_request || status / 100 == 1 || status == 204 || status == 304;
  const auto declared_length = res[http::field::content_length];
  const std::string length(declared_length);
  remove_hop_by_hop(res.base());
  if (bodiless) {
    // HEAD and 304 announce the length of a body they do not carry.
    res.erase(http::field::content_length);
    if (!length.empty() && status != 204) res.set(http::field::content_length, length);
  } else {
    res.content_length(res.body().size());
  }
  res.version(client_version);
  res.keep_alive(keep_alive);
  if (!debug_header.empty()) res.set(debug_header, upstream_name);
}

namespace {

void append_fields(const http::fields& fields, std::string& out) {
  for (const auto& field : fields) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

void append_version(unsigned version, std::string& out) {
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
}

}  // namespace

void serialize_head(const Request& request, std::string& out) {
  out += request.method_string();
  out += ' ';
  out += request.target();
  out += ' ';
  append_version(request.version(), out);
  out += "\r\n";
  append_fields(request.base(), out);
}

void serialize_head(const Response& response, std::string& out) {
  append_version(response.version(), out);
  const unsigned status = response.result_int();
  out += ' ';
  out += static_cast<char>('0' + status / 100 % 10);
  out += static_cast<char>('0' + status / 10 % 10);
  out += static_cast<char>('0' + status % 10);
  out += ' ';
  const auto reason = response.reason();
  out += reason.empty() ? http::obsolete_reason(response.result()) : reason;
  out += "\r\n";
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
