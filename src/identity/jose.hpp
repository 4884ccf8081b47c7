#pragma once
// JOSE building blocks shared by the JWKS parser and the token verifier:
// base64url (RFC 7515 §2, no padding), the algorithms figshift verifies
// (RFC 7518 §3) and signature checks with OpenSSL 3's EVP API.
// Thread-safety: pure functions, except that a PublicKey must be used by one
// thread at a time (each worker builds its own from the shared Jwk).

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "figshift/identity.hpp"

namespace figshift::jose {

// Strict base64url: the URL-safe alphabet only, no padding, no whitespace.
std::optional<std::string> base64url_decode(std::string_view text);

enum class Alg { hs256, hs384, hs512, rs256, rs384, rs512, ps256, es256, es384 };
std::optional<Alg> parse_alg(std::string_view name);
std::string_view alg_name(Alg alg);

// Whether `key` may verify `alg`: its kind (oct: HS, RSA: RS and PS, EC with
// the alg's curve: ES), its "alg" when it names one, and an HMAC secret at
// least as long as the hash (RFC 7518 §3.2). This is what stops alg
// confusion: an RSA key is never an HMAC secret.
bool key_fits(const Jwk& key, Alg alg);

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// An EVP_PKEY for an RSA or EC Jwk (nullptr for oct, or when OpenSSL refuses
// the numbers); `error` says why. EC points are checked to be on the curve.
Pkey make_public_key(const Jwk& key, std::string& error);

// Checks `signature` over `signed_part` (header.payload) with `key`, which
// key_fits `alg`; `pkey` is make_public_key(key) for RSA and EC.
bool verify_signature(Alg alg, const Jwk& key, EVP_PKEY* pkey, std::string_view signed_part,
                      std::string_view signature);

}  // namespace figshift::jose
