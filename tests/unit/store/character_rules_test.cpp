// The characters the store accepts. Finding 6: CR, LF and NUL were accepted in
// route prefixes and replacements (`route:/crlf` = `B1 /v2\r\nX-Injected:yes\r\nX-Pad:`
// split the upstream's request line and added a header to redirects), and a
// terminal escape sequence stored in any value was printed raw by `figshift
// status`. Rules: no control character (C0, DEL, C1) in any key or value;
// route prefixes and replacement prefixes hold URL path characters only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "figshift/store/kv_map.hpp"
#include "figshift/store/snapshot_builder.hpp"
#include "figshift/store/store.hpp"
#include "store_test_support.hpp"

namespace figshift {
namespace {

using store_test::BackendLog;
using store_test::contains;
using store_test::FakeBackend;
using store_test::minimal_store;
using store_test::rejection;
using store_test::with;

std::vector<char> control_bytes() {
  std::vector<char> bytes;
  for (int b = 0x00; b <= 0x1F; ++b) bytes.push_back(static_cast<char>(b));
  bytes.push_back('\x7F');
  return bytes;
}

std::string escaped(char c) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto b = static_cast<unsigned char>(c);
  return std::string("\\x") + hex[b >> 4] + hex[b & 15];
}

// Refusals go into log lines, JSON error bodies and terminals: never a raw control byte.
void expect_printable(const std::string& message) {
  EXPECT_FALSE(message.empty());
  for (unsigned char c : message)
    EXPECT_TRUE(c >= 0x20 && c != 0x7F) << "byte " << int(c) << " in " << message;
  for (std::size_t i = 0; i + 1 < message.size(); ++i)  // nor a C1 control (C2 80..C2 9F)
    EXPECT_FALSE(message[i] == '\xC2' && static_cast<unsigned char>(message[i + 1]) <= 0x9F)
        << message;
  EXPECT_NO_THROW(((void)nlohmann::json{{"error", message}}.dump())) << message;
}

// A store with B1 defined, so that routes to B1 are otherwise valid.
KvMap with_b1() {
  return with(minimal_store(), "APIGW_B1_URL", "http://b1.example");
}

// ---- control characters, in every key and every value ---------------------

TEST(StoreCharacterRules, EveryControlByteIsRefusedInEveryKindOfValue) {
  for (const char c : control_bytes()) {
    const std::string b(1, c);
    // Each value is valid without the control byte.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"hash-salt", "spring" + b + "2024"},
        {"hash-salt", b},
        {"route:/orders", "B1 /v2" + b + "orders"},
        {"route:/orders", "B1" + b},
        {"APIGW_B2_URL", "http://b2.example/prod" + b},
        {"APIGW_B2_URL", "http://b2" + b + ".example"},
        {"traffic-split", "5" + b},
        {"traffic-ramp", R"({"from":0,"to":25,)" + b + R"("start_ms":1,"duration_ms":60000})"},
        {"legacy-upstream", "A" + b},
        {"mode", "proxy" + b},
    };
    for (const auto& [key, value] : cases) {
      const auto message = rejection(with(with_b1(), key, value));
      SCOPED_TRACE("byte " + escaped(c) + " in the value of " + key);
      EXPECT_TRUE(contains(message, key)) << message;
      expect_printable(message);
    }
  }
}

TEST(StoreCharacterRules, EveryControlByteIsRefusedInKeys) {
  for (const char c : control_bytes()) {
    const std::string b(1, c);
    for (const std::string key :
         {"route:/ord" + b + "ers", "route:/" + b, "hash-salt" + b, b + "mode"}) {
      const auto message = rejection(with(with_b1(), key, "B1"));
      SCOPED_TRACE("byte " + escaped(c) + " in key " + key);
      expect_printable(message);
      // The key is named, with the control byte escaped.
      std::string shown = key;
      shown.replace(shown.find(c), 1, escaped(c));
      EXPECT_TRUE(contains(message, shown)) << message;
    }
  }
}

TEST(StoreCharacterRules, ControlCharacterMessagesSayWhatIsWrong) {
  const auto salt = rejection(with(minimal_store(), "hash-salt", "\x1b[31mred"));
  EXPECT_TRUE(contains(salt, "hash-salt")) << salt;
  EXPECT_TRUE(contains(salt, "control character")) << salt;
  EXPECT_TRUE(contains(salt, "\\x1b")) << salt;
  expect_printable(salt);
  const auto key = rejection(with(minimal_store(), "route:/a\x1b[2J", "A"));
  EXPECT_TRUE(contains(key, "route:/a\\x1b[2J")) << key;
  EXPECT_TRUE(contains(key, "control character")) << key;
  expect_printable(key);
}

TEST(StoreCharacterRules, C1ControlCharactersAreRefusedToo) {
  // U+009B is CSI for terminals that honour C1 controls.
  for (const std::string c1 : {"\xC2\x80", "\xC2\x85", "\xC2\x9B", "\xC2\x9F"}) {
    const auto message = rejection(with(minimal_store(), "hash-salt", "a" + c1 + "b"));
    EXPECT_TRUE(contains(message, "hash-salt")) << message;
    EXPECT_TRUE(contains(message, "control character")) << message;
    expect_printable(message);
  }
  // U+00A0 (no-break space) is the first character after them, and is not a control.
  EXPECT_NO_THROW(build_snapshot(with(minimal_store(), "hash-salt",
                                      "a\xC2\xA0"
                                      "b")));
}

TEST(StoreCharacterRules, SaltsAndUrlsWithoutControlsStillWork) {
  EXPECT_EQ(
      build_snapshot(with(minimal_store(), "hash-salt", "spring 2024 \xC3\xA9 \"q\" \\"))->salt,
      "spring 2024 \xC3\xA9 \"q\" \\");
  auto s =
      build_snapshot(with(minimal_store(), "APIGW_B2_URL", "https://b2.example:8443/prod%20x"));
  ASSERT_NE(s->find("B2"), nullptr);
  EXPECT_EQ(s->find("B2")->base_path, "/prod%20x");
}

// ---- route prefixes and replacement prefixes ------------------------------

TEST(StoreCharacterRules, TheReportedCrlfRouteIsRefused) {
  const auto message =
      rejection(with(with_b1(), "route:/crlf", "B1 /v2\r\nX-Injected:yes\r\nX-Pad:"));
  EXPECT_TRUE(contains(message, "route:/crlf")) << message;
  EXPECT_TRUE(contains(message, "\\x0d")) << message;
  EXPECT_FALSE(contains(message, "\r")) << message;
  expect_printable(message);
}

TEST(StoreCharacterRules, CrLfNulAreRefusedInPrefixAndReplacement) {
  for (const std::string bad :
       {std::string("\r"), std::string("\n"), std::string(1, '\0'), std::string("\r\n")}) {
    SCOPED_TRACE(escaped(bad[0]));
    const std::string prefix_key = "route:/a" + bad + "b";
    const auto by_prefix = rejection(with(with_b1(), prefix_key, "B1 /v2"));
    EXPECT_TRUE(contains(by_prefix, "route:/a" + escaped(bad[0]))) << by_prefix;
    expect_printable(by_prefix);
    for (const std::string value : {"B1 /v2" + bad, "B1 /v2" + bad + "x", "B1 /" + bad}) {
      const auto by_value = rejection(with(with_b1(), "route:/orders", value));
      EXPECT_TRUE(contains(by_value, "route:/orders")) << by_value;
      EXPECT_TRUE(contains(by_value, escaped(bad[0]))) << by_value;
      expect_printable(by_value);
    }
  }
}

TEST(StoreCharacterRules, CharactersOutsideAUrlPathAreRefused) {
  // Not pchar, not '/': space, the RFC 3986 "unwise" characters, '?' and '#'.
  for (const char c : std::string(" \"<>\\^`{|}[]?#")) {
    const std::string ch(1, c);
    SCOPED_TRACE(std::string("character '") + c + "'");
    const std::string prefix_key = "route:/a" + ch + "b";
    const auto by_prefix = rejection(with(with_b1(), prefix_key, "B1"));
    EXPECT_TRUE(contains(by_prefix, prefix_key)) << by_prefix;
    const auto by_value = rejection(with(with_b1(), "route:/orders", "B1 /v2" + ch + "x"));
    EXPECT_TRUE(contains(by_value, "route:/orders")) << by_value;
  }
}

TEST(StoreCharacterRules, PrefixAndReplacementMessagesSayWhichAndWhy) {
  const auto prefix = rejection(with(with_b1(), "route:/a<b", "B1"));
  EXPECT_TRUE(contains(prefix, "prefix")) << prefix;
  EXPECT_TRUE(contains(prefix, "URL path character")) << prefix;
  const auto replacement = rejection(with(with_b1(), "route:/orders", "B1 /v2<x"));
  EXPECT_TRUE(contains(replacement, "replacement")) << replacement;
  EXPECT_TRUE(contains(replacement, "\"/v2<x\"")) << replacement;
  EXPECT_TRUE(contains(replacement, "URL path character")) << replacement;
}

TEST(StoreCharacterRules, MalformedPercentEscapesAreRefused) {
  for (const std::string path :
       {"/a%", "/a%2", "/a%zz", "/a%2G", "/a%G2", "/%%", "/a%2/b", "/a% 2"}) {
    SCOPED_TRACE(path);
    const auto by_prefix = rejection(with(with_b1(), "route:" + path, "B1"));
    EXPECT_TRUE(contains(by_prefix, "route:" + path)) << by_prefix;
    if (path.find(' ') == std::string::npos) EXPECT_TRUE(contains(by_prefix, "%HH")) << by_prefix;
    const auto by_value = rejection(with(with_b1(), "route:/orders", "B1 " + path));
    EXPECT_TRUE(contains(by_value, "route:/orders")) << by_value;
  }
}

TEST(StoreCharacterRules, EveryUrlPathCharacterIsAccepted) {
  // unreserved, sub-delims, ':' '@' '/', and %HH escapes in either case.
  const std::string prefix = "/AZaz09-._~/!$&'()*+,;=/:@/%2F%2f%E2%82%AC/x";
  const std::string replacement = "/v2/%2Fa/~user/x;v=1,2/(c)*+$&'!:@/%20";
  auto s = build_snapshot(with(with_b1(), "route:" + prefix, "B1 " + replacement));
  ASSERT_EQ(s->routes.routes().size(), 1u);
  EXPECT_EQ(s->routes.routes()[0].prefix, prefix);
  EXPECT_EQ(s->routes.routes()[0].replacement, std::optional<std::string>(replacement));
  EXPECT_NO_THROW(build_snapshot(with(with_b1(), "route:/", "B1 /")));
}

TEST(StoreCharacterRules, NonAsciiPathCharactersAreAccepted) {
  // IRI paths (RFC 3987): UTF-8 beyond ASCII that is not a control character.
  auto s = build_snapshot(with(with_b1(),
                               "route:/\xC3\xBC"
                               "ber/x~y",
                               "B1 /caf\xC3\xA9"));
  ASSERT_EQ(s->routes.routes().size(), 1u);
  EXPECT_EQ(s->routes.routes()[0].prefix,
            "/\xC3\xBC"
            "ber/x~y");
}

TEST(StoreCharacterRules, PrefixesMustStillStartWithASlash) {
  for (const std::string value : {"B1 v2", "B1 %2Fv2", "B1 ~/v2"}) {
    const auto message = rejection(with(with_b1(), "route:/orders", value));
    EXPECT_TRUE(contains(message, "route:/orders")) << message;
    EXPECT_TRUE(contains(message, "'/'")) << message;
  }
  const auto message = rejection(with(with_b1(), "route:%2Forders", "B1"));
  EXPECT_TRUE(contains(message, "'/'")) << message;
}

// ---- a refused write changes nothing ---------------------------------------

TEST(StoreCharacterRules, ARefusedWriteChangesNothing) {
  auto log = std::make_shared<BackendLog>();
  Store store(std::make_unique<FakeBackend>(log), with_b1());
  const auto before = store.items();
  const auto etag = store.etag();
  const auto snapshot = store.snapshot();
  Batch batch;
  batch.puts = {{"traffic-split", "50"}, {"route:/crlf", "B1 /v2\r\nX-Injected:yes\r\nX-Pad:"}};
  const WriteResult result = store.apply(batch);
  EXPECT_EQ(result.status, WriteStatus::invalid);
  EXPECT_TRUE(contains(result.message, "route:/crlf")) << result.message;
  expect_printable(result.message);
  EXPECT_EQ(store.items(), before);
  EXPECT_EQ(store.etag(), etag);
  EXPECT_EQ(store.snapshot(), snapshot);
  EXPECT_TRUE(log->persisted.empty());
}

}  // namespace
}  // namespace figshift
