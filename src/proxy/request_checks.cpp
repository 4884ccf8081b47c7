#include "proxy/request_checks.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <array>

#include "figshift/routing.hpp"

namespace figshift::proxy {

namespace beast = boost::beast;

bool routable_target(std::string_view target) {
  if (target.starts_with('/')) return true;
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  auto scheme = target.substr(0, scheme_end);
  return beast::iequals(scheme, "http") || beast::iequals(scheme, "https");
}

namespace {

// The bytes a uri-host [":" port] may hold: unreserved, sub-delims, '%' of a
// pct-encoding, ':' and the brackets of an IP literal. A table: every request
// checks every byte of its Host.
constexpr std::array<bool, 256> host_bytes = [] {
  std::array<bool, 256> allowed{};
  for (int c = '0'; c <= '9'; ++c) allowed[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) allowed[c] = allowed[c - 'a' + 'A'] = true;
  for (char c : std::string_view("-._~%!$&'()*+,;=:[]")) allowed[static_cast<unsigned char>(c)] = true;
  return allowed;
}();

}  // namespace

bool valid_host(std::string_view host) {
  for (char c : host)
    if (!host_bytes[static_cast<unsigned char>(c)]) return false;
  return true;
}

std::string_view framing_problem(const http::request_header<Fields>& request, unsigned version) {
  int hosts = 0, transfer_encodings = 0, authorizations = 0;
  std::string_view host, transfer_encoding;
  for (const auto& field : request) {  // one pass (see first_field)
    if (field.name() == http::field::host) ++hosts, host = field.value();
    if (field.name() == http::field::transfer_encoding)
      ++transfer_encodings, transfer_encoding = field.value();
    if (field.name() == http::field::authorization) ++authorizations;
  }
  if (hosts > 1) return "more than one Host header";
  // The first decides the user's group and an upstream may read the last:
  // two would let a client pick its group with someone else's credentials.
  if (authorizations > 1) return "more than one Authorization header";
  if (version >= 11 && hosts == 0) return "missing Host header";
  if (hosts == 1 && !valid_host(host)) return "invalid Host header";
  if (transfer_encodings > 1) return "repeated Transfer-Encoding header";
  if (transfer_encodings == 1) {
    if (!beast::iequals(transfer_encoding, "chunked"))
      return "unsupported Transfer-Encoding (only chunked)";
    if (version < 11) return "Transfer-Encoding in an HTTP/1.0 request";
  }
  return {};
}

std::string_view request_problem(const http::request_header<Fields>& request) {
  if (!routable_target(request.target())) return "unsupported request target";
  if (auto problem = framing_problem(request, request.version()); !problem.empty()) return problem;
  return path_problem(split_target(request.target()).path);
}

bool is_websocket_upgrade(const http::request_header<Fields>& request) {
  if (request.method() != http::verb::get || request.version() < 11) return false;
  bool upgrade_token = false;
  for (auto it = first_field(request, http::field::connection);
       it != request.end() && it->name() == http::field::connection; ++it)
    for (auto token : http::token_list(it->value()))
      if (beast::iequals(token, "upgrade")) upgrade_token = true;
  return upgrade_token && beast::iequals(field_value(request, http::field::upgrade), "websocket");
}

}  // namespace figshift::proxy
