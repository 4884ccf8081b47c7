// The etcd v3 JSON gateway messages (src/store/etcd_json.*), checked against
// bodies captured from etcd 3.4.23 (Debian 12's etcd-server), and the Store's
// handling of a shared backend's conflicts and outages, with an in-memory fake.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "figshift/store/backend.hpp"
#include "figshift/store/store.hpp"
#include "store/etcd_json.hpp"

namespace figshift {
namespace {

using json = nlohmann::json;
using namespace figshift::etcd;

KvMap valid_store() {
  return {{"APIGW_A_URL", "http://127.0.0.1:9001"}, {"APIGW_B1_URL", "http://127.0.0.1:9002"},
          {"traffic-split", "10"}, {"route:/orders", "B1 /v2/orders"}};
}

TEST(EtcdJson, Base64RoundTripsEveryByteAndRefusesGarbage) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 255u, 256u})
    EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  EXPECT_EQ(base64_encode("/figshift/a"), "L2ZpZ3NoaWZ0L2E=");
  EXPECT_EQ(base64_decode("MQ=="), "1");
  EXPECT_EQ(base64_decode("M*=="), std::nullopt);
  EXPECT_EQ(base64_decode("MQ=x"), std::nullopt);
}

TEST(EtcdJson, PrefixRangeEndIsThePrefixWithItsLastByteIncremented) {
  EXPECT_EQ(prefix_range_end("/figshift/"), "/figshift0");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end("\xff"), std::string(1, '\0'));
}

TEST(EtcdJson, ParsesARangeResponseWithStringInt64sAndBase64Bytes) {
  const std::string body =
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},)"
      R"("kvs":[{"key":"L2ZpZ3NoaWZ0L2E=","create_revision":"2","mod_revision":"2","version":"1","value":"MQ=="}],"count":"1"})";
  std::string error;
  const RangeResult r = parse_range(body, "/figshift/", error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(r.revision, 2);
  EXPECT_EQ(r.kv, (KvMap{{"a", "1"}}));
  EXPECT_EQ(r.mod_revision.at("a"), 2);
}

TEST(EtcdJson, AnEmptyRangeLeavesKvsOutAndAnEmptyValueLeavesValueOut) {
  std::string error;
  RangeResult r = parse_range(R"({"header":{"revision":"7"}})", "/figshift/", error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(r.revision, 7);
  EXPECT_TRUE(r.kv.empty());
  r = parse_range(R"({"header":{"revision":"8"},"kvs":[{"key":"L2ZpZ3NoaWZ0L2E=","mod_revision":"8"}]})",
                  "/figshift/", error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(r.kv, (KvMap{{"a", ""}}));
}

TEST(EtcdJson, MalformedResponsesGiveAnErrorNotAnException) {
  std::string error;
  parse_range("not json", "/figshift/", error);
  EXPECT_NE(error, "");
  parse_range(R"({"kvs":[]})", "/figshift/", error);
  EXPECT_NE(error.find("header revision"), std::string::npos);
  parse_range(R"({"header":{"revision":"3"},"kvs":[{"key":"!!"}]})", "/figshift/", error);
  EXPECT_NE(error.find("malformed"), std::string::npos);
  parse_range(R"({"header":{"revision":"3"},"kvs":[{"key":"L290aGVyL2E="}]})", "/figshift/", error);
  EXPECT_NE(error.find("malformed"), std::string::npos) << "a key outside the prefix";
  parse_txn(R"({"header":{"revision":"x"}})", error);
  EXPECT_NE(error, "");
}

TEST(EtcdJson, WatchLinesAsEtcdSendsThem) {
  const std::string prefix = "/figshift/";
  std::string error;
  WatchMessage m = parse_watch_line(
      R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"2"},"created":true}})",
      prefix, error);
  ASSERT_EQ(error, "");
  EXPECT_TRUE(m.created);
  EXPECT_EQ(m.revision, 2);
  m = parse_watch_line(
      R"({"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L2ZpZ3NoaWZ0L2I=","create_revision":"3","mod_revision":"3","version":"1","value":"eA=="}}]}})",
      prefix, error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(m.events.size(), 1u);
  EXPECT_FALSE(m.events[0].deleted) << "PUT is the enum's zero value: no \"type\" field";
  EXPECT_EQ(m.events[0].key, "b");
  EXPECT_EQ(m.events[0].value, "x");
  EXPECT_EQ(m.events[0].mod_revision, 3);
  m = parse_watch_line(
      R"({"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"L2ZpZ3NoaWZ0L2I=","mod_revision":"4"}}]}})",
      prefix, error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(m.events.size(), 1u);
  EXPECT_TRUE(m.events[0].deleted);
  m = parse_watch_line(
      R"({"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"6","cancel_reason":"mvcc: required revision has been compacted"}})",
      prefix, error);
  ASSERT_EQ(error, "");
  EXPECT_TRUE(m.canceled);
  EXPECT_EQ(m.compact_revision, 6);
  EXPECT_EQ(m.revision, 0) << "etcd 3.4 sends a cancelled watch's header without a revision";
  parse_watch_line(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})", prefix, error);
  EXPECT_NE(error.find("no leader"), std::string::npos);
}

TEST(EtcdJson, AWriteComparesTheWholeRangeAndEveryKeySeenAndSendsOnlyTheDifference) {
  const KvMap seen = valid_store();
  KvMap next = seen;
  next["traffic-split"] = "25";
  next.erase("route:/orders");
  next["mode"] = "redirect";
  EXPECT_EQ(write_ops(seen, next), 3u);
  const json txn = json::parse(write_txn("/figshift/", seen, 41, next));
  ASSERT_EQ(txn["compare"].size(), 1 + seen.size());
  const json& range = txn["compare"][0];
  EXPECT_EQ(range["key"], base64_encode("/figshift/"));
  EXPECT_EQ(range["range_end"], base64_encode("/figshift0"));
  EXPECT_EQ(range["target"], "MOD");
  EXPECT_EQ(range["result"], "LESS");
  EXPECT_EQ(range["mod_revision"], "42") << "int64 as a JSON string: nothing written after 41";
  EXPECT_EQ(txn["compare"][1]["target"], "VERSION");
  EXPECT_EQ(txn["compare"][1]["result"], "GREATER");
  ASSERT_EQ(txn["success"].size(), 3u);
  std::set<std::string> puts, deletes;
  for (const auto& op : txn["success"]) {
    if (op.contains("request_put"))
      puts.insert(*base64_decode(op["request_put"]["key"].get<std::string>()));
    else
      deletes.insert(*base64_decode(op["request_delete_range"]["key"].get<std::string>()));
  }
  EXPECT_EQ(puts, (std::set<std::string>{"/figshift/traffic-split", "/figshift/mode"}));
  EXPECT_EQ(deletes, (std::set<std::string>{"/figshift/route:/orders"}));
  // Past the per-key check budget only the range compare remains (documented: deletes unseen).
  EXPECT_EQ(json::parse(write_txn("/figshift/", seen, 41, next, 2))["compare"].size(), 1u);
}

TEST(EtcdJson, TheSeedIsWrittenOnlyWhileNothingUnderThePrefixWasEverCreated) {
  const json txn = json::parse(seed_txn("/figshift/", valid_store()));
  ASSERT_EQ(txn["compare"].size(), 1u);
  EXPECT_EQ(txn["compare"][0]["target"], "CREATE");
  EXPECT_EQ(txn["compare"][0]["result"], "LESS");
  EXPECT_EQ(txn["compare"][0]["create_revision"], "1");
  EXPECT_EQ(txn["compare"][0]["range_end"], base64_encode("/figshift0"));
  EXPECT_EQ(txn["success"].size(), valid_store().size());
  EXPECT_EQ(watch_request("/figshift/", 43),
            json({{"create_request",
                   {{"key", base64_encode("/figshift/")},
                    {"range_end", base64_encode("/figshift0")},
                    {"start_revision", "43"}}}})
                .dump());
}

TEST(EtcdJson, AuthenticateRequestAndTokenAsEtcdAnswers) {
  EXPECT_EQ(json::parse(auth_request("figshift", "s\"3")), (json{{"name", "figshift"}, {"password", "s\"3"}}));
  std::string error;
  EXPECT_EQ(parse_auth(R"({"header":{"revision":"2"},"token":"ScvkYvFRnxGrmzYi.16"})", error),
            "ScvkYvFRnxGrmzYi.16");
  EXPECT_EQ(error, "");
  parse_auth(R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})", error);
  EXPECT_NE(error.find("without a token"), std::string::npos);
  EXPECT_EQ(error_message(R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})"),
            "etcdserver: invalid auth token");
}

// An in-memory stand-in for a backend many replicas share.
class FakeSharedBackend : public StoreBackend {
 public:
  enum class Next { accept, conflict, unavailable } next = Next::accept;
  KvMap stored;
  std::optional<KvMap> load() override { return stored; }
  void persist(const KvMap& kv) override {
    if (next == Next::conflict) throw StoreConflict("another replica wrote first");
    if (next == Next::unavailable) throw StoreUnavailable("etcd is unreachable");
    stored = kv;
  }
  std::string describe() const override { return "fake"; }
  bool changed() override { return false; }
};

TEST(SharedBackendStore, ConflictsAre412OutagesAre503AndNeitherChangesWhatIsServed) {
  auto owned = std::make_unique<FakeSharedBackend>();
  FakeSharedBackend& backend = *owned;
  Store store(std::move(owned), valid_store());
  const std::string etag = store.etag();
  Batch batch;
  batch.puts.emplace_back("traffic-split", "30");

  backend.next = FakeSharedBackend::Next::conflict;
  WriteResult r = store.apply(batch, etag);
  EXPECT_EQ(r.status, WriteStatus::precondition_failed);
  EXPECT_EQ(r.message, "another replica wrote first");
  EXPECT_EQ(store.etag(), etag);
  EXPECT_EQ(store.snapshot()->split, 10);

  backend.next = FakeSharedBackend::Next::unavailable;
  r = store.apply(batch);
  EXPECT_EQ(r.status, WriteStatus::unavailable);
  EXPECT_EQ(store.snapshot()->split, 10);
  EXPECT_EQ(store.rejected_writes(), 2u);

  backend.next = FakeSharedBackend::Next::accept;
  r = store.apply(batch, etag);
  EXPECT_EQ(r.status, WriteStatus::ok);
  EXPECT_EQ(store.snapshot()->split, 30);
  EXPECT_EQ(backend.stored.at("traffic-split"), "30");
}

TEST(SharedBackendStore, AnInvalidStateFromTheWatchIsRefusedAndCounted) {
  Store store(std::make_unique<FakeSharedBackend>(), valid_store());
  KvMap banana = valid_store();
  banana["traffic-split"] = "banana";
  const WriteResult r = store.replace(banana, false);
  EXPECT_EQ(r.status, WriteStatus::invalid);
  EXPECT_NE(r.message.find("traffic-split"), std::string::npos);
  EXPECT_EQ(store.reload_failures(), 1u);
  EXPECT_EQ(store.snapshot()->split, 10);
}

}  // namespace
}  // namespace figshift
