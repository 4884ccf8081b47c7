#pragma once
// Who is the user, for the user keys that need more than the request head
// (#17): header and cookie fields looked up by name, and bearer tokens (JWT,
// RFC 7519) verified against a JWKS (RFC 7517) with OpenSSL.
//
// Thread-safety: a JwtKeySet is immutable once parsed and may be shared by
// every thread. A UserKeyReader belongs to one worker: every call, including
// set_keys, runs on that worker's thread (keys arrive by a post), so its cache
// and counters need no lock and no atomic.
// Lifetime: a value returned by user_field() points into the request's fields
// or into the reader, and is valid until the next call on the same reader.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "figshift/routing.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift {

// One public key (or HMAC secret) of a JWKS, its numbers as big-endian bytes.
struct Jwk {
  enum class Type { oct, rsa, ec };
  Type type = Type::oct;
  std::string kid;     // empty: none
  std::string alg;     // empty: any alg of its kind
  std::string secret;  // oct: k
  std::string n, e;    // RSA
  std::string curve;   // EC: "P-256" or "P-384"
  std::string x, y;    // EC
};

struct JwtKeySet {
  std::vector<Jwk> keys;
};

// Parses a JWKS ({"keys": [...]}): kty oct (k, at least 32 bytes), RSA (n, e;
// at least 2048 bits) or EC (crv P-256 or P-384, x, y on the curve); "use",
// when given, must be "sig". A private key (d, p, q, …) is refused: figshift
// only verifies. nullptr and `error` (naming the key) when anything is wrong.
std::shared_ptr<const JwtKeySet> parse_jwks(std::string_view text, std::string& error);

// The keys file: read and parsed on demand, changed() by its stat (mtime,
// size, inode), so an edit or an atomic rename is seen. Control thread only.
class JwtKeysFile {
 public:
  explicit JwtKeysFile(std::filesystem::path path) : path_(std::move(path)) {}
  // Reads and parses the file; remembers its stat either way, so a bad file
  // is reported once, not on every check. nullptr and `error` on failure.
  std::shared_ptr<const JwtKeySet> load(std::string& error);
  bool changed() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct FileId {
    std::int64_t mtime_ns = -1, size = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileId&) const = default;
  };
  FileId stat_now() const;
  std::filesystem::path path_;
  FileId seen_;
};

struct JwtPolicy {
  std::string issuer;    // empty: any
  std::string audience;  // empty: any
  std::int64_t leeway_s = 30;
  bool cache = true;  // off only to measure what the cache saves
};

class UserKeyReader {
 public:
  // Tokens longer than this are refused as oversized before any parsing.
  static constexpr std::size_t max_token_bytes = 8 * 1024;
  // Verified tokens kept per worker; when full, expired ones go, then all.
  static constexpr std::size_t max_cached_tokens = 4096;

  // `stats` (the worker's) receives the counters; it must outlive the reader.
  UserKeyReader(JwtPolicy policy, TokenStats& stats);
  ~UserKeyReader();
  UserKeyReader(const UserKeyReader&) = delete;
  UserKeyReader& operator=(const UserKeyReader&) = delete;

  // New keys (nullptr: none). Forgets every cached token, so a removed key
  // stops identifying users at once.
  void set_keys(std::shared_ptr<const JwtKeySet> keys);

  // RequestHead::user_field for `snapshot.user_key`, from the request's
  // fields (any type with Beast's equal_range(string_view)): the header, the
  // Cookie header, or the verified claim of the Bearer token. A field given
  // more than once is no value: the upstream might read the other one.
  template <class Fields>
  std::optional<std::string_view> user_field(const Fields& fields, const Snapshot& snapshot,
                                             std::int64_t now_ms) {
    switch (snapshot.user_key.kind) {
      case UserKey::Kind::basic:
        return std::nullopt;
      case UserKey::Kind::header:
        return only_field(fields, snapshot.user_key.name);
      case UserKey::Kind::cookie:
        return only_field(fields, "Cookie");
      case UserKey::Kind::jwt:
        if (const auto authorization = only_field(fields, "Authorization"))
          return bearer_claim(*authorization, snapshot.user_key.name, now_ms);
        return std::nullopt;
    }
    return std::nullopt;
  }

  // The `claim` of the Bearer token in `authorization` once its signature and
  // claims are verified (or found verified in the cache); nullopt, counted by
  // reason, when it is not. No Bearer token at all is nullopt, not counted.
  std::optional<std::string_view> bearer_claim(std::string_view authorization,
                                               std::string_view claim, std::int64_t now_ms);

 private:
  template <class Fields>
  static std::optional<std::string_view> only_field(const Fields& fields, std::string_view name) {
    const auto [first, last] = fields.equal_range(name);
    if (first == last || std::next(first) != last) return std::nullopt;
    return std::string_view(first->value().data(), first->value().size());
  }

  struct CachedToken {
    std::string claim, value;
    double exp = 0, nbf = 0;  // seconds since the epoch; nbf 0: none
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct VerifiedKeys;  // the key set with per-worker OpenSSL objects

  std::optional<std::string_view> reject(TokenRejection reason);
  std::optional<TokenRejection> check_times(double exp, double nbf, double now_s) const;
  std::optional<std::string_view> verify(std::string_view token, std::string_view claim,
                                         std::int64_t now_ms);
  void remember(std::string_view token, CachedToken entry, double now_s);

  JwtPolicy policy_;
  TokenStats& stats_;
  std::unique_ptr<VerifiedKeys> keys_;
  std::unordered_map<std::string, CachedToken, Hash, std::equal_to<>> cache_;
  std::string value_;  // the claim of an uncached token, for the caller to read
};

}  // namespace figshift
