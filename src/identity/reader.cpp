// Bearer tokens (RFC 6750) verified as JWS-signed JWTs (RFC 7515, RFC 7519)
// on the worker's thread. The order matters: the header is read only to pick
// a key, the signature is checked, and only then is any claim believed.

#include <cmath>
#include <nlohmann/json.hpp>

#include "figshift/identity.hpp"
#include "identity/jose.hpp"

namespace figshift {
namespace {

using json = nlohmann::json;

// credentials = "Bearer" 1*SP token68 (RFC 6750 §2.1); nullopt for another scheme.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
  while (!authorization.empty() && (authorization.back() == ' ' || authorization.back() == '\t'))
    authorization.remove_suffix(1);
  const std::size_t sp = authorization.find(' ');
  if (sp == std::string_view::npos || !iequals_ascii(authorization.substr(0, sp), "bearer"))
    return std::nullopt;
  std::string_view token = authorization.substr(sp);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return token;
}

std::optional<json> json_object(std::string_view base64url) {
  const std::optional<std::string> text = jose::base64url_decode(base64url);
  if (!text) return std::nullopt;
  json value = json::parse(*text, nullptr, false);  // no exceptions on the data path
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

std::optional<double> number_claim(const json& claims, const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

}  // namespace

// Each worker builds its own EVP_PKEY objects from the shared key set: an
// EVP_PKEY's reference count would otherwise be a shared atomic written on
// every verification.
struct UserKeyReader::VerifiedKeys {
  std::shared_ptr<const JwtKeySet> set;
  std::vector<jose::Pkey> pkeys;  // parallel to set->keys; null for oct
};

UserKeyReader::UserKeyReader(JwtPolicy policy, TokenStats& stats)
    : policy_(std::move(policy)), stats_(stats) {}

UserKeyReader::~UserKeyReader() = default;

void UserKeyReader::set_keys(std::shared_ptr<const JwtKeySet> keys) {
  cache_.clear();
  if (!keys) {
    keys_.reset();
    return;
  }
  auto verified = std::make_unique<VerifiedKeys>();
  for (const Jwk& key : keys->keys) {
    std::string ignored;  // parse_jwks built each of them once already
    verified->pkeys.push_back(jose::make_public_key(key, ignored));
  }
  verified->set = std::move(keys);
  keys_ = std::move(verified);
}

std::optional<std::string_view> UserKeyReader::reject(TokenRejection reason) {
  ++stats_.rejected[static_cast<std::size_t>(reason)];
  return std::nullopt;
}

std::optional<TokenRejection> UserKeyReader::check_times(double exp, double nbf,
                                                         double now_s) const {
  const auto leeway = static_cast<double>(policy_.leeway_s);
  if (now_s >= exp + leeway) return TokenRejection::expired;  // "before exp" (RFC 7519 §4.1.4)
  if (nbf != 0 && now_s < nbf - leeway) return TokenRejection::not_yet_valid;
  return std::nullopt;
}

std::optional<std::string_view> UserKeyReader::bearer_claim(std::string_view authorization,
                                                            std::string_view claim,
                                                            std::int64_t now_ms) {
  const std::optional<std::string_view> token = bearer_token(authorization);
  if (!token) return std::nullopt;  // no token: anonymous, nothing wrong with it
  if (token->size() > max_token_bytes) return reject(TokenRejection::oversized);
  if (policy_.cache) {
    if (const auto hit = cache_.find(*token); hit != cache_.end() && hit->second.claim == claim) {
      if (const auto problem = check_times(hit->second.exp, hit->second.nbf, now_ms / 1000.0)) {
        cache_.erase(hit);
        return reject(*problem);
      }
      ++stats_.cache_hits;
      return std::string_view(hit->second.value);
    }
  }
  return verify(*token, claim, now_ms);
}

std::optional<std::string_view> UserKeyReader::verify(std::string_view token,
                                                      std::string_view claim, std::int64_t now_ms) {
  if (!keys_ || keys_->set->keys.empty()) return reject(TokenRejection::no_keys);
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return reject(TokenRejection::malformed);

  // 1. The header, only to choose the key: nothing in it is trusted yet.
  const std::optional<json> header = json_object(token.substr(0, dot1));
  if (!header) return reject(TokenRejection::malformed);
  const auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) return reject(TokenRejection::malformed);
  const std::string& alg_text = alg_it->get_ref<const std::string&>();
  if (iequals_ascii(alg_text, "none")) return reject(TokenRejection::alg_none);
  const std::optional<jose::Alg> alg = jose::parse_alg(alg_text);
  if (!alg) return reject(TokenRejection::alg_unsupported);
  // An extension figshift would have to understand (RFC 7515 §4.1.11).
  if (header->contains("crit")) return reject(TokenRejection::malformed);
  std::optional<std::string_view> kid;
  if (const auto it = header->find("kid"); it != header->end()) {
    if (!it->is_string()) return reject(TokenRejection::malformed);
    kid = it->get_ref<const std::string&>();
  }

  // 2. The signature, with a key of the token's kid (or, without a kid, any
  // key of its kind) that fits its alg.
  const std::optional<std::string> signature = jose::base64url_decode(token.substr(dot2 + 1));
  if (!signature) return reject(TokenRejection::malformed);
  const std::string_view signed_part = token.substr(0, dot2);
  bool candidate = false, fitting = false, verified = false;
  const auto& keys = keys_->set->keys;
  for (std::size_t i = 0; i < keys.size() && !verified; ++i) {
    if (kid && keys[i].kid != *kid) continue;
    candidate = true;
    if (!jose::key_fits(keys[i], *alg)) continue;
    fitting = true;
    verified =
        jose::verify_signature(*alg, keys[i], keys_->pkeys[i].get(), signed_part, *signature);
  }
  if (!candidate || (!fitting && !kid)) return reject(TokenRejection::unknown_key);
  if (!fitting) return reject(TokenRejection::key_mismatch);
  if (!verified) return reject(TokenRejection::bad_signature);

  // 3. The claims, now that they are known to come from the key's holder.
  const std::optional<json> claims = json_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return reject(TokenRejection::malformed);
  const std::optional<double> exp = number_claim(*claims, "exp");
  if (!exp) return reject(TokenRejection::malformed);  // a token for ever is refused
  double nbf = 0;
  if (claims->contains("nbf")) {
    const std::optional<double> value = number_claim(*claims, "nbf");
    if (!value) return reject(TokenRejection::malformed);
    nbf = *value;
  }
  const double now_s = now_ms / 1000.0;
  if (const auto problem = check_times(*exp, nbf, now_s)) return reject(*problem);
  if (!policy_.issuer.empty()) {
    const auto iss = claims->find("iss");
    if (iss == claims->end() || !iss->is_string() || *iss != policy_.issuer)
      return reject(TokenRejection::wrong_issuer);
  }
  if (!policy_.audience.empty()) {
    const auto aud = claims->find("aud");
    bool ok = false;
    if (aud != claims->end() && aud->is_string()) ok = *aud == policy_.audience;
    if (aud != claims->end() && aud->is_array())
      for (const json& one : *aud) ok = ok || (one.is_string() && one == policy_.audience);
    if (!ok) return reject(TokenRejection::wrong_audience);
  }
  const auto user = claims->find(claim);
  if (user == claims->end()) return reject(TokenRejection::no_claim);
  if (user->is_string())
    value_ = user->get<std::string>();
  else if (user->is_number_integer())
    value_ = user->dump();  // a numeric user id, as written
  else
    return reject(TokenRejection::no_claim);
  if (value_.empty()) return reject(TokenRejection::no_claim);

  ++stats_.verified;
  if (policy_.cache) {
    remember(token, CachedToken{std::string(claim), value_, *exp, nbf}, now_s);
    return std::string_view(cache_.find(token)->second.value);
  }
  return std::string_view(value_);
}

void UserKeyReader::remember(std::string_view token, CachedToken entry, double now_s) {
  if (cache_.size() >= max_cached_tokens) {
    std::erase_if(cache_, [&](const auto& item) {
      return check_times(item.second.exp, item.second.nbf, now_s).has_value();
    });
    // Still full of live tokens: start afresh rather than track recency per hit.
    if (cache_.size() >= max_cached_tokens) cache_.clear();
  }
  cache_.insert_or_assign(std::string(token), std::move(entry));
}

}  // namespace figshift
