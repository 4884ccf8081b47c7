// Basic-auth parsing, WHATWG UTF-8 -> UTF-16 and the Java hash / bucket on
// arbitrary bytes: never a crash, and the invariants of docs/design.md §1.

#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <string>

#include "figshift/routing.hpp"
#include "fuzz_support.hpp"

namespace {

using figshift::fuzz::as_view;

std::string base64(std::string_view bytes, bool padded) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  if (!padded)
    while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

// UTF-16 -> UTF-8, written independently of the decoder under test.
std::string to_utf8(std::u16string_view units) {
  std::string out;
  for (std::size_t i = 0; i < units.size(); ++i) {
    std::uint32_t cp = units[i];
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      FUZZ_CHECK(i + 1 < units.size());  // the decoder never emits a lone high surrogate
      const std::uint32_t low = units[++i];
      FUZZ_CHECK(low >= 0xDC00 && low <= 0xDFFF);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else {
      FUZZ_CHECK(!(cp >= 0xDC00 && cp <= 0xDFFF));  // nor a lone low surrogate
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

void check_utf16(std::string_view bytes) {
  const std::u16string units = figshift::utf8_to_utf16(bytes);
  // Each input byte yields at most one code unit (a 4-byte sequence yields two).
  FUZZ_CHECK(units.size() <= bytes.size());
  const std::string back = to_utf8(units);  // also checks surrogates are paired
  if (units.find(u'\uFFFD') == std::u16string::npos) {
    // Nothing was replaced: the input was valid UTF-8 and must round-trip exactly.
    FUZZ_CHECK(back == bytes);
  }
  bool ascii = true;
  for (char c : bytes) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    FUZZ_CHECK(units.size() == bytes.size());
    for (std::size_t i = 0; i < units.size(); ++i)
      FUZZ_CHECK(units[i] == static_cast<unsigned char>(bytes[i]));
  }
  // Decoding is idempotent on its own (valid) output.
  FUZZ_CHECK(figshift::utf8_to_utf16(back) == units);
}

void check_hash(std::string_view bytes) {
  const std::size_t half = bytes.size() / 2;
  const std::string_view salt = bytes.substr(0, half);
  const std::string_view user = bytes.substr(half);
  const std::u16string salt16 = figshift::utf8_to_utf16(salt);
  const std::u16string user16 = figshift::utf8_to_utf16(user);

  // The seed continues the hash: hash(a + b) == hash(b, hash(a)).
  const std::int32_t joined = figshift::java_hash_code(salt16 + user16);
  FUZZ_CHECK(joined == figshift::java_hash_code(user16, figshift::java_hash_code(salt16)));

  // Reference definition, in 64-bit with an explicit 32-bit wrap.
  std::int64_t h = 0;
  for (char16_t c : salt16 + user16) {
    h = (31 * h + c) & 0xFFFFFFFFLL;
  }
  const auto expected = static_cast<std::int32_t>(static_cast<std::uint32_t>(h));
  FUZZ_CHECK(joined == expected);

  const int bucket = figshift::bucket_of(user, salt);
  FUZZ_CHECK(bucket >= 0 && bucket < 100);
  FUZZ_CHECK(bucket == figshift::bucket_of_hash(joined));
  FUZZ_CHECK(bucket == ((static_cast<std::int64_t>(joined) + 2147483648LL) % 100));
}

void check_basic_auth(std::string_view bytes) {
  // Arbitrary header values: no crash; a username never holds the ':'.
  const std::optional<std::string> user = figshift::basic_auth_username(bytes);
  if (user) FUZZ_CHECK(user->find(':') == std::string::npos);

  // Well-formed credentials built from the input always decode to its text before ':'.
  const std::string credentials = std::string(bytes) + ":secret";
  const std::string expected(bytes.substr(0, bytes.find(':')));
  for (const bool padded : {true, false}) {
    for (const char* scheme : {"Basic ", "basic  ", "BASIC "}) {
      const auto got = figshift::basic_auth_username(scheme + base64(credentials, padded));
      FUZZ_CHECK(got && *got == expected);
    }
  }
  // No ':' at all in the decoded bytes: anonymous.
  if (bytes.find(':') == std::string_view::npos) {
    FUZZ_CHECK(!figshift::basic_auth_username("Basic " + base64(bytes, true)));
  }
  // Another scheme is anonymous, whatever follows.
  FUZZ_CHECK(!figshift::basic_auth_username("Bearer " + base64(credentials, true)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = as_view(data, size);
  check_utf16(bytes);
  check_hash(bytes);
  check_basic_auth(bytes);
  return 0;
}
