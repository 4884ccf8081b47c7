#pragma once
// A small synchronous client for the admin HTTP API (docs/admin-api.md), used
// by the control subcommands (shift, rollback, status, kv). Plain http:// only:
// the admin API listens on loopback. The bearer token is sent but never
// printed, not even in error messages.

#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "figshift/cli.hpp"

namespace figshift::cli {

// Process exit codes of the control subcommands (documented in `figshift --help`
// and docs/admin-api.md, "CLI").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitUnauthorized = 4;
inline constexpr int kExitPrecondition = 5;
inline constexpr int kExitInvalid = 6;

// An error that ends the command; `exit_code` is one of the kExit* above.
struct CliError : std::runtime_error {
  CliError(int code, const std::string& message) : std::runtime_error(message), exit_code(code) {}
  int exit_code;
};

struct AdminResponse {
  int status = 0;
  std::string body;
  std::string etag;  // the ETag header, verbatim; empty when absent
};

class AdminClient {
 public:
  // Parses the base URL and reads the token (--token-file, else the
  // FIGSHIFT_ADMIN_TOKEN environment variable). Throws CliError.
  explicit AdminClient(const AdminOptions& options);

  // One request on a fresh connection, within the deadline. `target` is the
  // path (already percent-encoded), appended to the base URL's path. Throws
  // CliError(kExitUnreachable) when the API cannot be reached or does not
  // answer in time; never throws for an HTTP error status.
  AdminResponse request(std::string_view method, std::string_view target,
                        std::string_view body = {}, std::string_view if_match = {},
                        std::string_view content_type = "application/json") const;

  // request() + expects 2xx: otherwise throws CliError with the exit code and
  // message for that status (401 -> 4, 412 -> 5, 400 -> 6, others -> 1).
  AdminResponse call(std::string_view method, std::string_view target, std::string_view body = {},
                     std::string_view if_match = {},
                     std::string_view content_type = "application/json") const;

  // Throws the CliError for a non-2xx response (see call()); returns otherwise.
  void check(const AdminResponse& response, std::string_view method, std::string_view target) const;

  const std::string& url() const { return url_; }

 private:
  std::string url_;   // as given, for messages (never holds the token)
  std::string host_;  // for connecting: name or address, without brackets
  std::string port_;
  std::string host_header_;
  std::string base_path_;  // "" or "/prefix" without a trailing slash
  std::string token_;
  std::chrono::milliseconds timeout_;
};

// Runs a command body: a CliError or other exception is printed to stderr as
// "figshift: <message>" and turned into its exit code.
int run_guarded(const std::function<int()>& body);

// Percent-encodes everything but RFC 3986 unreserved characters:
// "route:/orders" -> "route%3A%2Forders".
std::string percent_encode(std::string_view s);

// Normalises an entity tag given on the command line: `*`, `"…"` and `W/"…"`
// are kept, anything else is quoted (shells eat the quotes of "abc").
std::string normalize_etag(std::string_view etag);

// The body of an answer to `what` ("GET /admin/status") as JSON; throws
// CliError(kExitError) when it is not JSON.
nlohmann::json parse_json(const AdminResponse& response, std::string_view what);

// The `{"error":"…"}` message of an error body, or the body itself (shortened).
std::string error_message(const AdminResponse& response);

}  // namespace figshift::cli
