#pragma once
// The checks a request head passes before it is routed: pure functions over a
// parsed head, no I/O. The session calls them in order; the unit tests and the
// request-head fuzz target call the same functions (never a copy).
// Thread-safety: none needed (pure).

#include <string_view>

#include "proxy/http_rewrite.hpp"

namespace figshift::proxy {

// Origin form, or absolute form for a proxy-aware client; never "*" or authority form.
bool routable_target(std::string_view target);

// uri-host [ ":" port ] (RFC 9110 §7.2): no userinfo, path, spaces or controls.
bool valid_host(std::string_view host);

// Requests an upstream could frame or address differently from us are refused
// (RFC 9112 §3.2 and §6.1): that difference is what request smuggling
// exploits. Empty when none; else what is wrong, for a 400.
std::string_view framing_problem(const http::request_header<Fields>& request, unsigned version);

// The first problem of a head that the proxy refuses before routing (target
// form, framing, path; see path_problem in figshift/routing.hpp), or empty.
std::string_view request_problem(const http::request_header<Fields>& request);

// A WebSocket opening handshake (RFC 6455 §4.1): GET over HTTP/1.1 with
// `Connection: upgrade` (a token of it) and `Upgrade: websocket` (one token,
// case-insensitive). Only such a request may become a tunnel, and only after
// the upstream answered it 101.
bool is_websocket_upgrade(const http::request_header<Fields>& request);

}  // namespace figshift::proxy
