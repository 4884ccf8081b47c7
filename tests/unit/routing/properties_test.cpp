// Property tests over many random usernames from a fixed seed: reproducible,
// and wide enough to hit surrogate pairs, wrap-around and every bucket.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "figshift/routing.hpp"
#include "routing_test_support.hpp"

namespace figshift {
namespace {

using routing_test::append_code_point;
using routing_test::basic_header;

constexpr int iterations = 5000;

struct Name {
  std::string utf8;
  std::u16string utf16;
};

// A valid username with ASCII, two- and three-byte BMP and astral characters.
Name random_name(std::mt19937& rng) {
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

std::string random_bytes(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(0, 16);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(static_cast<std::size_t>(length(rng)), '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

Snapshot snapshot_with_split(int split) {
  Snapshot s;
  Upstream a;
  a.name = "A";
  Upstream b;
  b.name = "B";
  s.upstreams = {a, b};
  s.routes = RouteTable({Route{"/", 1, std::nullopt}});
  s.split = split;
  return s;
}

TEST(RoutingProperties, ValidUtf8DecodesToItsUtf16AndHashesLikeTheClosedForm) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < iterations; ++i) {
    const Name name = random_name(rng);
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
  for (int i = 0; i < iterations; ++i) {
    int bucket = -1;
    std::string bytes;
    if (i % 2 == 0) {
      const Name name = random_name(rng);
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
  for (int i = 0; i < iterations; ++i) {
    const Name a = random_name(rng);
    const Name b = random_name(rng);
    const std::int32_t whole = routing_test::java_hash_closed_form(a.utf16 + b.utf16);
    ASSERT_EQ(java_hash_code(b.utf16, java_hash_code(a.utf16)), whole);
    ASSERT_EQ(bucket_of(b.utf8, a.utf8), routing_test::bucket_closed_form(whole));
  }
}

TEST(RoutingProperties, DecideMatchesBucketOfThroughTheHeader) {
  std::mt19937 rng(4242);
  const Snapshot s = snapshot_with_split(50);
  for (int i = 0; i < iterations; ++i) {
    if (i % 2 == 0) {
      // A valid name: the bucket the closed form gives for its UTF-16.
      const Name name = random_name(rng);
      const std::string header = basic_header(name.utf8, "pw");
      const Decision d = decide({.target = "/", .authorization = header}, s, 0);
      ASSERT_EQ(d.bucket, routing_test::bucket_closed_form(routing_test::java_hash_closed_form(name.utf16)))
          << i;
      continue;
    }
    // Random bytes (invalid UTF-8 too): decide() agrees with bucket_of() on the username part.
    const std::string bytes = random_bytes(rng);
    const std::string header = basic_header(bytes, "pw");
    const Decision d = decide({.target = "/", .authorization = header}, s, 0);
    if (bytes.find(':') != std::string::npos) {
      // The username ends at the first ':' the random bytes happen to hold.
      ASSERT_EQ(d.bucket, bucket_of(bytes.substr(0, bytes.find(':')))) << i;
    } else {
      ASSERT_EQ(d.bucket, bucket_of(bytes)) << i;
    }
  }
}

TEST(RoutingProperties, RaisingTheSplitNeverMovesAUserBack) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> split(0, 100);
  for (int i = 0; i < iterations; ++i) {
    const std::string header = basic_header(random_name(rng).utf8);
    const int s = split(rng);
    const int k = std::uniform_int_distribution<int>(0, 100 - s)(rng);
    const Snapshot lower = snapshot_with_split(s);
    const Snapshot higher = snapshot_with_split(s + k);
    const Decision before = decide({.target = "/x", .authorization = header}, lower, 0);
    const Decision after = decide({.target = "/x", .authorization = header}, higher, 0);
    ASSERT_EQ(before.bucket, after.bucket);
    if (before.group == Group::migrated) {
      ASSERT_EQ(after.group, Group::migrated) << "split " << s << " -> " << s + k;
      ASSERT_EQ(after.upstream->name, "B");
    }
    ASSERT_EQ(before.group == Group::migrated, before.bucket < s);
  }
}

TEST(RoutingProperties, RampUpIsMonotonicInTime) {
  std::mt19937 rng(555);
  for (int i = 0; i < 200; ++i) {
    const int from = std::uniform_int_distribution<int>(0, 100)(rng);
    const int to = std::uniform_int_distribution<int>(from, 100)(rng);
    const std::int64_t duration = std::uniform_int_distribution<std::int64_t>(1, 10'000'000)(rng);
    const Ramp ramp{.from = from, .to = to, .start_ms = 1'000'000, .duration_ms = duration};
    int previous = split_at(0, ramp, 0);
    ASSERT_EQ(previous, from);
    for (int step = 0; step <= 64; ++step) {
      const std::int64_t t = 1'000'000 + duration * step / 60;
      const int now = split_at(0, ramp, t);
      ASSERT_GE(now, previous);
      ASSERT_GE(now, from);
      ASSERT_LE(now, to);
      previous = now;
    }
    ASSERT_EQ(previous, to);
  }
}

}  // namespace
}  // namespace figshift
