// Validation of the #17 store keys: user-key, pin:<user>, buckets, and
// traffic-split's decimals (10000 buckets only).

#include <gtest/gtest.h>

#include <string>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/snapshot_builder.hpp"

namespace figshift {
namespace {

KvMap base(std::initializer_list<std::pair<const std::string, std::string>> extra) {
  KvMap kv{{"APIGW_A_URL", "http://a.example"}};
  for (const auto& [k, v] : extra) kv[k] = v;
  return kv;
}

std::string refusal(const KvMap& kv) {
  try {
    build_snapshot(kv);
  } catch (const InvalidStore& e) {
    return e.what();
  }
  return "";
}

TEST(UserKeysStore, UserKeyModes) {
  EXPECT_EQ(build_snapshot(base({}))->user_key.kind, UserKey::Kind::basic);
  EXPECT_EQ(build_snapshot(base({{"user-key", "basic"}}))->user_key, UserKey{});
  EXPECT_EQ(build_snapshot(base({{"user-key", "jwt"}}))->user_key,
            (UserKey{UserKey::Kind::jwt, "sub"}));
  EXPECT_EQ(build_snapshot(base({{"user-key", "jwt:email"}}))->user_key,
            (UserKey{UserKey::Kind::jwt, "email"}));
  EXPECT_EQ(build_snapshot(base({{"user-key", "header:X-User-Id"}}))->user_key,
            (UserKey{UserKey::Kind::header, "X-User-Id"}));
  EXPECT_EQ(build_snapshot(base({{"user-key", "cookie:session_id"}}))->user_key,
            (UserKey{UserKey::Kind::cookie, "session_id"}));
}

TEST(UserKeysStore, BadUserKeysAreRefusedNamingTheKey) {
  for (const std::string bad :
       {"", "Basic", "header", "header:", "header:X User", "cookie:a;b", "jwt:", "token:sub",
        "header:Host", "header:authorization", "header:Cookie", "header:Content-Length"}) {
    const std::string why = refusal(base({{"user-key", bad}}));
    EXPECT_TRUE(why.starts_with("user-key: ")) << bad << " -> " << why;
  }
}

TEST(UserKeysStore, Pins) {
  const auto s = build_snapshot(base({{"pin:alice", "new"}, {"pin:bob@example.com", "legacy"}}));
  ASSERT_EQ(s->pins.size(), 2u);
  EXPECT_EQ(s->pins.at("alice"), Group::migrated);
  EXPECT_EQ(s->pins.at("bob@example.com"), Group::legacy);
  EXPECT_TRUE(refusal(base({{"pin:alice", "New"}})).starts_with("pin:alice: must be \"new\""));
  EXPECT_TRUE(refusal(base({{"pin:", "new"}})).starts_with("pin:: "));
}

TEST(UserKeysStore, HundredBucketsKeepIntegerSplits) {
  EXPECT_EQ(build_snapshot(base({{"traffic-split", "42"}}))->split_hundredths, 4200);
  EXPECT_EQ(build_snapshot(base({{"traffic-split", "42"}}))->split, 42);
  for (const std::string bad : {"0.25", "42.0", "101", "-1", "", "4x", "1e1"})
    EXPECT_TRUE(refusal(base({{"traffic-split", bad}}))
                    .starts_with("traffic-split: must be an integer from 0 to 100"))
        << bad;
}

TEST(UserKeysStore, TenThousandBucketsTakeTwoDecimals) {
  auto split = [](const std::string& text) {
    return build_snapshot(base({{"buckets", "10000"}, {"traffic-split", text}}))->split_hundredths;
  };
  EXPECT_EQ(split("0.25"), 25);
  EXPECT_EQ(split("1.5"), 150);
  EXPECT_EQ(split("33.33"), 3333);
  EXPECT_EQ(split("100"), 10000);
  EXPECT_EQ(split("100.00"), 10000);
  EXPECT_EQ(build_snapshot(base({{"buckets", "10000"}, {"traffic-split", "33.33"}}))->split, 33);
  for (const std::string bad : {"0.125", "100.01", ".5", "5.", "1,5", "-0.5", "1.-5", "101"})
    EXPECT_TRUE(refusal(base({{"buckets", "10000"}, {"traffic-split", bad}}))
                    .starts_with("traffic-split: "))
        << bad;
  EXPECT_TRUE(refusal(base({{"buckets", "1000"}})).starts_with("buckets: must be 100"));
}

TEST(UserKeysStore, ATrippedGuardRefusesAFractionalSplitToo) {
  EXPECT_TRUE(
      refusal(base({{"buckets", "10000"}, {"traffic-split", "0.25"}, {"guard-tripped", "{}"}}))
          .starts_with("guard-tripped: "));
}

}  // namespace
}  // namespace figshift
