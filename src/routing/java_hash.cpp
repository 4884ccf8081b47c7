// The bucket function of the reference: Java's String.hashCode, then a shift
// into [0, 2^32) so that the modulo never sees a negative number.

#include <cstdint>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {

std::int32_t java_hash_code(std::u16string_view units, std::int32_t seed) {
  // Unsigned arithmetic wraps by definition; signed overflow would be UB.
  auto h = static_cast<std::uint32_t>(seed);
  for (char16_t c : units) h = 31u * h + static_cast<std::uint32_t>(c);
  return static_cast<std::int32_t>(h);
}

int bucket_of_hash(std::int32_t h) {
  constexpr std::int64_t two_pow_31 = std::int64_t{1} << 31;
  return static_cast<int>((static_cast<std::int64_t>(h) + two_pow_31) % 100);
}

int bucket_of_hash(std::int32_t h, int buckets) {
  constexpr std::int64_t two_pow_31 = std::int64_t{1} << 31;
  return static_cast<int>((static_cast<std::int64_t>(h) + two_pow_31) % buckets);
}

int bucket_of(std::string_view username_utf8, std::string_view salt_utf8) {
  // Salt and username are decoded separately: the reference concatenates two
  // already-decoded strings, so a sequence split across them is two errors.
  const std::int32_t seed = java_hash_code(utf8_to_utf16(salt_utf8));
  return bucket_of_hash(java_hash_code(utf8_to_utf16(username_utf8), seed));
}

}  // namespace figshift
