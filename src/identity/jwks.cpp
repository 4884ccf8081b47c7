// The JWKS keys file of config `jwt.keys_file` (RFC 7517): parsed and checked
// once per change on the control thread, never per request.

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "figshift/identity.hpp"
#include "figshift/util/file.hpp"
#include "identity/jose.hpp"

namespace figshift {
namespace {

using json = nlohmann::json;

// A base64url member of a key, decoded; "" with `error` set when absent or bad.
std::string member(const json& key, const char* name, const std::string& where,
                   std::string& error) {
  const auto it = key.find(name);
  if (it == key.end() || !it->is_string()) {
    error = where + ": \"" + name + "\" (a base64url string) is required";
    return {};
  }
  std::optional<std::string> bytes = jose::base64url_decode(it->get<std::string>());
  if (!bytes || bytes->empty()) {
    error = where + ": \"" + name + "\" is not base64url (unpadded, - and _)";
    return {};
  }
  return std::move(*bytes);
}

bool parse_key(const json& key, const std::string& where, Jwk& out, std::string& error) {
  if (!key.is_object()) return error = where + ": must be a JSON object", false;
  const auto string_member = [&](const char* name, std::string& value) {
    const auto it = key.find(name);
    if (it == key.end()) return true;
    if (!it->is_string()) return error = where + ": \"" + name + "\" must be a string", false;
    value = it->get<std::string>();
    return true;
  };
  std::string kty, use;
  if (!string_member("kty", kty) || !string_member("kid", out.kid) ||
      !string_member("alg", out.alg) || !string_member("use", use))
    return false;
  if (!use.empty() && use != "sig")
    return error =
               where + ": \"use\" is \"" + use + "\"; only signing keys (\"sig\") verify tokens",
           false;
  for (const char* secret : {"d", "p", "q", "dp", "dq", "qi"})
    if (kty != "oct" && key.contains(secret))
      return error = where + ": holds a private key (\"" + secret +
                     "\"); give figshift the public key only",
             false;
  if (kty == "oct") {
    out.type = Jwk::Type::oct;
    out.secret = member(key, "k", where, error);
    if (!error.empty()) return false;
    if (out.secret.size() < 32)
      return error = where + ": an HMAC secret must be at least 32 bytes (RFC 7518 §3.2)", false;
  } else if (kty == "RSA") {
    out.type = Jwk::Type::rsa;
    out.n = member(key, "n", where, error);
    if (error.empty()) out.e = member(key, "e", where, error);
    if (!error.empty()) return false;
    std::size_t bits = out.n.size() * 8;
    for (unsigned char lead = static_cast<unsigned char>(out.n[0]); bits > 0 && !(lead & 0x80);
         lead = static_cast<unsigned char>(lead << 1))
      --bits;
    if (bits < 2048) return error = where + ": an RSA key must be at least 2048 bits", false;
  } else if (kty == "EC") {
    out.type = Jwk::Type::ec;
    if (!string_member("crv", out.curve)) return false;
    if (out.curve != "P-256" && out.curve != "P-384")
      return error = where + ": \"crv\" must be P-256 (ES256) or P-384 (ES384)", false;
    out.x = member(key, "x", where, error);
    if (error.empty()) out.y = member(key, "y", where, error);
    if (!error.empty()) return false;
    const std::size_t size = out.curve == "P-256" ? 32 : 48;
    if (out.x.size() != size || out.y.size() != size)
      return error =
                 where + ": x and y must be " + std::to_string(size) + " bytes for " + out.curve,
             false;
  } else {
    return error = where + ": \"kty\" must be oct, RSA or EC", false;
  }
  if (!out.alg.empty()) {
    const auto alg = jose::parse_alg(out.alg);
    if (!alg || !jose::key_fits(out, *alg))
      return error = where + ": \"alg\" " + out.alg + " is not one this " + kty + " key can verify",
             false;
  }
  std::string why;
  if (out.type != Jwk::Type::oct && !jose::make_public_key(out, why))
    return error = where + ": " + why, false;
  return true;
}

}  // namespace

std::shared_ptr<const JwtKeySet> parse_jwks(std::string_view text, std::string& error) {
  error.clear();
  const json root = json::parse(text, nullptr, false);
  if (root.is_discarded() || !root.is_object() || !root.contains("keys") ||
      !root["keys"].is_array()) {
    error = "must be a JWKS: a JSON object {\"keys\": [...]}";
    return nullptr;
  }
  auto set = std::make_shared<JwtKeySet>();
  const json& keys = root["keys"];
  for (std::size_t i = 0; i < keys.size(); ++i) {
    Jwk key;
    if (!parse_key(keys[i], "keys[" + std::to_string(i) + "]", key, error)) return nullptr;
    set->keys.push_back(std::move(key));
  }
  return set;
}

JwtKeysFile::FileId JwtKeysFile::stat_now() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return {};
  return {static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

bool JwtKeysFile::changed() const {
  return stat_now() != seen_;
}

std::shared_ptr<const JwtKeySet> JwtKeysFile::load(std::string& error) {
  seen_ = stat_now();
  std::error_code read_error;
  const std::optional<std::string> text = read_file(path_, read_error);
  if (!text) {
    error = path_.string() + ": cannot be read: " + read_error.message();
    return nullptr;
  }
  auto keys = parse_jwks(*text, error);
  if (!keys) error = path_.string() + ": " + error;
  return keys;
}

}  // namespace figshift
