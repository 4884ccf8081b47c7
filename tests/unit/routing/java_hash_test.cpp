#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "figshift/routing.hpp"
#include "routing_test_support.hpp"

namespace figshift {
namespace {

using routing_test::basic_header;
using routing_test::property_iterations;
using routing_test::random_bytes;
using routing_test::random_name;

// docs/design.md §1, reference values (salt empty).
struct Reference {
  std::string_view utf8;
  std::u16string_view utf16;
  std::int32_t hash;
  int bucket;
};

constexpr Reference reference_table[] = {
    {"hello", u"hello", 99162322, 70},
    {"", u"", 0, 48},
    {"Aa", u"Aa", 2112, 60},
    {"BB", u"BB", 2112, 60},
    {"polygenelubricants", u"polygenelubricants", -2147483647 - 1, 0},
    {"Zo\xC3\xAB", u"Zo\u00EB", 90166, 14},
    {"\xF0\x9F\x98\x80", u"\U0001F600", 1772899, 47},
    {"user42", u"user42", -836031607, 41},
};

TEST(RoutingJavaHash, ReferenceTableHashCode) {
  for (const Reference& r : reference_table) {
    EXPECT_EQ(java_hash_code(r.utf16), r.hash) << r.utf8;
  }
}

TEST(RoutingJavaHash, ReferenceTableBucketOfHash) {
  for (const Reference& r : reference_table) {
    EXPECT_EQ(bucket_of_hash(r.hash), r.bucket) << r.utf8;
  }
}

TEST(RoutingJavaHash, ReferenceTableBucketOfUtf8) {
  for (const Reference& r : reference_table) {
    EXPECT_EQ(bucket_of(r.utf8), r.bucket) << r.utf8;
    EXPECT_EQ(bucket_of(r.utf8, ""), r.bucket) << r.utf8;
  }
}

TEST(RoutingJavaHash, ReferenceTableThroughBasicAuthHeader) {
  for (const Reference& r : reference_table) {
    const std::string header = basic_header(r.utf8, "pw");
    const auto username = basic_auth_username(header);
    ASSERT_TRUE(username.has_value()) << header;
    EXPECT_EQ(*username, r.utf8) << header;
    EXPECT_EQ(java_hash_code(utf8_to_utf16(*username)), r.hash) << header;
    EXPECT_EQ(bucket_of(*username), r.bucket) << header;
  }
}

TEST(RoutingJavaHash, SurrogatePairHashesAsTwoCodeUnits) {
  // 31 * 0xD83D + 0xDE00, the value Java and JavaScript give for "😀".
  EXPECT_EQ(java_hash_code(u"\U0001F600"), 31 * 0xD83D + 0xDE00);
  EXPECT_EQ(utf8_to_utf16("\xF0\x9F\x98\x80").size(), 2u);
}

TEST(RoutingJavaHash, WrapsAroundLikeJava) {
  // "polygenelubricants" is the classic Integer.MIN_VALUE; one character
  // more multiplies by 31 and wraps: MIN_VALUE * 31 == MIN_VALUE (mod 2^32).
  EXPECT_EQ(java_hash_code(u"polygenelubricantsa"), (-2147483647 - 1) + 'a');
  EXPECT_EQ(java_hash_code(u"\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF"),
            routing_test::java_hash_closed_form(u"\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF\uFFFF"));
}

TEST(RoutingJavaHash, SeedContinuesTheHash) {
  EXPECT_EQ(java_hash_code(u"lo", java_hash_code(u"hel")), 99162322);
  EXPECT_EQ(java_hash_code(u"", 12345), 12345);
  EXPECT_EQ(java_hash_code(u"hello", 0), 99162322);  // docs/design.md §1
}

TEST(RoutingJavaHash, BucketOfHashExtremes) {
  EXPECT_EQ(bucket_of_hash(-2147483647 - 1), 0);  // 0 % 100
  EXPECT_EQ(bucket_of_hash(2147483647), 95);      // 4294967295 % 100
  EXPECT_EQ(bucket_of_hash(0), 48);               // 2147483648 % 100
  EXPECT_EQ(bucket_of_hash(-1), 47);
  EXPECT_EQ(bucket_of_hash(52), 0);  // 2147483700 % 100
  EXPECT_EQ(bucket_of_hash(51), 99);
}

TEST(RoutingJavaHash, SaltIsPrependedBeforeHashing) {
  // "hel" + "lo" == "hello".
  EXPECT_EQ(bucket_of("lo", "hel"), 70);
  EXPECT_EQ(bucket_of("", "hello"), 70);
  EXPECT_EQ(bucket_of("hello", ""), 70);
  // "Zo" + "ë": the salt may itself be non-ASCII.
  EXPECT_EQ(bucket_of("\xC3\xAB", "Zo"), 14);
  EXPECT_EQ(bucket_of("Zo", "\xC3\xAB"),
            routing_test::bucket_closed_form(routing_test::java_hash_closed_form(u"\u00EBZo")));
}

TEST(RoutingJavaHash, SaltAndUsernameAreDecodedSeparately) {
  // 'Z','o',C3 | AB: each half ends or starts with a broken sequence, so the
  // concatenated text is "Zo\uFFFD\uFFFD", not "Zoë".
  EXPECT_EQ(bucket_of("\xAB", "Zo\xC3"),
            routing_test::bucket_closed_form(routing_test::java_hash_closed_form(u"Zo\uFFFD\uFFFD")));
  EXPECT_NE(bucket_of("\xAB", "Zo\xC3"), 14);
}

// ---- properties over many random inputs (RoutingProperties) ---------------
// Expected values from routing_test_support's closed forms, never from the code under test.

TEST(RoutingProperties, ValidUtf8DecodesToItsUtf16AndHashesLikeTheClosedForm) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < property_iterations; ++i) {
    const auto name = random_name(rng);
    ASSERT_EQ(utf8_to_utf16(name.utf8), name.utf16) << i;
    const std::int32_t h = routing_test::java_hash_closed_form(name.utf16);
    ASSERT_EQ(java_hash_code(name.utf16), h) << i;
    ASSERT_EQ(bucket_of(name.utf8), routing_test::bucket_closed_form(h)) << i;
  }
}

TEST(RoutingProperties, SameInputSameBucketAndAlwaysInRange) {
  std::mt19937 rng(7);
  std::array<int, 100> seen{};
  std::vector<std::pair<std::string, int>> first_pass;
  for (int i = 0; i < property_iterations; ++i) {
    int bucket = -1;
    std::string bytes;
    if (i % 2 == 0) {
      const auto name = random_name(rng);
      bytes = name.utf8;
      bucket = bucket_of(bytes);
      // Valid UTF-8 has a known answer: the closed form over its UTF-16.
      ASSERT_EQ(bucket, routing_test::bucket_closed_form(routing_test::java_hash_closed_form(name.utf16)))
          << i;
    } else {
      bytes = random_bytes(rng);
      bucket = bucket_of(bytes);
    }
    ASSERT_GE(bucket, 0);
    ASSERT_LT(bucket, 100);
    first_pass.emplace_back(bytes, bucket);
    ++seen[static_cast<std::size_t>(bucket)];
  }
  // No hidden state: the same inputs, asked again in the reverse order (each
  // call after a different one than the first time), give the same buckets.
  for (auto it = first_pass.rbegin(); it != first_pass.rend(); ++it)
    ASSERT_EQ(bucket_of(std::string(it->first)), it->second);
  // 5000 names over 100 buckets: every bucket gets some (expected 50 each).
  for (int count : seen) EXPECT_GT(count, 10);
}

TEST(RoutingProperties, HashOfConcatenationIsSeededHash) {
  std::mt19937 rng(99);
  for (int i = 0; i < property_iterations; ++i) {
    const auto a = random_name(rng);
    const auto b = random_name(rng);
    const std::int32_t whole = routing_test::java_hash_closed_form(a.utf16 + b.utf16);
    ASSERT_EQ(java_hash_code(b.utf16, java_hash_code(a.utf16)), whole);
    ASSERT_EQ(bucket_of(b.utf8, a.utf8), routing_test::bucket_closed_form(whole));
  }
}


}  // namespace
}  // namespace figshift
