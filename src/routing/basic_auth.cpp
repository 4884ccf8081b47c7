// RFC 7617 Basic credentials: the only place a request tells us who the user is.

#include <openssl/evp.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

constexpr std::string_view scheme_name = "basic";

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// RFC 4648 without leniency: a token the reference would reject must not
// identify a user here, or the two would put that user in different groups.
// Padding may be left out, but when present it must be exactly what the
// length requires. Non-zero bits in the last character are accepted, as
// Node's decoder accepts them.
std::optional<std::string> decode_base64_strict(std::string_view token) {
  std::size_t pads = 0;
  while (pads < token.size() && pads < 2 && token[token.size() - 1 - pads] == '=') ++pads;
  const std::string_view data = token.substr(0, token.size() - pads);
  for (char c : data) {
    if (!is_base64_char(c)) return std::nullopt;  // also catches a third '=' or one in the middle
  }
  if (data.size() % 4 == 1) return std::nullopt;  // 6 bits cannot make a byte
  if (pads != 0 && token.size() % 4 != 0) return std::nullopt;

  // EVP_DecodeBlock wants whole quanta; it decodes '=' as zero bits, so the
  // bytes it produces for the padding are dropped afterwards.
  std::string padded(data);
  const std::size_t missing = (4 - padded.size() % 4) % 4;
  padded.append(missing, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  if (padded.empty()) return out;
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - missing);
  return out;
}

}  // namespace

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::optional<std::string> basic_auth_username(std::string_view authorization) {
  // A field value carries no leading or trailing whitespace (RFC 9110 §5.5);
  // trim it in case the caller passes the raw line.
  while (!authorization.empty() && is_ows(authorization.front())) authorization.remove_prefix(1);
  while (!authorization.empty() && is_ows(authorization.back())) authorization.remove_suffix(1);

  // credentials = auth-scheme [ 1*SP token68 ] (RFC 7235 §2.1): SP, not HTAB.
  const std::size_t sp = authorization.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  if (!iequals_ascii(authorization.substr(0, sp), scheme_name)) return std::nullopt;
  std::string_view token = authorization.substr(sp);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);

  std::optional<std::string> decoded = decode_base64_strict(token);
  if (!decoded) return std::nullopt;
  const std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  decoded->resize(colon);
  return decoded;
}

}  // namespace figshift
