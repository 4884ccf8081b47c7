#pragma once
// The admin API's logic, free of sockets: one request in, one response out.
// Thread-safety: call from the admin thread only (the Store serialises writes).

#include <string>
#include <utility>
#include <vector>

#include "admin/request_guard.hpp"
#include "figshift/admin.hpp"

namespace figshift::admin {

struct ApiRequest {
  std::string method;  // "GET", "PUT", …
  std::string target;  // "/admin/kv/route%3A%2Forders?x"
  std::string authorization;
  std::string if_match;  // empty when absent
  std::string body;
};

struct ApiResponse {
  unsigned status = 200;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
};

// Runs the route. The server calls it only for a request check_head admitted
// (request_guard.hpp); it checks the token again all the same.
ApiResponse handle(const ApiRequest& request, AdminContext& context);

// The JSON answer to a request check_head refused (401 with WWW-Authenticate).
ApiResponse refusal_response(const Refusal& refusal);

// "%2F" -> "/"; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace figshift::admin
