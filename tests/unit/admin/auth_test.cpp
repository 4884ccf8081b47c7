// The admin token (include/figshift/admin.hpp, docs/admin-api.md
// "Authentication"): where it comes from (admin.token_file, admin.token_env),
// the refusals at start, and the check of an Authorization header.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "../store/store_test_support.hpp"
#include "figshift/admin.hpp"
#include "figshift/config.hpp"

namespace figshift {
namespace {

using store_test::TempDir;
using store_test::write_text;

TEST(AdminBearerMatches, TheRightTokenOnly) {
  EXPECT_TRUE(bearer_matches("Bearer s3cret-token", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("Bearer s3cret-tokeN", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("Bearer s3cret", "s3cret-token")) << "a prefix of the token";
  EXPECT_FALSE(bearer_matches("Bearer s3cret-token-and-more", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("Bearer ", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("s3cret-token", "s3cret-token")) << "no scheme";
}

TEST(AdminBearerMatches, TheSchemeIsBearerInAnyCase) {
  // RFC 9110 §11.1: the authentication scheme is case-insensitive.
  EXPECT_TRUE(bearer_matches("bearer s3cret-token", "s3cret-token"));
  EXPECT_TRUE(bearer_matches("BEARER s3cret-token", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("Basic s3cret-token", "s3cret-token"));
  EXPECT_FALSE(bearer_matches("Token s3cret-token", "s3cret-token"));
}

Config loopback_config() {
  Config c;
  c.admin.listen.address = "127.0.0.1";
  return c;
}

TEST(AdminLoadToken, NoTokenOnLoopbackIsAllowed) {
  EXPECT_EQ(load_admin_token(loopback_config()), "");
  Config v6 = loopback_config();
  v6.admin.listen.address = "::1";
  EXPECT_EQ(load_admin_token(v6), "");
}

TEST(AdminLoadToken, OffLoopbackATokenIsMandatory) {
  Config c = loopback_config();
  c.admin.listen.address = "0.0.0.0";
  EXPECT_THROW(load_admin_token(c), ConfigError);
  c.admin.listen.address = "10.1.2.3";
  EXPECT_THROW(load_admin_token(c), ConfigError);

  TempDir dir;
  write_text(dir / "admin.token", "t0ken\n");
  ::chmod((dir / "admin.token").c_str(), 0600);
  c.admin.token_file = dir / "admin.token";
  EXPECT_EQ(load_admin_token(c), "t0ken");
}

TEST(AdminLoadToken, FromAFileWithoutTheTrailingNewline) {
  TempDir dir;
  write_text(dir / "admin.token", "s3cret-token\n");
  ::chmod((dir / "admin.token").c_str(), 0600);
  Config c = loopback_config();
  c.admin.token_file = dir / "admin.token";
  EXPECT_EQ(load_admin_token(c), "s3cret-token");
}

TEST(AdminLoadToken, AMissingOrEmptyFileIsAnErrorNamingTheSetting) {
  TempDir dir;
  Config c = loopback_config();
  c.admin.token_file = dir / "missing.token";
  try {
    load_admin_token(c);
    ADD_FAILURE() << "a missing token file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("admin.token_file"), std::string::npos) << e.what();
  }
  write_text(dir / "empty.token", "\n");
  c.admin.token_file = dir / "empty.token";
  EXPECT_THROW(load_admin_token(c), ConfigError) << "an empty token would let anyone in";
}

TEST(AdminLoadToken, FromAnEnvironmentVariable) {
  const std::string name = "FIGSHIFT_UNIT_ADMIN_TOKEN_" + std::to_string(::getpid());
  Config c = loopback_config();
  c.admin.token_env = name;
  ::unsetenv(name.c_str());
  try {
    load_admin_token(c);
    ADD_FAILURE() << "an unset token variable was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("admin.token_env"), std::string::npos) << e.what();
  }
  ::setenv(name.c_str(), "", 1);
  EXPECT_THROW(load_admin_token(c), ConfigError) << "an empty token would let anyone in";
  ::setenv(name.c_str(), "env-token", 1);
  EXPECT_EQ(load_admin_token(c), "env-token");
  ::unsetenv(name.c_str());
}

}  // namespace
}  // namespace figshift
