#pragma once
// Helpers written independently of src/routing, so that tests compare the
// code under test with a second implementation rather than with itself.

#include <cstdint>
#include <random>
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


// ---- random inputs for the property tests (RoutingProperties): a fixed seed
// per test, so every run is the same, wide enough to hit surrogate pairs,
// wrap-around and every bucket.

inline constexpr int property_iterations = 5000;

struct Name {
  std::string utf8;
  std::u16string utf16;
};

// A valid username with ASCII, two- and three-byte BMP and astral characters.
inline Name random_name(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(0, 24);
  std::uniform_int_distribution<int> plane(0, 3);
  Name name;
  const int n = length(rng);
  for (int i = 0; i < n; ++i) {
    char32_t cp = 0;
    switch (plane(rng)) {
      case 0:
        cp = std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng);
        break;
      case 1:
        cp = std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng);
        break;
      case 2:
        do cp = std::uniform_int_distribution<char32_t>(0x800, 0xFFFF)(rng);
        while (cp >= 0xD800 && cp <= 0xDFFF);
        break;
      default:
        cp = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng);
        break;
    }
    if (cp == ':') cp = ';';
    append_code_point(name.utf8, name.utf16, cp);
  }
  return name;
}

inline std::string random_bytes(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(0, 16);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(static_cast<std::size_t>(length(rng)), '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

}  // namespace figshift::routing_test
