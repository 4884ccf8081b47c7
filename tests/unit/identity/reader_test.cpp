// Bearer-token verification (#17) against tokens signed by OpenSSL directly:
// each valid kind identifies its user, each invalid kind is refused and
// counted by its reason, and the per-worker cache is a cache.

#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "figshift/identity.hpp"
#include "jwt_test_support.hpp"

namespace figshift {
namespace {

using namespace jwt_test;

constexpr std::int64_t now_ms = 1'800'000'000'000;
constexpr std::int64_t now_s = now_ms / 1000;
const std::string secret(40, 's');

std::string claims(const std::string& sub, std::int64_t exp = now_s + 600, std::string extra = "") {
  return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp) +
         R"(,"iss":"https://issuer.example","aud":["api","other"])" + extra + "}";
}

class JwtReader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = rsa_key().release();
    ec256_ = ec_key("P-256").release();
    ec384_ = ec_key("P-384").release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ec256_);
    EVP_PKEY_free(ec384_);
  }
  void SetUp() override {
    std::string error;
    keys_ =
        parse_jwks(R"({"keys":[)" + oct_jwk(secret, "h1") + "," + rsa_jwk(rsa_, "r1") + "," +
                       ec_jwk(ec256_, "e1", "P-256") + "," + ec_jwk(ec384_, "e2", "P-384") + "]}",
                   error);
    ASSERT_TRUE(keys_) << error;
    reader_.set_keys(keys_);
  }
  std::optional<std::string> claim_of(const std::string& token, std::string_view claim = "sub",
                                      std::int64_t at = now_ms) {
    const auto v = reader_.bearer_claim("Bearer " + token, claim, at);
    return v ? std::optional<std::string>(*v) : std::nullopt;
  }
  std::uint64_t rejected(TokenRejection r) const {
    return stats_.rejected[static_cast<std::size_t>(r)];
  }
  std::string hs(const std::string& payload, const std::string& kid = "h1") {
    return token(R"({"alg":"HS256","kid":")" + kid + "\"}", payload,
                 [&](const std::string& d) { return hmac_sha256(secret, d); });
  }
  std::string signed_by(EVP_PKEY* key, const std::string& alg, const std::string& kid,
                        const std::string& payload) {
    return token(R"({"alg":")" + alg + R"(","kid":")" + kid + R"(","typ":"JWT"})", payload,
                 [&](const std::string& d) { return pkey_sign(key, alg, d); });
  }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* ec256_;
  static EVP_PKEY* ec384_;
  TokenStats stats_;
  UserKeyReader reader_{JwtPolicy{"https://issuer.example", "api", 30, true}, stats_};
  std::shared_ptr<const JwtKeySet> keys_;
};
EVP_PKEY* JwtReader::rsa_ = nullptr;
EVP_PKEY* JwtReader::ec256_ = nullptr;
EVP_PKEY* JwtReader::ec384_ = nullptr;

TEST_F(JwtReader, EveryAlgorithmVerifies) {
  EXPECT_EQ(claim_of(hs(claims("alice"))), "alice");
  EXPECT_EQ(claim_of(signed_by(rsa_, "RS256", "r1", claims("bob"))), "bob");
  EXPECT_EQ(claim_of(signed_by(rsa_, "PS256", "r1", claims("carol"))), "carol");
  EXPECT_EQ(claim_of(signed_by(ec256_, "ES256", "e1", claims("dave"))), "dave");
  EXPECT_EQ(claim_of(signed_by(ec384_, "ES384", "e2", claims("erin"))), "erin");
  EXPECT_EQ(stats_.verified, 5u);
  // Without a kid, the keys of the alg's kind are tried.
  EXPECT_EQ(claim_of(token(R"({"alg":"RS256"})", claims("frank"),
                           [&](const std::string& d) { return pkey_sign(rsa_, "RS256", d); })),
            "frank");
}

TEST_F(JwtReader, OtherClaimsAndNumericIds) {
  EXPECT_EQ(claim_of(hs(claims("alice", now_s + 60, R"(,"uid":12345)")), "uid"), "12345");
  EXPECT_EQ(claim_of(hs(claims("alice", now_s + 60, R"(,"email":"a@x")")), "email"), "a@x");
  EXPECT_EQ(claim_of(hs(claims("alice", now_s + 60, R"(,"uid":1.5)")), "uid"), std::nullopt);
  EXPECT_EQ(claim_of(hs(claims("alice")), "missing"), std::nullopt);
  EXPECT_EQ(claim_of(hs(claims(""))), std::nullopt);
  EXPECT_EQ(rejected(TokenRejection::no_claim), 3u);
}

TEST_F(JwtReader, EachInvalidTokenIsRefusedAndCountedByReason) {
  const std::string good = hs(claims("alice"));
  struct Case {
    std::string token;
    TokenRejection reason;
  };
  const std::string rsa_public_as_secret = rsa_jwk(rsa_, "r1");  // any bytes of the public key
  const std::vector<Case> cases = {
      {hs(claims("a", now_s - 31)), TokenRejection::expired},
      {hs(R"({"sub":"a","exp":)" + std::to_string(now_s + 60) + R"(,"nbf":)" +
          std::to_string(now_s + 31) + R"(,"iss":"https://issuer.example","aud":"api"})"),
       TokenRejection::not_yet_valid},
      {hs(R"({"sub":"a","exp":)" + std::to_string(now_s + 60) +
          R"(,"iss":"https://evil.example","aud":"api"})"),
       TokenRejection::wrong_issuer},
      {hs(R"({"sub":"a","exp":)" + std::to_string(now_s + 60) +
          R"(,"iss":"https://issuer.example","aud":["web"]})"),
       TokenRejection::wrong_audience},
      {hs(claims("a"), "nokey"), TokenRejection::unknown_key},
      {token(R"({"alg":"none"})", claims("a"), [](const std::string&) { return std::string(); }),
       TokenRejection::alg_none},
      {b64url(R"({"alg":"none"})") + "." + b64url(claims("a")) + ".", TokenRejection::alg_none},
      {token(R"({"alg":"NONE","kid":"h1"})", claims("a"),
             [](const std::string&) { return std::string("x"); }),
       TokenRejection::alg_none},
      {token(R"({"alg":"HS256","kid":"r1"})", claims("a"),
             [&](const std::string& d) { return hmac_sha256(rsa_public_as_secret, d); }),
       TokenRejection::key_mismatch},
      {token(R"({"alg":"RS256","kid":"h1"})", claims("a"),
             [&](const std::string& d) { return pkey_sign(rsa_, "RS256", d); }),
       TokenRejection::key_mismatch},
      {token(R"({"alg":"ES256","kid":"e2"})", claims("a"),
             [&](const std::string& d) { return pkey_sign(ec256_, "ES256", d); }),
       TokenRejection::key_mismatch},
      {token(R"({"alg":"EdDSA","kid":"h1"})", claims("a"),
             [&](const std::string& d) { return hmac_sha256(secret, d); }),
       TokenRejection::alg_unsupported},
      {good.substr(0, good.find('.') + 1) + b64url(claims("mallory")) +
           good.substr(good.rfind('.')),
       TokenRejection::bad_signature},
      {signed_by(rsa_, "RS256", "r1", claims("a")).substr(0, 300) + "AAAA" +
           signed_by(rsa_, "RS256", "r1", claims("a")).substr(304),
       TokenRejection::bad_signature},
      {token(R"({"alg":"HS256","kid":"h1"})", claims("a"),
             [](const std::string& d) { return hmac_sha256(std::string(40, 't'), d); }),
       TokenRejection::bad_signature},
      {"abc", TokenRejection::malformed},
      {"a.b.c.d", TokenRejection::malformed},
      {good + "=", TokenRejection::malformed},
      {"e30.e30.", TokenRejection::malformed},            // {} header: no alg
      {hs(R"({"sub":"a"})"), TokenRejection::malformed},  // no exp
      {hs(R"([1,2])"), TokenRejection::malformed},
      {token(R"({"alg":"HS256","kid":"h1","crit":["x"]})", claims("a"),
             [&](const std::string& d) { return hmac_sha256(secret, d); }),
       TokenRejection::malformed},
      {std::string(UserKeyReader::max_token_bytes + 1, 'a'), TokenRejection::oversized},
  };
  for (const Case& c : cases) {
    const std::uint64_t before = rejected(c.reason);
    EXPECT_EQ(claim_of(c.token), std::nullopt) << token_rejection_name(c.reason);
    EXPECT_EQ(rejected(c.reason), before + 1) << token_rejection_name(c.reason) << " " << c.token;
  }
  EXPECT_EQ(stats_.verified, 0u);
}

TEST_F(JwtReader, LeewayAppliesToExpAndNbf) {
  EXPECT_EQ(claim_of(hs(claims("a", now_s - 29))), "a");
  EXPECT_EQ(claim_of(hs(claims("b", now_s - 30))), std::nullopt);
}

TEST_F(JwtReader, NoTokenIsNotCountedAndNoKeysIs) {
  EXPECT_EQ(reader_.bearer_claim("", "sub", now_ms), std::nullopt);
  EXPECT_EQ(reader_.bearer_claim("Basic YTpi", "sub", now_ms), std::nullopt);
  for (auto n : stats_.rejected) EXPECT_EQ(n, 0u);
  reader_.set_keys(nullptr);
  EXPECT_EQ(claim_of(hs(claims("alice"))), std::nullopt);
  EXPECT_EQ(rejected(TokenRejection::no_keys), 1u);
}

TEST_F(JwtReader, VerifiedTokensAreCachedUntilTheyExpire) {
  const std::string t = signed_by(rsa_, "RS256", "r1", claims("alice", now_s + 100));
  EXPECT_EQ(claim_of(t), "alice");
  EXPECT_EQ(claim_of(t), "alice");
  EXPECT_EQ(claim_of(t, "sub", now_ms + 50'000), "alice");
  EXPECT_EQ(stats_.verified, 1u);
  EXPECT_EQ(stats_.cache_hits, 2u);
  EXPECT_EQ(claim_of(t, "sub", now_ms + 130'000), std::nullopt);  // exp + leeway passed
  EXPECT_EQ(rejected(TokenRejection::expired), 1u);
  // New keys forget the cache: a token of a removed key stops working at once.
  std::string error;
  reader_.set_keys(parse_jwks(R"({"keys":[)" + oct_jwk(secret, "h1") + "]}", error));
  EXPECT_EQ(claim_of(t), std::nullopt);
  EXPECT_EQ(rejected(TokenRejection::unknown_key), 1u);
}

TEST_F(JwtReader, WithoutTheCacheEveryRequestVerifies) {
  TokenStats stats;
  UserKeyReader uncached(JwtPolicy{"", "", 30, false}, stats);
  uncached.set_keys(keys_);
  const std::string t = "Bearer " + hs(claims("alice"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(uncached.bearer_claim(t, "sub", now_ms), "alice");
  EXPECT_EQ(stats.verified, 3u);
  EXPECT_EQ(stats.cache_hits, 0u);
}

TEST_F(JwtReader, UserFieldReadsOneFieldOfTheRightName) {
  Snapshot s;
  boost::beast::http::fields f;
  f.insert("X-User", "u1");
  f.insert("Cookie", "a=1; sid=zz");
  f.insert("Authorization", "Bearer " + hs(claims("alice")));
  s.user_key = {UserKey::Kind::header, "x-user"};
  EXPECT_EQ(reader_.user_field(f, s, now_ms), "u1");
  s.user_key = {UserKey::Kind::cookie, "sid"};
  EXPECT_EQ(reader_.user_field(f, s, now_ms), "a=1; sid=zz");
  s.user_key = {UserKey::Kind::jwt, "sub"};
  EXPECT_EQ(reader_.user_field(f, s, now_ms), "alice");
  s.user_key = {};
  EXPECT_EQ(reader_.user_field(f, s, now_ms), std::nullopt);
  f.insert("X-User", "u2");  // twice: the upstream might read either
  s.user_key = {UserKey::Kind::header, "X-User"};
  EXPECT_EQ(reader_.user_field(f, s, now_ms), std::nullopt);
}

TEST(Jwks, RefusesWhatCannotVerifySafely) {
  std::string error;
  auto refused = [&](const std::string& text) {
    return parse_jwks(text, error) == nullptr ? error : std::string("accepted");
  };
  EXPECT_EQ(refused("[]"), "must be a JWKS: a JSON object {\"keys\": [...]}");
  EXPECT_NE(refused(R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})").find("at least 32 bytes"),
            std::string::npos);
  EXPECT_NE(refused(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})").find("2048"),
            std::string::npos);
  EXPECT_NE(refused(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]})").find("kty"),
            std::string::npos);
  EXPECT_NE(refused(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + b64url(std::string(32, '\1')) +
                    R"(","y":")" + b64url(std::string(32, '\2')) + "\"}]}")
                .find("EC"),  // a point off the curve: OpenSSL refuses it
            std::string::npos);
  EXPECT_NE(
      refused(R"({"keys":[{"kty":"oct","use":"enc","k":")" + b64url(secret) + "\"}]}").find("use"),
      std::string::npos);
  EXPECT_NE(refused(R"({"keys":[{"kty":"oct","alg":"RS256","k":")" + b64url(secret) + "\"}]}")
                .find("alg"),
            std::string::npos);
  Key rsa = rsa_key();
  std::string with_private = rsa_jwk(rsa.get(), "r");
  with_private.insert(with_private.size() - 1, R"(,"d":"AQAB")");
  EXPECT_NE(refused(R"({"keys":[)" + with_private + "]}").find("private key"), std::string::npos);
  EXPECT_EQ(refused(R"({"keys":[]})"), "accepted");
}

}  // namespace
}  // namespace figshift
