#pragma once
// Keys and tokens made with OpenSSL directly (not with src/identity), so the
// verifier is checked against an independent signer.

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace figshift::jwt_test {

inline std::string b64url(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += alphabet[(bits << (6 - count)) & 63];
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Key rsa_key() {
  return Key(EVP_RSA_gen(2048));
}
inline Key ec_key(const char* curve) {
  return Key(EVP_EC_gen(curve));
}

inline std::string bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (!EVP_PKEY_get_bn_param(key, name, &bn)) throw std::runtime_error("bn param");
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// {"kty":"RSA","kid":…,"n":…,"e":…}
inline std::string rsa_jwk(EVP_PKEY* key, const std::string& kid, const std::string& alg = "") {
  return R"({"kty":"RSA","kid":")" + kid + R"(","n":")" + b64url(bn_param(key, "n")) +
         R"(","e":")" + b64url(bn_param(key, "e")) + "\"" +
         (alg.empty() ? "" : R"(,"alg":")" + alg + "\"") + "}";
}

inline std::string ec_jwk(EVP_PKEY* key, const std::string& kid, const std::string& curve) {
  unsigned char point[200];
  std::size_t length = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length);
  const std::size_t half = (length - 1) / 2;
  const std::string x(reinterpret_cast<char*>(point) + 1, half),
      y(reinterpret_cast<char*>(point) + 1 + half, half);
  return R"({"kty":"EC","kid":")" + kid + R"(","crv":")" + curve + R"(","x":")" + b64url(x) +
         R"(","y":")" + b64url(y) + "\"}";
}

inline std::string oct_jwk(const std::string& secret, const std::string& kid) {
  return R"({"kty":"oct","kid":")" + kid + R"(","k":")" + b64url(secret) + "\"}";
}

inline std::string hmac_sha256(const std::string& secret, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<char*>(mac), length);
}

// alg RS256, PS256, ES256 or ES384 with `key`.
inline std::string pkey_sign(EVP_PKEY* key, const std::string& alg, const std::string& data) {
  const EVP_MD* md = alg == "ES384" ? EVP_sha384() : EVP_sha256();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, md, nullptr, key);
  if (alg == "PS256") {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
  }
  std::size_t length = 0;
  EVP_DigestSign(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  std::string sig(length, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &length,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  sig.resize(length);
  EVP_MD_CTX_free(ctx);
  if (alg[0] != 'E') return sig;
  // DER ECDSA-Sig-Value -> R || S, each padded to the field size (RFC 7518 §3.4).
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* der = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const int half = alg == "ES384" ? 48 : 32;
  std::string raw(static_cast<std::size_t>(2 * half), '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(der), reinterpret_cast<unsigned char*>(raw.data()), half);
  BN_bn2binpad(ECDSA_SIG_get0_s(der), reinterpret_cast<unsigned char*>(raw.data()) + half, half);
  ECDSA_SIG_free(der);
  return raw;
}

// header.payload.signature with `sign` over the first two parts.
template <class Sign>
std::string token(const std::string& header_json, const std::string& payload_json, Sign sign) {
  const std::string signed_part = b64url(header_json) + "." + b64url(payload_json);
  return signed_part + "." + b64url(sign(signed_part));
}

}  // namespace figshift::jwt_test
