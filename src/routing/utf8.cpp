// UTF-8 decoding, once for the whole program: the bucket's UTF-16 conversion
// and the store's validation and error messages all read sequences the same
// way. The decoding is exactly the WHATWG Encoding Standard's, because the
// bucket is a hash of UTF-16 code units and the reference computed them with
// Node's Buffer.toString('utf8'). Any other replacement policy (one U+FFFD per
// byte, or per bad sequence) would move users with malformed names to other
// buckets.

#include <cstdint>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

constexpr char16_t replacement_char = 0xFFFD;

void append_code_point(std::u16string& out, char32_t cp) {
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
// yields one U+FFFD per maximal subpart. The byte that proves a sequence
// wrong is not part of it: it may start the next one.
Utf8Sequence decode_utf8(std::string_view bytes) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  const std::uint8_t lead = byte(0);
  if (lead <= 0x7F) return {lead, 1, true};
  std::size_t needed = 0;
  char32_t code_point = 0;
  std::uint8_t lower = 0x80;
  std::uint8_t upper = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    if (lead == 0xE0) lower = 0xA0;
    if (lead == 0xED) upper = 0x9F;
    needed = 2;
    code_point = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    if (lead == 0xF0) lower = 0x90;
    if (lead == 0xF4) upper = 0x8F;
    needed = 3;
    code_point = lead & 0x07;
  } else {
    return {0, 1, false};
  }
  for (std::size_t i = 1; i <= needed; ++i) {
    if (i >= bytes.size() || byte(i) < lower || byte(i) > upper) return {0, i, false};
    code_point = (code_point << 6) | (byte(i) & 0x3F);
    lower = 0x80;
    upper = 0xBF;
  }
  return {code_point, needed + 1, true};
}

bool valid_utf8(std::string_view bytes) {
  while (!bytes.empty()) {
    const Utf8Sequence sequence = decode_utf8(bytes);
    if (!sequence.valid) return false;
    bytes.remove_prefix(sequence.length);
  }
  return true;
}

std::u16string utf8_to_utf16(std::string_view bytes) {
  std::u16string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    const auto lead = static_cast<std::uint8_t>(bytes[0]);
    if (lead <= 0x7F) {  // usernames are mostly ASCII: no call for those
      out.push_back(lead);
      bytes.remove_prefix(1);
      continue;
    }
    const Utf8Sequence sequence = decode_utf8(bytes);
    if (sequence.valid)
      append_code_point(out, sequence.code_point);
    else
      out.push_back(replacement_char);
    bytes.remove_prefix(sequence.length);
  }
  return out;
}

}  // namespace figshift
