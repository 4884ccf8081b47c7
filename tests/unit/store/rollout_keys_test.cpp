// The guarded-rollout keys (issue #16) as the store validates them: through
// build_snapshot, so a bad value is refused with a message naming the field.
#include <gtest/gtest.h>

#include "figshift/routing.hpp"
#include "figshift/store/kv_map.hpp"
#include "figshift/store/snapshot_builder.hpp"

namespace figshift {
namespace {

KvMap with(KvMap extra) {
  KvMap kv{{"APIGW_A_URL", "http://a"}, {"APIGW_B1_URL", "http://b1"}};
  for (auto& [k, v] : extra) kv[k] = v;
  return kv;
}

std::string refusal(const KvMap& kv) {
  try {
    build_snapshot(kv, 1, "e");
  } catch (const InvalidStore& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(StoreRolloutKeys, APlanIsParsed) {
  const auto s = build_snapshot(
      with({{"traffic-split", "100"},
            {"traffic-plan",
             R"({"start_ms":1000,"from":3,"steps":[{"to":5,"over_s":60,"hold_s":300},{"to":100,"over_s":300}]})"}}),
      1, "e");
  ASSERT_TRUE(s->plan);
  EXPECT_EQ(s->plan->from, 3);
  EXPECT_EQ(s->plan->start_ms, 1000);
  ASSERT_EQ(s->plan->steps.size(), 2u);
  EXPECT_EQ(s->plan->steps[0].to, 5);
  EXPECT_EQ(s->plan->steps[0].over_ms, 60'000);
  EXPECT_EQ(s->plan->steps[0].hold_ms, 300'000);
  EXPECT_EQ(s->plan->steps[1].hold_ms, 0);
}

TEST(StoreRolloutKeys, BadPlansAreRefusedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"banana", "must be JSON"},
      {"[]", "must be a JSON object"},
      {R"({"steps":[{"to":5,"over_s":1}]})", "\"start_ms\" is required"},
      {R"({"start_ms":0,"steps":[]})", "\"steps\" must be an array of 1 to 20"},
      {R"({"start_ms":0,"steps":[{"to":101,"over_s":1}]})", "\"steps[0].to\" must be between 0 and 100"},
      {R"({"start_ms":0,"steps":[{"to":5,"over_s":-1}]})", "\"steps[0].over_s\" must be between"},
      {R"({"start_ms":0,"steps":[{"to":5}]})", "\"steps[0].over_s\" is required"},
      {R"({"start_ms":0,"steps":[{"to":5,"over_s":1,"hold":3}]})", "unknown field \"steps[0].hold\""},
      {R"({"start_ms":0,"steps":[{"to":25,"over_s":1},{"to":5,"over_s":1}]})",
       "\"steps[1].to\" is 5, below the 25 before it"},
      {R"({"start_ms":0,"from":50,"steps":[{"to":25,"over_s":1}]})", "below the 50 before it"},
      {R"({"start_ms":0,"steps":[{"to":5,"over_s":1}],"x":1})", "unknown field \"x\""},
  };
  for (const auto& [value, expected] : cases) {
    const auto message = refusal(with({{"traffic-plan", value}}));
    EXPECT_NE(message.find("traffic-plan: "), std::string::npos) << value << " -> " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << value << " -> " << message;
  }
}

TEST(StoreRolloutKeys, APlanAndARampTogetherAreRefused) {
  EXPECT_NE(refusal(with({{"traffic-plan", R"({"start_ms":0,"steps":[{"to":5,"over_s":1}]})"},
                          {"traffic-ramp", R"({"from":0,"to":5,"start_ms":0,"duration_ms":1})"}}))
                .find("only one of traffic-ramp and traffic-plan"),
            std::string::npos);
}

TEST(StoreRolloutKeys, AGuardIsParsedWithDefaults) {
  const auto s = build_snapshot(with({{"guard", R"({"max_error_ratio":0.05})"}}), 1, "e");
  ASSERT_TRUE(s->guard);
  EXPECT_DOUBLE_EQ(s->guard->max_error_ratio.value(), 0.05);
  EXPECT_FALSE(s->guard->max_p99_ms);
  EXPECT_EQ(s->guard->window_s, 30);
  EXPECT_EQ(s->guard->min_requests, 100);
  EXPECT_FALSE(s->guard->relative_to_legacy);
  const auto full = build_snapshot(
      with({{"guard",
             R"({"max_error_ratio":0.1,"max_p99_ms":500,"window_s":10,"min_requests":5,"relative_to_legacy":true})"}}),
      1, "e");
  EXPECT_EQ(full->guard->max_p99_ms.value(), 500);
  EXPECT_EQ(full->guard->window_s, 10);
  EXPECT_EQ(full->guard->min_requests, 5);
  EXPECT_TRUE(full->guard->relative_to_legacy);
}

TEST(StoreRolloutKeys, BadGuardsAreRefusedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{}", "needs a threshold"},
      {R"({"window_s":10})", "needs a threshold"},
      {R"({"max_error_ratio":0})", "\"max_error_ratio\" must be above 0 and at most 1"},
      {R"({"max_error_ratio":1.5})", "\"max_error_ratio\" must be above 0"},
      {R"({"max_error_ratio":"5%"})", "\"max_error_ratio\" must be a number"},
      {R"({"max_p99_ms":0})", "\"max_p99_ms\" must be between 1 and 4999"},
      {R"({"max_p99_ms":5000})", "\"max_p99_ms\" must be between 1 and 4999"},
      {R"({"max_p99_ms":500,"window_s":0})", "\"window_s\" must be between 1 and 3600"},
      {R"({"max_p99_ms":500,"min_requests":0})", "\"min_requests\" must be between"},
      {R"({"max_p99_ms":500,"relative_to_legacy":true})", "needs \"max_error_ratio\""},
      {R"({"max_p99_ms":500,"relative_to_legacy":1})", "must be true or false"},
      {R"({"max_p99_ms":500,"max_error":1})", "unknown field \"max_error\""},
  };
  for (const auto& [value, expected] : cases) {
    const auto message = refusal(with({{"guard", value}}));
    EXPECT_NE(message.find("guard: "), std::string::npos) << value << " -> " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << value << " -> " << message;
  }
}

TEST(StoreRolloutKeys, ATrippedGuardHoldsTheSplitAtZero) {
  const std::string tripped = R"({"metric":"error_ratio","upstream":"B1"})";
  EXPECT_TRUE(build_snapshot(with({{"guard-tripped", tripped}, {"traffic-split", "0"}}), 1, "e")->guard_tripped);
  EXPECT_NE(refusal(with({{"guard-tripped", tripped}, {"traffic-split", "25"}})).find("must stay 0"),
            std::string::npos);
  EXPECT_NE(refusal(with({{"guard-tripped", tripped},
                          {"traffic-plan", R"({"start_ms":0,"steps":[{"to":5,"over_s":1}]})"}}))
                .find("must stay 0"),
            std::string::npos);
  EXPECT_NE(refusal(with({{"guard-tripped", "not json"}})).find("guard-tripped: must be JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace figshift
