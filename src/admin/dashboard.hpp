#pragma once
// The live migration dashboard (GET / on the admin listener): one self-contained
// HTML page, src/admin/assets/dashboard.html, embedded into the binary at build time.
// The page itself carries no data and is served without the token; everything it
// fetches (/admin/status, /metrics, the shift and rollback calls) needs it.

#include <string_view>

#include "admin/admin_api.hpp"

namespace figshift::admin {

// The page's bytes.
std::string_view dashboard_html();

// 200 with the page and its headers: text/html, no-store, a strict
// Content-Security-Policy (inline script and style only, fetches to the admin origin).
ApiResponse dashboard_response();

}  // namespace figshift::admin
