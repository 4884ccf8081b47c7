// base64url, algorithm names and signature checks (RFC 7515, RFC 7518) on
// OpenSSL 3's EVP API. Nothing here throws; failures are plain false/nullopt.

#include "identity/jose.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <array>

namespace figshift::jose {
namespace {

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

const EVP_MD* digest_of(Alg alg) {
  switch (alg) {
    case Alg::hs256:
    case Alg::rs256:
    case Alg::ps256:
    case Alg::es256:
      return EVP_sha256();
    case Alg::hs384:
    case Alg::rs384:
    case Alg::es384:
      return EVP_sha384();
    case Alg::hs512:
    case Alg::rs512:
      return EVP_sha512();
  }
  return nullptr;
}

struct Deleters {
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Deleters>;

BIGNUM* to_bn(std::string_view bytes) {
  return BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                   static_cast<int>(bytes.size()), nullptr);
}

bool verify_hmac(const EVP_MD* md, std::string_view secret, std::string_view data,
                 std::string_view signature) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (!HMAC(md, secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &length))
    return false;
  // Constant time: a timing difference would let a client find a valid MAC byte by byte.
  return signature.size() == length && CRYPTO_memcmp(mac.data(), signature.data(), length) == 0;
}

// JWS ECDSA signatures are R || S, each as long as the curve's field (RFC
// 7518 §3.4); OpenSSL verifies the DER form.
std::optional<std::string> ecdsa_to_der(std::string_view raw, std::size_t half) {
  if (raw.size() != 2 * half) return std::nullopt;
  Owned<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = to_bn(raw.substr(0, half));
  BIGNUM* s = to_bn(raw.substr(half));
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return std::nullopt;
  return der;
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;  // 6 bits cannot make a byte
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = base64url_value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

std::optional<Alg> parse_alg(std::string_view name) {
  static constexpr std::pair<std::string_view, Alg> names[] = {
      {"HS256", Alg::hs256}, {"HS384", Alg::hs384}, {"HS512", Alg::hs512},
      {"RS256", Alg::rs256}, {"RS384", Alg::rs384}, {"RS512", Alg::rs512},
      {"PS256", Alg::ps256}, {"ES256", Alg::es256}, {"ES384", Alg::es384}};
  for (const auto& [text, alg] : names)
    if (text == name) return alg;
  return std::nullopt;
}

std::string_view alg_name(Alg alg) {
  static constexpr std::string_view names[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                               "RS512", "PS256", "ES256", "ES384"};
  return names[static_cast<std::size_t>(alg)];
}

bool key_fits(const Jwk& key, Alg alg) {
  if (!key.alg.empty() && key.alg != alg_name(alg)) return false;
  switch (alg) {
    case Alg::hs256:
    case Alg::hs384:
    case Alg::hs512:
      return key.type == Jwk::Type::oct &&
             key.secret.size() >= static_cast<std::size_t>(EVP_MD_get_size(digest_of(alg)));
    case Alg::rs256:
    case Alg::rs384:
    case Alg::rs512:
    case Alg::ps256:
      return key.type == Jwk::Type::rsa;
    case Alg::es256:
      return key.type == Jwk::Type::ec && key.curve == "P-256";
    case Alg::es384:
      return key.type == Jwk::Type::ec && key.curve == "P-384";
  }
  return false;
}

Pkey make_public_key(const Jwk& key, std::string& error) {
  if (key.type == Jwk::Type::oct) return nullptr;
  Owned<OSSL_PARAM_BLD> build(OSSL_PARAM_BLD_new());
  Owned<BIGNUM> n, e;
  std::string point;
  const char* kind = "RSA";
  if (key.type == Jwk::Type::rsa) {
    n.reset(to_bn(key.n));
    e.reset(to_bn(key.e));
    if (!build || !n || !e ||
        !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get())) {
      error = "cannot build the RSA key";
      return nullptr;
    }
  } else {
    kind = "EC";
    point = '\x04' + key.x + key.y;  // uncompressed point (SEC 1 §2.3.3)
    if (!build ||
        !OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, key.curve.c_str(),
                                         0) ||
        !OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size())) {
      error = "cannot build the EC key";
      return nullptr;
    }
  }
  Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(build.get()));
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, kind, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    error = std::string("OpenSSL refuses the ") + kind + " key";
    ERR_clear_error();
    return nullptr;
  }
  Pkey pkey(raw);
  if (key.type == Jwk::Type::ec) {
    // A point off the curve is an invalid-curve attack's way in.
    Owned<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) <= 0) {
      error = "the EC point is not on the curve";
      ERR_clear_error();
      return nullptr;
    }
  }
  return pkey;
}

namespace {

bool verify_with_openssl(Alg alg, const Jwk& key, EVP_PKEY* pkey, std::string_view signed_part,
                         std::string_view signature) {
  const EVP_MD* md = digest_of(alg);
  if (key.type == Jwk::Type::oct) return verify_hmac(md, key.secret, signed_part, signature);
  if (!pkey) return false;
  std::optional<std::string> der;
  if (alg == Alg::es256 || alg == Alg::es384) {
    der = ecdsa_to_der(signature, alg == Alg::es256 ? 32 : 48);
    if (!der) return false;
    signature = *der;
  }
  Owned<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey) <= 0) return false;
  if (alg == Alg::ps256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
                            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0))
    return false;
  if (alg != Alg::ps256 && key.type == Jwk::Type::rsa &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
    return false;
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

}  // namespace

bool verify_signature(Alg alg, const Jwk& key, EVP_PKEY* pkey, std::string_view signed_part,
                      std::string_view signature) {
  const bool ok = verify_with_openssl(alg, key, pkey, signed_part, signature);
  // A failed check leaves entries on this thread's OpenSSL error queue, where
  // the next TLS operation of the same worker would read them as its own.
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace figshift::jose
