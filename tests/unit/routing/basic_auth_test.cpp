#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "figshift/routing.hpp"
#include "routing_test_support.hpp"

namespace figshift {
namespace {

using routing_test::base64_encode;

// "user:pw" is dXNlcjpwdw== in RFC 4648 base64.
constexpr const char* user_pw = "dXNlcjpwdw==";

std::optional<std::string> user(const char* s) {
  return std::string(s);
}

TEST(RoutingBasicAuth, PlainCredentials) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw=="), user("user"));
  EXPECT_EQ(basic_auth_username("Basic " + base64_encode("alice:wonderland")), user("alice"));
}

TEST(RoutingBasicAuth, SchemeIsCaseInsensitive) {
  for (const char* scheme : {"basic", "BASIC", "Basic", "bAsIc"}) {
    EXPECT_EQ(basic_auth_username(std::string(scheme) + " " + user_pw), user("user")) << scheme;
  }
}

TEST(RoutingBasicAuth, OneOrMoreSpacesAfterScheme) {
  EXPECT_EQ(basic_auth_username("Basic  dXNlcjpwdw=="), user("user"));
  EXPECT_EQ(basic_auth_username("Basic     dXNlcjpwdw=="), user("user"));
}

TEST(RoutingBasicAuth, TabIsNotTheSeparator) {
  // RFC 7235 §2.1: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ].
  EXPECT_EQ(basic_auth_username("Basic\tdXNlcjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic \tdXNlcjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("BasicdXNlcjpwdw=="), std::nullopt);
}

TEST(RoutingBasicAuth, SurroundingWhitespaceOfTheFieldValueIsIgnored) {
  // RFC 9110 §5.5: a field value excludes leading and trailing whitespace.
  EXPECT_EQ(basic_auth_username(" Basic dXNlcjpwdw=="), user("user"));
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw== \t"), user("user"));
  EXPECT_EQ(basic_auth_username("\tBasic dXNlcjpwdw=="), user("user"));
}

TEST(RoutingBasicAuth, OtherSchemesAreAnonymous) {
  EXPECT_EQ(basic_auth_username("Bearer dXNlcjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Bearer x"), std::nullopt);
  EXPECT_EQ(basic_auth_username("Digest username=\"user\""), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basicx dXNlcjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basi dXNlcjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("dXNlcjpwdw=="), std::nullopt);
}

TEST(RoutingBasicAuth, MissingOrEmptyToken) {
  EXPECT_EQ(basic_auth_username(""), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic"), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic "), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic    "), std::nullopt);
}

TEST(RoutingBasicAuth, UsernameIsTextBeforeFirstColon) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcg=="), std::nullopt);  // "user": no colon
  EXPECT_EQ(basic_auth_username("Basic OnB3"), user(""));          // ":pw": empty user is a user
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwOnc="), user("user"));  // "user:p:w"
  EXPECT_EQ(basic_auth_username("Basic dXNlcjo="), user("user"));      // "user:"
  EXPECT_EQ(basic_auth_username("Basic Og=="), user(""));              // ":"
}

TEST(RoutingBasicAuth, UsernameBytesAreReturnedUndecoded) {
  EXPECT_EQ(basic_auth_username("Basic YQBiOnB3"), std::string("a\0b", 3));  // "a\0b:pw"
  EXPECT_EQ(basic_auth_username("Basic " + base64_encode("\xFF\xC3:pw")), std::string("\xFF\xC3"));
  EXPECT_EQ(basic_auth_username("Basic " + base64_encode("Zo\xC3\xAB:pw")),
            std::string("Zo\xC3\xAB"));
}

TEST(RoutingBasicAuth, BadAlphabet) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw-="), std::nullopt);  // base64url
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwd_=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpw.w=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNl cjpwdw=="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw==\x01"), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw\xC3\xA9="), std::nullopt);
}

TEST(RoutingBasicAuth, WrongPadding) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw="), std::nullopt);    // one '=' missing
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw==="), std::nullopt);  // one too many
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw===="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpw=dw="), std::nullopt);  // '=' inside
  EXPECT_EQ(basic_auth_username("Basic =dXNlcjpwdw="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwOnc=="), std::nullopt);  // 3 chars + "=="
  EXPECT_EQ(basic_auth_username("Basic OnB3===="), std::nullopt);       // a whole quantum of '='
  EXPECT_EQ(basic_auth_username("Basic ="), std::nullopt);
  EXPECT_EQ(basic_auth_username("Basic =="), std::nullopt);
}

TEST(RoutingBasicAuth, PaddingIsOptional) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdw"), user("user"));   // 10 chars
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwOnc"), user("user"));  // 11 chars
  EXPECT_EQ(basic_auth_username("Basic " + base64_encode("bob:x", false)), user("bob"));
}

TEST(RoutingBasicAuth, UnpaddedLengthOneMoreThanMultipleOfFourIsRejected) {
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwd"), std::nullopt);  // 9 chars
  EXPECT_EQ(basic_auth_username("Basic OnB3A"), std::nullopt);      // 5 chars
  EXPECT_EQ(basic_auth_username("Basic A"), std::nullopt);
}

TEST(RoutingBasicAuth, NonZeroTrailingBitsAreAccepted) {
  // 'x' differs from 'w' only in bits that the padding discards, as Node allows.
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdx=="), user("user"));
  EXPECT_EQ(basic_auth_username("Basic dXNlcjpwdx"), user("user"));
  EXPECT_EQ(basic_auth_username("Basic dXNlcjp="), user("user"));  // "user:" with a stray bit
}

TEST(RoutingBasicAuth, RoundTripsEveryLengthAndByte) {
  // Every byte value, at every position within a base64 quantum, padded or not.
  for (int pad = 0; pad < 2; ++pad) {
    for (int b = 0; b < 256; ++b) {
      for (std::size_t prefix = 0; prefix < 3; ++prefix) {
        if (b == ':') continue;
        std::string name(prefix, 'x');
        name += static_cast<char>(b);
        const std::string header = "Basic " + base64_encode(name + ":pw", pad == 1);
        EXPECT_EQ(basic_auth_username(header), name) << header;
      }
    }
  }
}

}  // namespace
}  // namespace figshift
