#include "admin/dashboard.hpp"

#include "figshift_dashboard_html.hpp"  // generated from assets/dashboard.html (see CMakeLists.txt)

namespace figshift::admin {

std::string_view dashboard_html() {
  return {reinterpret_cast<const char*>(figshift_dashboard_html), figshift_dashboard_html_size};
}

ApiResponse dashboard_response() {
  ApiResponse res{200, std::string(dashboard_html()), {}};
  res.content_type = "text/html; charset=utf-8";
  // Cache-Control: no-store is set on every admin answer by the server; repeated here
  // because this is the one answer a browser would otherwise be tempted to cache.
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'self' 'unsafe-inline'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  return res;
}

}  // namespace figshift::admin
