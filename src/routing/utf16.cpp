// UTF-8 -> UTF-16 exactly as the WHATWG Encoding Standard decodes it, because
// the bucket is a hash of UTF-16 code units and the reference computed them
// with Node's Buffer.toString('utf8'). Any other replacement policy (one
// U+FFFD per byte, or per bad sequence) would move users with malformed
// names to other buckets.

#include <cstdint>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

constexpr char16_t replacement_char = 0xFFFD;

void append_code_point(std::u16string& out, std::uint32_t cp) {
  if (cp <= 0xFFFF) {
    out.push_back(static_cast<char16_t>(cp));
    return;
  }
  cp -= 0x10000;
  out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
  out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
}

}  // namespace

// https://encoding.spec.whatwg.org/#utf-8-decoder. The narrowed lower/upper
// bounds after E0, ED, F0 and F4 reject overlongs, surrogates and code points
// above U+10FFFF at the first byte that proves them wrong, which is what
// yields one U+FFFD per maximal subpart.
std::u16string utf8_to_utf16(std::string_view bytes) {
  std::u16string out;
  out.reserve(bytes.size());
  std::uint32_t code_point = 0;
  int bytes_needed = 0;
  int bytes_seen = 0;
  std::uint8_t lower = 0x80;
  std::uint8_t upper = 0xBF;

  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto byte = static_cast<std::uint8_t>(bytes[i]);
    if (bytes_needed == 0) {
      ++i;
      if (byte <= 0x7F) {
        out.push_back(byte);
      } else if (byte >= 0xC2 && byte <= 0xDF) {
        bytes_needed = 1;
        code_point = byte & 0x1F;
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        if (byte == 0xE0) lower = 0xA0;
        if (byte == 0xED) upper = 0x9F;
        bytes_needed = 2;
        code_point = byte & 0x0F;
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        if (byte == 0xF0) lower = 0x90;
        if (byte == 0xF4) upper = 0x8F;
        bytes_needed = 3;
        code_point = byte & 0x07;
      } else {
        out.push_back(replacement_char);
      }
      continue;
    }
    if (byte < lower || byte > upper) {
      // The byte is not consumed: it may start the next sequence.
      code_point = 0;
      bytes_needed = 0;
      bytes_seen = 0;
      lower = 0x80;
      upper = 0xBF;
      out.push_back(replacement_char);
      continue;
    }
    ++i;
    lower = 0x80;
    upper = 0xBF;
    code_point = (code_point << 6) | (byte & 0x3F);
    if (++bytes_seen == bytes_needed) {
      append_code_point(out, code_point);
      code_point = 0;
      bytes_needed = 0;
      bytes_seen = 0;
    }
  }
  if (bytes_needed != 0) out.push_back(replacement_char);
  return out;
}

}  // namespace figshift
