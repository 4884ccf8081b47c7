// Bearer tokens through the per-worker verifier of user-key jwt (#17):
//  - no crash, no sanitizer report, no exception, whatever the bytes;
//  - exactly one outcome is counted per token (verified, cached or one
//    rejection reason), and a token is refused or names a non-empty user;
//  - what verifies once verifies again from the cache with the same user.
//
// The first byte picks how the rest is used: odd, as the Authorization field
// as is; even, split at the first '\n' into a JOSE header and a claims set
// that are then signed with the HMAC key (kid "h1"), so the fuzzer reaches
// the claim checks behind a valid signature.

#include <openssl/hmac.h>

#include <cstdint>
#include <string>

#include "../unit/identity/jwt_test_support.hpp"  // b64url
#include "figshift/identity.hpp"
#include "fuzz_support.hpp"

namespace {

using figshift::fuzz::as_view;
using figshift::jwt_test::b64url;

const std::string secret(32, 'k');

std::string hs256(std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<char*>(mac), length);
}

std::uint64_t outcomes(const figshift::TokenStats& s) {
  std::uint64_t n = s.verified + s.cache_hits;
  for (auto r : s.rejected) n += r;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static figshift::TokenStats stats;
  static figshift::UserKeyReader reader({"https://issuer.example", "api", 30, true}, stats);
  static const bool keyed = [] {
    std::string error;
    // A fixed P-256 public key (RFC 7515 appendix A.3) beside the HMAC secret.
    reader.set_keys(
        figshift::parse_jwks(R"({"keys":[{"kty":"oct","kid":"h1","k":")" + b64url(secret) +
                                 R"("},{"kty":"EC","kid":"e1","crv":"P-256",)"
                                 R"("x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
                                 R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})",
                             error));
    return error.empty();
  }();
  FUZZ_CHECK(keyed);

  std::string authorization;
  const std::string_view rest = as_view(data + 1, size - 1);
  if (data[0] & 1) {
    authorization = std::string(rest);
  } else {
    const std::size_t nl = rest.find('\n');
    const std::string_view header = rest.substr(0, nl);
    const std::string_view claims = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
    const std::string signed_part = b64url(header) + "." + b64url(claims);
    authorization = "Bearer " + signed_part + "." + b64url(hs256(signed_part));
  }

  constexpr std::int64_t now_ms = 1'800'000'000'000;
  const std::uint64_t before = outcomes(stats);
  const auto claim = reader.bearer_claim(authorization, (data[0] & 2) ? "sub" : "uid", now_ms);
  const std::uint64_t counted = outcomes(stats) - before;
  // A field that is not a Bearer credential is no token: nothing is counted.
  FUZZ_CHECK(counted <= 1);
  if (claim) {
    FUZZ_CHECK(counted == 1);
    FUZZ_CHECK(!claim->empty());
    const std::string first(*claim);
    const std::uint64_t hits = stats.cache_hits;
    const auto again = reader.bearer_claim(authorization, (data[0] & 2) ? "sub" : "uid", now_ms);
    FUZZ_CHECK(again && *again == first);
    FUZZ_CHECK(stats.cache_hits == hits + 1);
  }
  return 0;
}
