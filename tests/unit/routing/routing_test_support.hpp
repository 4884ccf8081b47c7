#pragma once
// Helpers written independently of src/routing, so that tests compare the
// code under test with a second implementation rather than with itself.

#include <cstdint>
#include <string>
#include <string_view>

namespace figshift::routing_test {

// RFC 4648 encoder (the code under test only decodes).
inline std::string base64_encode(std::string_view bytes, bool pad = true) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                            std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t n = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    const std::uint32_t n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

inline std::string basic_header(std::string_view user, std::string_view password = "secret") {
  std::string credentials(user);
  credentials += ':';
  credentials += password;
  return "Basic " + base64_encode(credentials);
}

// Java's hashCode as the closed form sum(c[i] * 31^(n-1-i)) mod 2^32, rather
// than the loop the code under test uses.
inline std::int32_t java_hash_closed_form(std::u16string_view s) {
  std::uint64_t sum = 0;
  std::uint64_t power = 1;
  for (std::size_t k = s.size(); k-- > 0;) {
    sum =
        (sum + (std::uint64_t{s[k]} * power) % (std::uint64_t{1} << 32)) % (std::uint64_t{1} << 32);
    power = (power * 31) % (std::uint64_t{1} << 32);
  }
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(sum));
}

// ((h mod 100) + 2^31 mod 100) mod 100 with a non-negative remainder,
// another way to reach (h + 2^31) mod 100.
inline int bucket_closed_form(std::int32_t h) {
  int r = static_cast<int>(h % 100);
  if (r < 0) r += 100;
  return (r + 48) % 100;  // 2^31 = 2147483648 = 21474836 * 100 + 48
}

// Encodes code points both ways, so valid UTF-8 input has a known UTF-16 answer.
inline void append_code_point(std::string& utf8, std::u16string& utf16, char32_t cp) {
  if (cp < 0x80) {
    utf8 += static_cast<char>(cp);
  } else if (cp < 0x800) {
    utf8 += static_cast<char>(0xC0 | (cp >> 6));
    utf8 += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    utf8 += static_cast<char>(0xE0 | (cp >> 12));
    utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    utf8 += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    utf8 += static_cast<char>(0xF0 | (cp >> 18));
    utf8 += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    utf8 += static_cast<char>(0x80 | (cp & 0x3F));
  }
  if (cp < 0x10000) {
    utf16 += static_cast<char16_t>(cp);
  } else {
    utf16 += static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10));
    utf16 += static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF));
  }
}

}  // namespace figshift::routing_test
