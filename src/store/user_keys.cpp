// The who-is-the-user keys of issue #17, validated once per store change.

#include "store/user_keys.hpp"

#include <charconv>
#include <string_view>

#include "figshift/store/kv_map.hpp"

namespace figshift::store_keys {
namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw InvalidStore(key + ": " + why);
}

// RFC 9110 token: header names, cookie names (RFC 6265 cookie-name is a token)
// and, here, JWT claim names.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  return true;
}

}  // namespace

UserKey parse_user_key(const std::string& key, const std::string& value) {
  const std::string expected =
      "must be basic, header:<Name>, cookie:<name>, jwt or jwt:<claim>, got \"" + value + "\"";
  if (value == "basic") return {};
  if (value == "jwt") return {UserKey::Kind::jwt, "sub"};
  const std::size_t colon = value.find(':');
  if (colon == std::string::npos) bad(key, expected);
  const std::string kind = value.substr(0, colon), name = value.substr(colon + 1);
  if (kind != "header" && kind != "cookie" && kind != "jwt") bad(key, expected);
  if (!is_token(name))
    bad(key, "the name in \"" + value +
                 "\" must be a token (letters, digits and !#$%&'*+-.^_`|~; no spaces)");
  if (kind == "header") {
    // Host and the framing headers are figshift's to interpret; Cookie and
    // Authorization have modes of their own (a whole credential as the key
    // would put every password change in another bucket).
    for (std::string_view reserved :
         {"host", "content-length", "transfer-encoding", "connection", "cookie", "authorization"})
      if (iequals_ascii(name, reserved))
        bad(key, "header:" + name +
                     " cannot be the user key (use basic, jwt or cookie:<name> "
                     "for credentials and cookies)");
    return {UserKey::Kind::header, name};
  }
  return {kind == "cookie" ? UserKey::Kind::cookie : UserKey::Kind::jwt, name};
}

Group parse_pin(const std::string& key, const std::string& value) {
  if (key.size() <= 4) bad(key, "pin:<user> needs a user (the user-key value) after \"pin:\"");
  if (value == "new") return Group::migrated;
  if (value == "legacy") return Group::legacy;
  bad(key, "must be \"new\" or \"legacy\", got \"" + value + "\"");
}

int parse_buckets(const std::string& key, const std::string& value) {
  if (value == "100") return 100;
  if (value == "10000") return 10000;
  bad(key,
      "must be 100 (the sample's rule) or 10000 (splits to 0.01 point), got \"" + value + "\"");
}

int parse_split_hundredths(const std::string& key, const std::string& text, int buckets) {
  const std::string integer_only = "must be an integer from 0 to 100, got \"" + text + "\"";
  const std::string_view whole_part = std::string_view(text).substr(0, text.find('.'));
  int whole = -1;
  auto [end, ec] = std::from_chars(whole_part.data(), whole_part.data() + whole_part.size(), whole);
  // "-0" would read as 0 (and "-0.5" as 0.5): a split starts with a digit.
  const bool digit_first = !text.empty() && text[0] >= '0' && text[0] <= '9';
  if (whole_part.empty() || (buckets != 100 && !digit_first) || ec != std::errc() ||
      end != whole_part.data() + whole_part.size() || whole < 0 || whole > 100)
    bad(key, buckets == 100
                 ? integer_only
                 : "must be a number from 0 to 100 with up to two decimals, got \"" + text + "\"");
  if (whole_part.size() == text.size()) return whole * 100;
  if (buckets == 100) bad(key, integer_only + " (decimals need buckets = 10000)");
  const std::string_view decimals = std::string_view(text).substr(whole_part.size() + 1);
  if (decimals.empty() || decimals.size() > 2)
    bad(key, "takes one or two decimals (\"0.25\"), got \"" + text + "\"");
  int fraction = 0;
  for (char c : decimals) {
    if (c < '0' || c > '9') bad(key, "takes one or two decimals (\"0.25\"), got \"" + text + "\"");
    fraction = fraction * 10 + (c - '0');
  }
  if (decimals.size() == 1) fraction *= 10;
  const int hundredths = whole * 100 + fraction;
  if (hundredths > 10000) bad(key, "must be at most 100, got \"" + text + "\"");
  return hundredths;
}

}  // namespace figshift::store_keys
