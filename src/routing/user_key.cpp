// Who is the user (#17): the value of the configured user key, read from a
// request head. Pure: the caller has already looked up (and, for a JWT,
// verified) what needs I/O or keys.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  std::optional<std::string_view> found;
  while (!header.empty()) {
    const std::size_t semi = header.find(';');
    const std::string_view pair = trim_ows(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim_ows(pair.substr(0, eq)) != name) continue;
    // Two cookies of one name (set for two paths or domains): the upstream may
    // read the other one, so neither identifies the user.
    if (found) return std::nullopt;
    std::string_view value = trim_ows(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    found = value;
  }
  return found;
}

std::optional<std::string_view> user_key_value(const RequestHead& head, const UserKey& key,
                                               std::string& scratch) {
  std::optional<std::string_view> value;
  switch (key.kind) {
    case UserKey::Kind::basic:
      // The sample's rule, unchanged: an empty username is still a user.
      if (std::optional<std::string> name = basic_auth_username(head.authorization)) {
        scratch = std::move(*name);
        return std::string_view(scratch);
      }
      return std::nullopt;
    case UserKey::Kind::header:
      if (head.user_field) value = trim_ows(*head.user_field);
      break;
    case UserKey::Kind::cookie:
      if (head.user_field) value = cookie_value(*head.user_field, key.name);
      break;
    case UserKey::Kind::jwt:
      value = head.user_field;
      break;
  }
  if (value && value->empty()) return std::nullopt;
  return value;
}

std::uint64_t user_count_hash(std::string_view value, std::int32_t salt_seed) {
  // FNV-1a over the salt and the bytes, then MurmurHash3's 64-bit finalizer:
  // FNV alone leaves the high bits (the HyperLogLog's register index) poorly
  // mixed for short, similar names ("user1", "user2").
  std::uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<std::uint32_t>(salt_seed);
  for (char c : value) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

}  // namespace figshift
