// The control commands' admin API client (src/cli/admin_client.hpp), the parts
// that run without a daemon: the --admin URL and the token it accepts, the exit
// code each answer becomes, key and ETag encoding (docs/admin-api.md "CLI").
// The argument parsing of `figshift` itself lives in main() and is tested
// through the binary (tests/integration/test_cli.py, test_control_cli.py).
#include "cli/admin_client.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "../store/store_test_support.hpp"

namespace figshift::cli {
namespace {

using store_test::TempDir;
using store_test::write_text;

// Sets or unsets an environment variable for one test, then puts it back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class CliAdminClient : public ::testing::Test {
 protected:
  ScopedEnv no_url{"FIGSHIFT_ADMIN_URL", std::nullopt};
  ScopedEnv no_token{"FIGSHIFT_ADMIN_TOKEN", std::nullopt};

  static AdminOptions with_url(const std::string& url) {
    AdminOptions o;
    o.url = url;
    return o;
  }

  // The exit code AdminClient's constructor fails with, or nullopt when it accepts the options.
  static std::optional<int> refusal(const AdminOptions& options) {
    try {
      AdminClient client(options);
      return std::nullopt;
    } catch (const CliError& e) {
      return e.exit_code;
    }
  }
};

TEST_F(CliAdminClient, TheDefaultUrlAndTheEnvironmentVariable) {
  EXPECT_EQ(AdminClient(AdminOptions{}).url(), "http://127.0.0.1:9901");
  ScopedEnv url("FIGSHIFT_ADMIN_URL", "http://127.0.0.1:19901");
  EXPECT_EQ(AdminClient(AdminOptions{}).url(), "http://127.0.0.1:19901");
  EXPECT_EQ(AdminClient(with_url("http://localhost:7")).url(), "http://localhost:7") << "--admin wins";
}

TEST_F(CliAdminClient, OnlyPlainHttpUrlsAreAccepted) {
  for (const char* good : {"http://127.0.0.1:9901", "http://localhost", "http://[::1]:9901",
                           "http://figshift-admin.internal:9901/base", "HTTP://127.0.0.1:9901"})
    EXPECT_EQ(refusal(with_url(good)), std::nullopt) << good;
  // docs/admin-api.md: exit 2, a usage error, for an https:// admin URL and bad options.
  for (const char* bad : {"https://127.0.0.1:9901", "ftp://127.0.0.1", "127.0.0.1:9901", "http://",
                          "http://:9901", "http://127.0.0.1:99999",
                          "http://127.0.0.1:port", "http://[::1:9901", "http://user:pw@127.0.0.1:9901"})
    EXPECT_EQ(refusal(with_url(bad)), kExitUsage) << bad;
}

TEST_F(CliAdminClient, AnUnreadableOrEmptyTokenFileIsExit1) {
  TempDir dir;
  AdminOptions o = with_url("http://127.0.0.1:9901");
  o.token_file = (dir / "missing").string();
  EXPECT_EQ(refusal(o), kExitError);
  write_text(dir / "empty", " \n");
  o.token_file = (dir / "empty").string();
  EXPECT_EQ(refusal(o), kExitError);
  write_text(dir / "token", "  s3cret\n");  // surrounding whitespace is ignored
  o.token_file = (dir / "token").string();
  EXPECT_EQ(refusal(o), std::nullopt);
}

TEST_F(CliAdminClient, EachAnswerBecomesItsDocumentedExitCode) {
  const AdminClient client(with_url("http://127.0.0.1:9901"));
  const auto exit_code = [&](int status) -> std::optional<int> {
    try {
      client.check(AdminResponse{status, R"({"error":"why"})", ""}, "PUT", "/admin/kv/k");
      return std::nullopt;
    } catch (const CliError& e) {
      return e.exit_code;
    }
  };
  EXPECT_EQ(exit_code(200), std::nullopt);
  EXPECT_EQ(exit_code(204), std::nullopt);
  EXPECT_EQ(exit_code(400), 6);  // invalid: the write was refused
  EXPECT_EQ(exit_code(401), 4);  // unauthorized
  EXPECT_EQ(exit_code(412), 5);  // precondition failed
  EXPECT_EQ(exit_code(404), 1);  // any other error
  EXPECT_EQ(exit_code(405), 1);
  EXPECT_EQ(exit_code(500), 1);
  EXPECT_EQ(exit_code(503), 1);
}

TEST_F(CliAdminClient, TheTokenIsNeverInAMessage) {
  TempDir dir;
  write_text(dir / "token", "tok-never-printed-7731\n");
  AdminOptions o = with_url("http://127.0.0.1:9901");
  o.token_file = (dir / "token").string();
  const AdminClient client(o);
  for (int status : {400, 401, 403, 412, 500}) {
    try {
      client.check(AdminResponse{status, R"({"error":"unauthorized"})", ""}, "GET", "/admin/status");
      ADD_FAILURE() << status << " did not fail";
    } catch (const CliError& e) {
      EXPECT_EQ(std::string(e.what()).find("tok-never-printed"), std::string::npos) << e.what();
    }
  }
}

TEST_F(CliAdminClient, RunGuardedPrintsTheMessageAndReturnsTheExitCode) {
  testing::internal::CaptureStderr();
  const int code = run_guarded([]() -> int { throw CliError(kExitPrecondition, "the store changed"); });
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 5);
  EXPECT_EQ(err, "figshift: the store changed\n");
  EXPECT_EQ(run_guarded([] { return 0; }), 0);
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_guarded([]() -> int { throw std::runtime_error("boom"); }), 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "figshift: boom\n");
}

TEST(CliPercentEncode, KeysBecomeOnePathSegment) {
  // docs/admin-api.md: route:/orders -> /admin/kv/route%3A%2Forders.
  EXPECT_EQ(percent_encode("route:/orders"), "route%3A%2Forders");
  // RFC 3986 unreserved characters stay; everything else, byte by byte.
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percent_encode("a b?c#d%e&f+g"), "a%20b%3Fc%23d%25e%26f%2Bg");
  EXPECT_EQ(percent_encode("route:/\xC3\xBC" "ber"), "route%3A%2F%C3%BCber");  // "über", UTF-8
  EXPECT_EQ(percent_encode(""), "");
}

TEST(CliNormalizeEtag, QuotesWhatTheShellAteAndKeepsTheRest) {
  EXPECT_EQ(normalize_etag("abc123"), "\"abc123\"");
  EXPECT_EQ(normalize_etag("\"abc123\""), "\"abc123\"");
  EXPECT_EQ(normalize_etag("*"), "*");
  EXPECT_EQ(normalize_etag("W/\"abc\""), "W/\"abc\"");
}

TEST(CliErrorMessage, TheErrorFieldOrTheBody) {
  EXPECT_EQ(error_message({400, R"({"error":"traffic-split: must be an integer from 0 to 100"})", ""}),
            "traffic-split: must be an integer from 0 to 100");
  const std::string plain = error_message({502, "Bad Gateway", ""});
  EXPECT_NE(plain.find("Bad Gateway"), std::string::npos) << plain;
}

}  // namespace
}  // namespace figshift::cli
