// Store: atomic, validated, If-Match-guarded writes (DESIGN.md §2), against a
// recording fake backend.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/kvs_format.hpp"
#include "figshift/store/store.hpp"
#include "store_test_support.hpp"

namespace figshift {
namespace {

using store_test::BackendLog;
using store_test::contains;
using store_test::FakeBackend;
using store_test::typical_store;

struct StoreWrites : ::testing::Test {
  std::shared_ptr<BackendLog> log = std::make_shared<BackendLog>();
  Store store{std::make_unique<FakeBackend>(log), typical_store()};
  std::vector<std::shared_ptr<const Snapshot>> published;

  void SetUp() override {
    store.subscribe([this](const std::shared_ptr<const Snapshot>& s) { published.push_back(s); });
  }

  // Everything observable stays as it was.
  void expect_unchanged(const std::string& etag_before, std::uint64_t version_before) {
    EXPECT_EQ(store.items(), typical_store());
    EXPECT_EQ(store.etag(), etag_before);
    EXPECT_EQ(store.version(), version_before);
    EXPECT_EQ(store.snapshot()->split, 25);
    EXPECT_TRUE(log->persisted.empty());
    EXPECT_TRUE(published.empty());
  }
};

TEST_F(StoreWrites, InitialContent) {
  EXPECT_EQ(store.items(), typical_store());
  EXPECT_EQ(store.etag(), etag_of(typical_store()));
  EXPECT_EQ(store.snapshot()->etag, store.etag());
  EXPECT_EQ(store.snapshot()->version, store.version());
  EXPECT_EQ(store.snapshot()->split, 25);
  EXPECT_TRUE(log->persisted.empty());  // the initial content came from somewhere already
}

TEST(StoreConstruction, InvalidInitialContentThrows) {
  auto log = std::make_shared<BackendLog>();
  EXPECT_THROW(Store(std::make_unique<FakeBackend>(log), {{"traffic-split", "5"}}), InvalidStore);
}

TEST_F(StoreWrites, ApplyPutsAndDeletesTogether) {
  const auto version = store.version();
  Batch batch;
  batch.puts = {{"APIGW_B2_URL", "http://b2.example"},
                {"route:/users", "B2"},
                {"traffic-split", "50"}};
  batch.deletes = {"route:/orders"};
  const WriteResult r = store.apply(batch);
  ASSERT_EQ(r.status, WriteStatus::ok) << r.message;

  KvMap expected = typical_store();
  expected.erase("route:/orders");
  expected["APIGW_B2_URL"] = "http://b2.example";
  expected["route:/users"] = "B2";
  expected["traffic-split"] = "50";
  EXPECT_EQ(store.items(), expected);
  EXPECT_EQ(store.etag(), etag_of(expected));
  EXPECT_EQ(r.etag, store.etag());
  EXPECT_EQ(store.version(), version + 1);
  ASSERT_EQ(log->persisted.size(), 1u);
  EXPECT_EQ(log->persisted[0], expected);

  auto s = store.snapshot();
  EXPECT_EQ(s->split, 50);
  EXPECT_EQ(s->etag, store.etag());
  EXPECT_EQ(s->version, store.version());
  EXPECT_EQ(s->routes.match("/orders"), nullptr);
  ASSERT_NE(s->routes.match("/users/1"), nullptr);
}

TEST_F(StoreWrites, BatchValidAsAWholeEvenIfAStepAloneWouldNotBe) {
  // The route names B2, which only this same batch defines.
  Batch batch;
  batch.puts = {{"route:/users", "B2"}, {"APIGW_B2_URL", "http://b2.example"}};
  EXPECT_EQ(store.apply(batch).status, WriteStatus::ok);
  // Deleting an upstream together with the only route to it.
  Batch removal;
  removal.deletes = {"APIGW_B2_URL", "route:/users"};
  EXPECT_EQ(store.apply(removal).status, WriteStatus::ok);
  EXPECT_EQ(store.items(), typical_store());
}

TEST_F(StoreWrites, DeletingAnAbsentKeyIsHarmless) {
  Batch batch;
  batch.deletes = {"hash-salt"};
  const auto r = store.apply(batch);
  EXPECT_EQ(r.status, WriteStatus::ok);
  EXPECT_EQ(store.items(), typical_store());
}

TEST_F(StoreWrites, InvalidBatchChangesNothing) {
  const auto etag = store.etag();
  const auto version = store.version();
  const auto snapshot = store.snapshot();
  Batch batch;
  batch.puts = {{"traffic-split", "50"}, {"route:/users", "B9"}};  // second is invalid
  const WriteResult r = store.apply(batch);
  EXPECT_EQ(r.status, WriteStatus::invalid);
  EXPECT_TRUE(contains(r.message, "route:/users")) << r.message;
  EXPECT_EQ(r.etag, etag);
  EXPECT_EQ(store.snapshot(), snapshot);
  expect_unchanged(etag, version);
}

TEST_F(StoreWrites, DeletingAnUpstreamStillRoutedToIsRefused) {
  const auto etag = store.etag();
  const auto version = store.version();
  Batch batch;
  batch.deletes = {"APIGW_B1_URL"};
  const WriteResult r = store.apply(batch);
  EXPECT_EQ(r.status, WriteStatus::invalid);
  EXPECT_FALSE(r.message.empty());
  expect_unchanged(etag, version);
}

TEST_F(StoreWrites, StaleIfMatchIsRefusedAndChangesNothing) {
  const auto etag = store.etag();
  const auto version = store.version();
  Batch batch;
  batch.puts = {{"traffic-split", "60"}};
  for (const std::string stale : {std::string("\"0000000000\""), etag_of({}), std::string(""),
                                  etag.substr(1, etag.size() - 2) /* unquoted */}) {
    const WriteResult r = store.apply(batch, stale);
    EXPECT_EQ(r.status, WriteStatus::precondition_failed) << stale;
    EXPECT_EQ(r.etag, etag);
    EXPECT_FALSE(r.message.empty());
  }
  expect_unchanged(etag, version);
}

TEST_F(StoreWrites, IfMatchOfAnEarlierVersionIsStale) {
  const auto first = store.etag();
  Batch a;
  a.puts = {{"traffic-split", "30"}};
  ASSERT_EQ(store.apply(a, first).status, WriteStatus::ok);
  Batch b;
  b.puts = {{"traffic-split", "40"}};
  EXPECT_EQ(store.apply(b, first).status, WriteStatus::precondition_failed);
  EXPECT_EQ(store.items().at("traffic-split"), "30");
}

TEST_F(StoreWrites, CurrentIfMatchIsAccepted) {
  Batch batch;
  batch.puts = {{"traffic-split", "60"}};
  const WriteResult r = store.apply(batch, store.etag());
  ASSERT_EQ(r.status, WriteStatus::ok) << r.message;
  EXPECT_EQ(store.items().at("traffic-split"), "60");
  EXPECT_EQ(r.etag, store.etag());
  EXPECT_NE(r.etag, etag_of(typical_store()));
}

TEST_F(StoreWrites, IfMatchStarIsAccepted) {
  Batch batch;
  batch.puts = {{"traffic-split", "61"}};
  ASSERT_EQ(store.apply(batch, std::string("*")).status, WriteStatus::ok);
  EXPECT_EQ(store.items().at("traffic-split"), "61");
}

TEST_F(StoreWrites, ListenersGetTheNewSnapshot) {
  std::vector<std::shared_ptr<const Snapshot>> second;
  store.subscribe([&](const std::shared_ptr<const Snapshot>& s) { second.push_back(s); });
  Batch batch;
  batch.puts = {{"traffic-split", "70"}};
  ASSERT_EQ(store.apply(batch).status, WriteStatus::ok);
  ASSERT_EQ(published.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(published[0], store.snapshot());
  EXPECT_EQ(second[0], store.snapshot());
  EXPECT_EQ(published[0]->split, 70);
  EXPECT_EQ(published[0]->etag, store.etag());
  EXPECT_EQ(published[0]->version, store.version());
}

TEST_F(StoreWrites, PersistFailureIsAnIoErrorAndChangesNothing) {
  const auto etag = store.etag();
  const auto version = store.version();
  log->fail_persist = true;
  Batch batch;
  batch.puts = {{"traffic-split", "80"}};
  const WriteResult r = store.apply(batch);
  EXPECT_EQ(r.status, WriteStatus::io_error);
  EXPECT_TRUE(contains(r.message, "disk full")) << r.message;
  EXPECT_EQ(r.etag, etag);
  expect_unchanged(etag, version);
}

TEST_F(StoreWrites, ReplaceWithPersistWritesTheBackendAndIsNotAReload) {
  KvMap next = typical_store();
  next["traffic-split"] = "90";
  const WriteResult r = store.replace(next, true);
  ASSERT_EQ(r.status, WriteStatus::ok) << r.message;
  ASSERT_EQ(log->persisted.size(), 1u);
  EXPECT_EQ(log->persisted[0], next);
  EXPECT_EQ(store.items(), next);
  EXPECT_EQ(published.size(), 1u);
  EXPECT_EQ(store.reload_successes(), 0u);
  EXPECT_EQ(store.reload_failures(), 0u);
}

TEST_F(StoreWrites, ReplaceWithoutPersistCountsReloads) {
  KvMap next = typical_store();
  next["traffic-split"] = "90";
  EXPECT_EQ(store.replace(next, false).status, WriteStatus::ok);
  EXPECT_TRUE(log->persisted.empty());  // it came from the backend: nothing to write back
  EXPECT_EQ(store.items(), next);
  EXPECT_EQ(published.size(), 1u);
  EXPECT_EQ(store.reload_successes(), 1u);
  EXPECT_EQ(store.reload_failures(), 0u);

  const auto etag = store.etag();
  const WriteResult bad = store.replace({{"traffic-split", "5"}}, false);
  EXPECT_EQ(bad.status, WriteStatus::invalid);
  EXPECT_EQ(bad.etag, etag);
  EXPECT_EQ(store.items(), next);
  EXPECT_EQ(store.etag(), etag);
  EXPECT_EQ(published.size(), 1u);
  EXPECT_EQ(store.reload_successes(), 1u);
  EXPECT_EQ(store.reload_failures(), 1u);

  store.count_reload_failure();
  EXPECT_EQ(store.reload_failures(), 2u);
}

TEST_F(StoreWrites, ReloadFromBackend) {
  KvMap next = typical_store();
  next["mode"] = "redirect";
  log->to_load = next;
  EXPECT_EQ(reload_from_backend(store).status, WriteStatus::ok);
  EXPECT_EQ(store.snapshot()->mode, Mode::redirect);
  EXPECT_EQ(store.reload_successes(), 1u);
  EXPECT_TRUE(log->persisted.empty());

  const auto etag = store.etag();
  log->fail_load = true;
  const WriteResult unreadable = reload_from_backend(store);
  EXPECT_EQ(unreadable.status, WriteStatus::invalid);
  EXPECT_TRUE(contains(unreadable.message, "unreadable")) << unreadable.message;
  EXPECT_EQ(store.reload_failures(), 1u);
  EXPECT_EQ(store.etag(), etag);

  log->fail_load = false;
  log->to_load.reset();  // the content disappeared
  EXPECT_EQ(reload_from_backend(store).status, WriteStatus::invalid);
  EXPECT_EQ(store.reload_failures(), 2u);
  EXPECT_EQ(store.items(), next);
  EXPECT_EQ(store.snapshot()->mode, Mode::redirect);
}

TEST_F(StoreWrites, RefusedWritesAreCounted) {
  EXPECT_EQ(store.rejected_writes(), 0u);
  Batch ok;
  ok.puts = {{"traffic-split", "1"}};
  ASSERT_EQ(store.apply(ok).status, WriteStatus::ok);
  EXPECT_EQ(store.rejected_writes(), 0u);
  Batch invalid;
  invalid.puts = {{"traffic-split", "101"}};
  ASSERT_EQ(store.apply(invalid).status, WriteStatus::invalid);
  EXPECT_EQ(store.rejected_writes(), 1u);
  ASSERT_EQ(store.apply(ok, std::string("\"stale\"")).status, WriteStatus::precondition_failed);
  EXPECT_EQ(store.rejected_writes(), 2u);
  // Reloads are counted apart.
  EXPECT_EQ(store.replace({{"traffic-split", "5"}}, false).status, WriteStatus::invalid);
  EXPECT_EQ(store.rejected_writes(), 2u);
}

TEST_F(StoreWrites, EveryPublishedVersionIsNewAndImmutable) {
  auto before = store.snapshot();
  Batch batch;
  batch.puts = {{"traffic-split", "33"}};
  ASSERT_EQ(store.apply(batch).status, WriteStatus::ok);
  // A request holding the old snapshot keeps seeing the old content.
  EXPECT_EQ(before->split, 25);
  EXPECT_NE(store.snapshot(), before);
  EXPECT_GT(store.snapshot()->version, before->version);
}

// ---- a refused write changes nothing (StoreCharacterRules: issue #18, finding 6) ----

TEST(StoreCharacterRules, ARefusedWriteChangesNothing) {
  auto log = std::make_shared<BackendLog>();
  Store store(std::make_unique<FakeBackend>(log),
              store_test::with(store_test::minimal_store(), "APIGW_B1_URL", "http://b1.example"));
  const auto before = store.items();
  const auto etag = store.etag();
  const auto snapshot = store.snapshot();
  Batch batch;
  batch.puts = {{"traffic-split", "50"}, {"route:/crlf", "B1 /v2\r\nX-Injected:yes\r\nX-Pad:"}};
  const WriteResult result = store.apply(batch);
  EXPECT_EQ(result.status, WriteStatus::invalid);
  EXPECT_TRUE(contains(result.message, "route:/crlf")) << result.message;
  store_test::expect_printable(result.message);
  EXPECT_EQ(store.items(), before);
  EXPECT_EQ(store.etag(), etag);
  EXPECT_EQ(store.snapshot(), snapshot);
  EXPECT_TRUE(log->persisted.empty());
}

}  // namespace
}  // namespace figshift
