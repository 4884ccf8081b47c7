// Regression (found by fuzz_store, input tests/fuzz/crashes/fuzz_store/):
// refusal messages quote the offending key or value as sent. A key starting
// with NUL made what() empty (the refusal had no reason), a control byte went
// raw into the log line, and bytes that are not UTF-8 (an invalid key, or a
// long key cut at 64 bytes in the middle of a character) made the admin API's
// JSON error body throw instead of answering 400.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "store_test_support.hpp"

namespace figshift::store_test {
namespace {

std::string refusal(const KvMap& kv) {
  try {
    build_snapshot(kv);
  } catch (const InvalidStore& e) {
    return e.what();
  }
  ADD_FAILURE() << "the store was accepted";
  return {};
}

void expect_printable_utf8(const std::string& message) {
  EXPECT_FALSE(message.empty());
  for (unsigned char c : message) EXPECT_TRUE(c >= 0x20 && c != 0x7F) << "byte " << int(c);
  // What the admin API does with it: must not throw on invalid UTF-8.
  EXPECT_NO_THROW(((void)nlohmann::json{{"error", message}}.dump())) << message;
}

TEST(RegressionInvalidStoreMessage, KeyStartingWithNulStillHasAReason) {
  const std::string key("\0route", 6);
  const std::string message = refusal(with(minimal_store(), key, std::string(2000, 'x')));
  expect_printable_utf8(message);
  EXPECT_TRUE(contains(message, "\\x00route")) << message;
  EXPECT_TRUE(contains(message, "values must be at most")) << message;
}

TEST(RegressionInvalidStoreMessage, ControlBytesAreEscaped) {
  const std::string message = refusal(with(minimal_store(), "traffic-split", "5\n0"));
  expect_printable_utf8(message);
  EXPECT_TRUE(contains(message, "5\\x0a0")) << message;
}

TEST(RegressionInvalidStoreMessage, LongNonAsciiKeyCutMidCharacterIsValidUtf8) {
  // 1 + 2*300 bytes: the 64-byte cut falls inside a two-byte character.
  std::string key = "a";
  for (int i = 0; i < 300; ++i) key += "\xC3\xA9";
  const std::string message = refusal(with(minimal_store(), key, "v"));
  expect_printable_utf8(message);
  EXPECT_TRUE(contains(message, "keys must be 1 to")) << message;
}

TEST(RegressionInvalidStoreMessage, InvalidUtf8KeyWithTooLongValue) {
  const std::string message =
      refusal(with(minimal_store(), "route:/\xFF\xFE", std::string(2000, 'x')));
  expect_printable_utf8(message);
  EXPECT_TRUE(contains(message, "route:/\\xff\\xfe")) << message;
}

TEST(RegressionInvalidStoreMessage, ValidUtf8IsKeptAsIs) {
  const std::string message = refusal(with(minimal_store(), "traffic-split", "zo\xC3\xAB"));
  EXPECT_TRUE(contains(message, "zo\xC3\xAB")) << message;
}

}  // namespace
}  // namespace figshift::store_test
