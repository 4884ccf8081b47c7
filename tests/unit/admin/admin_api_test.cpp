// The admin API's request router (src/admin/admin_api.hpp), free of sockets,
// against docs/admin-api.md: its routes, 401 before revealing whether a route
// exists, 404/405 (with Allow), JSON bodies everywhere, and the writes going
// through a Store built in memory (a fake backend, no file).
#include "admin/admin_api.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../store/store_test_support.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/store.hpp"
#include "figshift/telemetry/stats.hpp"

namespace figshift::admin {
namespace {

using json = nlohmann::json;
using store_test::BackendLog;
using store_test::FakeBackend;

constexpr const char* token = "s3cret-admin-token";
constexpr const char* good_auth = "Bearer s3cret-admin-token";
constexpr std::int64_t t0 = 1'800'000'000'000;  // Unix ms

// typical_store(): A (legacy), B1 behind an API Gateway stage, route:/orders = B1 /v2/orders, split 25.
class AdminApi : public ::testing::Test {
 protected:
  std::shared_ptr<BackendLog> backend = std::make_shared<BackendLog>();
  Store store{std::make_unique<FakeBackend>(backend), store_test::typical_store()};
  TrafficStats stats;
  bool draining = false;
  std::int64_t now = t0;
  AdminContext context{store, token, [this] { return stats; }, [this] { return draining; },
                       [this] { return now; }};

  ApiResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::string& if_match = "", const std::string& authorization = good_auth) {
    return handle(ApiRequest{method, target, authorization, if_match, body}, context);
  }

  static std::string header(const ApiResponse& res, const std::string& name) {
    for (const auto& [k, v] : res.headers)
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
        return v;
    return {};
  }

  static json body_of(const ApiResponse& res) {
    EXPECT_EQ(res.content_type, "application/json") << res.body;
    return json::parse(res.body);
  }

  // docs/admin-api.md: every answer is JSON; errors are {"error":"…"}.
  static void expect_error(const ApiResponse& res, unsigned status, const std::string& mentions = "") {
    EXPECT_EQ(res.status, status) << res.body;
    const json j = body_of(res);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << res.body;
    if (!mentions.empty())
      EXPECT_NE(j["error"].get<std::string>().find(mentions), std::string::npos) << res.body;
  }

  static std::set<std::string> allow_of(const ApiResponse& res) {
    std::set<std::string> methods;
    std::string item;
    std::istringstream in(header(res, "Allow"));
    while (std::getline(in, item, ',')) {
      item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
      if (!item.empty()) methods.insert(item);
    }
    return methods;
  }
};

TEST_F(AdminApi, HealthProbesNeedNoToken) {
  auto res = call("GET", "/healthz", "", "", "");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(body_of(res), (json{{"status", "ok"}}));
  res = call("GET", "/readyz", "", "", "Bearer wrong");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(body_of(res), (json{{"status", "ready"}}));
  draining = true;  // after SIGTERM
  res = call("GET", "/readyz", "", "", "");
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(body_of(res), (json{{"status", "draining"}}));
  EXPECT_EQ(call("GET", "/healthz", "", "", "").status, 200u) << "healthz: while the process runs";
}

TEST_F(AdminApi, TheDashboardPageNeedsNoToken) {
  const auto res = call("GET", "/", "", "", "");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.content_type.rfind("text/html", 0), 0u) << res.content_type;
}

TEST_F(AdminApi, WithoutTheTokenEveryOtherPathIs401AndRevealsNothing) {
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/admin/status"},   {"GET", "/admin/kv"},        {"PUT", "/admin/kv/traffic-split"},
      {"DELETE", "/admin/kv/x"},  {"POST", "/admin/rollback"}, {"GET", "/admin/rollback"},
      {"GET", "/metrics"},        {"GET", "/admin/nope"},      {"GET", "/nope"},
      {"POST", "/"},              {"POST", "/admin/traffic-shift"}};
  const auto version = store.version();
  for (const char* authorization : {"", "Bearer wrong", "Basic czNjcmV0LWFkbWluLXRva2Vu", "s3cret-admin-token"}) {
    std::vector<ApiResponse> answers;
    for (const auto& [method, target] : requests) {
      const auto res = call(method, target, "{\"percent\":50,\"seconds\":0}", "", authorization);
      expect_error(res, 401);
      EXPECT_EQ(body_of(res), (json{{"error", "unauthorized"}})) << method << " " << target;
      EXPECT_EQ(header(res, "WWW-Authenticate").rfind("Bearer", 0), 0u) << method << " " << target;
      answers.push_back(res);
    }
    // An existing route and a made-up one get the same answer: nothing to learn.
    for (const auto& res : answers) {
      EXPECT_EQ(res.body, answers.front().body);
      EXPECT_EQ(res.headers, answers.front().headers);
    }
  }
  EXPECT_EQ(store.version(), version) << "a refused write changed the store";
  EXPECT_EQ(store.items(), store_test::typical_store());
}

TEST_F(AdminApi, UnknownRoutesAre404) {
  for (const char* target : {"/admin/nope", "/nope", "/admin", "/admin/kvx", "/metrics/x"})
    expect_error(call("GET", target), 404);
}

TEST_F(AdminApi, AKnownPathWithTheWrongMethodIs405ListingTheRightOnes) {
  struct Case {
    const char* method;
    const char* target;
    std::set<std::string> allow;
  };
  for (const Case& c : std::vector<Case>{{"POST", "/admin/status", {"GET"}},
                                         {"GET", "/admin/traffic-shift", {"POST"}},
                                         {"GET", "/admin/rollback", {"POST"}},
                                         {"POST", "/metrics", {"GET"}},
                                         {"DELETE", "/admin/kv", {"GET", "POST"}},
                                         {"POST", "/admin/kv/traffic-split", {"GET", "PUT", "DELETE"}},
                                         {"PUT", "/", {"GET"}}}) {
    const auto res = call(c.method, c.target, "{}");
    expect_error(res, 405);
    EXPECT_EQ(allow_of(res), c.allow) << c.method << " " << c.target;
  }
  EXPECT_EQ(store.items(), store_test::typical_store());
}

TEST_F(AdminApi, ReadingTheStore) {
  auto res = call("GET", "/admin/kv");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(parse_kvs_json(res.body), store_test::typical_store()) << "KVS import format";
  EXPECT_EQ(header(res, "ETag"), store.etag());

  // <key> is percent-decoded; a plain key with '/' works too.
  for (const char* target : {"/admin/kv/route%3A%2Forders", "/admin/kv/route:/orders", "/admin/kv/route%3a%2forders"}) {
    res = call("GET", target);
    ASSERT_EQ(res.status, 200u) << target << ": " << res.body;
    EXPECT_EQ(body_of(res), (json{{"key", "route:/orders"}, {"value", "B1 /v2/orders"}})) << target;
    EXPECT_EQ(header(res, "ETag"), store.etag());
  }
  expect_error(call("GET", "/admin/kv/hash-salt"), 404);
  expect_error(call("GET", "/admin/kv/route%3"), 400);
  expect_error(call("GET", "/admin/kv/route%zz"), 400);
}

TEST_F(AdminApi, APutIsValidatedPersistedAndAnswersTheNewEtag) {
  const auto version = store.version();
  auto res = call("PUT", "/admin/kv/traffic-split", "30");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(body_of(res), (json{{"etag", store.etag()}, {"version", store.version()}}));
  EXPECT_GT(store.version(), version);
  EXPECT_EQ(store.items().at("traffic-split"), "30");
  ASSERT_FALSE(backend->persisted.empty());
  EXPECT_EQ(backend->persisted.back().at("traffic-split"), "30");

  // Invalid: 400 naming the key, and nothing changes.
  const auto items = store.items();
  const auto etag = store.etag();
  expect_error(call("PUT", "/admin/kv/traffic-split", "101"), 400, "traffic-split");
  expect_error(call("PUT", "/admin/kv/route:/x", "B9"), 400, "route:/x");
  EXPECT_EQ(store.items(), items);
  EXPECT_EQ(store.etag(), etag);
}

TEST_F(AdminApi, DeletingAKey) {
  expect_error(call("DELETE", "/admin/kv/hash-salt"), 404);
  ASSERT_EQ(call("PUT", "/admin/kv/hash-salt", "pepper").status, 200u);
  const auto res = call("DELETE", "/admin/kv/hash-salt");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(body_of(res), (json{{"etag", store.etag()}, {"version", store.version()}}));
  EXPECT_EQ(store.items(), store_test::typical_store());
  // Deleting the legacy upstream's URL would leave the store invalid.
  expect_error(call("DELETE", "/admin/kv/APIGW_A_URL"), 400);
  EXPECT_EQ(store.items(), store_test::typical_store());
}

TEST_F(AdminApi, IfMatchGuardsEveryWrite) {
  const std::string stale = store.etag();
  ASSERT_EQ(call("PUT", "/admin/kv/traffic-split", "30", stale).status, 200u);
  const auto items = store.items();
  expect_error(call("PUT", "/admin/kv/traffic-split", "31", stale), 412);
  expect_error(call("DELETE", "/admin/kv/route:/orders", "", stale), 412);
  expect_error(call("POST", "/admin/kv", R"({"puts":[{"key":"traffic-split","value":"32"}]})", stale), 412);
  EXPECT_EQ(store.items(), items) << "a stale If-Match changed the store";
  EXPECT_EQ(call("PUT", "/admin/kv/traffic-split", "33", store.etag()).status, 200u);
  EXPECT_EQ(call("PUT", "/admin/kv/traffic-split", "34", "*").status, 200u) << "* matches any version";
  EXPECT_EQ(store.items().at("traffic-split"), "34");
}

TEST_F(AdminApi, ABatchIsAppliedWholeOrNotAtAll) {
  const auto items = store.items();
  // The second put routes to an undefined upstream: the first must not be applied either.
  expect_error(call("POST", "/admin/kv",
                    R"({"puts":[{"key":"traffic-split","value":"40"},{"key":"route:/x","value":"B9"}]})"),
               400, "route:/x");
  EXPECT_EQ(store.items(), items);
  for (const char* bad : {"not json", "[]", R"({"puts":{}})", R"({"puts":[{"key":"a"}]})",
                          R"({"deletes":[{"key":"a","value":"b"}]})", R"({"upserts":[]})"})
    expect_error(call("POST", "/admin/kv", bad), 400);
  EXPECT_EQ(store.items(), items);

  const auto res = call("POST", "/admin/kv",
                        R"({"puts":[{"key":"APIGW_B2_URL","value":"http://b2.example"},
                                    {"key":"route:/users","value":"B2"}],
                            "deletes":[{"key":"route:/orders"}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(body_of(res), (json{{"etag", store.etag()}, {"version", store.version()}}));
  auto want = store_test::typical_store();
  want.erase("route:/orders");
  want["APIGW_B2_URL"] = "http://b2.example";
  want["route:/users"] = "B2";
  EXPECT_EQ(store.items(), want);
}

TEST_F(AdminApi, TrafficShiftWritesTheSplitAndARampFromTheSplitNow) {
  auto res = call("POST", "/admin/traffic-shift", R"({"percent":75,"seconds":60})");
  ASSERT_EQ(res.status, 200u) << res.body;
  json status = body_of(res);  // the new status
  EXPECT_EQ(status["traffic_split"], 75);
  EXPECT_EQ(status["split"], 25) << "the ramp starts where the split was";
  EXPECT_EQ(status["ramp"]["from"], 25);
  EXPECT_EQ(status["ramp"]["to"], 75);
  EXPECT_EQ(status["ramp"]["start_ms"], t0);
  EXPECT_EQ(status["ramp"]["duration_ms"], 60'000);
  EXPECT_EQ(status["ramp"]["active"], true);
  EXPECT_EQ(store.items().at("traffic-split"), "75");
  EXPECT_EQ(json::parse(store.items().at("traffic-ramp")),
            (json{{"from", 25}, {"to", 75}, {"start_ms", t0}, {"duration_ms", 60'000}}));

  // Halfway: from + (to - from) * elapsed / duration.
  now = t0 + 30'000;
  status = body_of(call("GET", "/admin/status"));
  EXPECT_EQ(status["split"], 50);
  EXPECT_DOUBLE_EQ(status["ramp"]["progress"].get<double>(), 0.5);
  EXPECT_EQ(status["ramp"]["remaining_ms"], 30'000);

  // seconds 0: at once, and the ramp is gone.
  res = call("POST", "/admin/traffic-shift", R"({"percent":10,"seconds":0})");
  ASSERT_EQ(res.status, 200u) << res.body;
  status = body_of(res);
  EXPECT_EQ(status["split"], 10);
  EXPECT_TRUE(status["ramp"].is_null()) << status.dump();
  EXPECT_EQ(store.items().count("traffic-ramp"), 0u);
}

TEST_F(AdminApi, TrafficShiftRefusesWhatIsNotPercentAndSeconds) {
  const auto items = store.items();
  for (const char* bad : {R"({"percent":101,"seconds":0})", R"({"percent":-1})", R"({"percent":"50"})",
                          R"({"percent":50.5})", R"({"seconds":10})", R"({"percent":50,"seconds":86401})",
                          R"({"percent":50,"seconds":-1})", R"({"percent":50,"over":10})", "not json",
                          "[50]"})
    expect_error(call("POST", "/admin/traffic-shift", bad), 400);
  EXPECT_EQ(store.items(), items);
  EXPECT_EQ(call("POST", "/admin/traffic-shift", R"({"percent":100,"seconds":86400})").status, 200u);
}

TEST_F(AdminApi, RollbackIsSplitZeroAndNoRamp) {
  ASSERT_EQ(call("POST", "/admin/traffic-shift", R"({"percent":90,"seconds":600})").status, 200u);
  now = t0 + 60'000;
  const auto res = call("POST", "/admin/rollback");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json status = body_of(res);
  EXPECT_EQ(status["split"], 0);
  EXPECT_EQ(status["traffic_split"], 0);
  EXPECT_TRUE(status["ramp"].is_null()) << status.dump();
  EXPECT_EQ(store.items().at("traffic-split"), "0");
  EXPECT_EQ(store.items().count("traffic-ramp"), 0u);
}

TEST_F(AdminApi, StatusShowsTheStoreAndTheCounters) {
  stats.upstreams["A"].responses[0][1] = 1234;
  stats.upstreams["B1"].responses[1][1] = 50;
  stats.upstreams["B1"].responses[1][4] = 6;
  const auto res = call("GET", "/admin/status");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json s = body_of(res);
  EXPECT_EQ(s["split"], 25);
  EXPECT_EQ(s["traffic_split"], 25);
  EXPECT_TRUE(s["ramp"].is_null());
  EXPECT_EQ(s["mode"], "proxy");
  EXPECT_EQ(s["legacy_upstream"], "A");
  EXPECT_EQ(s["version"], store.version());
  EXPECT_EQ(s["etag"], store.etag());
  std::set<std::pair<std::string, std::string>> upstreams;
  for (const auto& u : s["upstreams"])
    upstreams.emplace(u.at("name").get<std::string>(), u.at("url").get<std::string>());
  EXPECT_EQ(upstreams, (std::set<std::pair<std::string, std::string>>{
                           {"A", "http://legacy.example"},
                           {"B1", "https://b1.execute-api.eu-west-1.amazonaws.com/prod"}}));
  EXPECT_EQ(s["routes"], json::parse(R"([{"prefix":"/orders","upstream":"B1","replacement":"/v2/orders"}])"));
  EXPECT_EQ(s["requests"], (json{{"A", 1234}, {"B1", 56}}));
  EXPECT_EQ(s["draining"], false);
  draining = true;
  EXPECT_EQ(body_of(call("GET", "/admin/status"))["draining"], true);
}

TEST_F(AdminApi, MetricsAreThePrometheusTextFormat) {
  stats.upstreams["B1"].responses[1][1] = 3;
  const auto res = call("GET", "/metrics");
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(res.content_type.rfind("text/plain", 0), 0u) << res.content_type;
  EXPECT_NE(res.body.find("# TYPE figshift_requests_total counter\n"), std::string::npos);
  EXPECT_NE(res.body.find("\nfigshift_store_version " + std::to_string(store.version()) + "\n"),
            std::string::npos);
  EXPECT_NE(res.body.find("\nfigshift_traffic_split_percent 25\n"), std::string::npos);
}

TEST_F(AdminApi, WithoutAConfiguredTokenNoneIsAsked) {
  context.token.clear();  // the loopback default
  EXPECT_EQ(call("GET", "/admin/status", "", "", "").status, 200u);
  EXPECT_EQ(call("PUT", "/admin/kv/traffic-split", "5", "", "").status, 200u);
  expect_error(call("GET", "/admin/nope", "", "", ""), 404);
}

}  // namespace
}  // namespace figshift::admin
