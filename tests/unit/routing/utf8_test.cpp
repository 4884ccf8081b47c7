#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {
namespace {

// Expected outputs are those of the WHATWG decoder (Node's
// Buffer.toString('utf8'), TextDecoder) and of Unicode §3.9 "U+FFFD
// substitution of maximal subparts".
constexpr char16_t r = 0xFFFD;

std::u16string fffd(std::size_t n) {
  return std::u16string(n, r);
}

TEST(RoutingUtf8ToUtf16, ValidText) {
  EXPECT_EQ(utf8_to_utf16(""), u"");
  EXPECT_EQ(utf8_to_utf16("hello"), u"hello");
  EXPECT_EQ(utf8_to_utf16("Zo\xC3\xAB"), u"Zo\u00EB");
  EXPECT_EQ(utf8_to_utf16("\xE2\x82\xAC"), u"\u20AC");
  EXPECT_EQ(utf8_to_utf16("\xF0\x9F\x98\x80"), u"\xD83D\xDE00");
  EXPECT_EQ(utf8_to_utf16(std::string_view("a\0b", 3)), std::u16string(u"a\0b", 3));
  EXPECT_EQ(utf8_to_utf16("\xEF\xBF\xBD"), u"\uFFFD");
}

TEST(RoutingUtf8ToUtf16, Boundaries) {
  EXPECT_EQ(utf8_to_utf16("\x7F"), u"\u007F");
  EXPECT_EQ(utf8_to_utf16("\xC2\x80"), u"\u0080");
  EXPECT_EQ(utf8_to_utf16("\xDF\xBF"), u"\u07FF");
  EXPECT_EQ(utf8_to_utf16("\xE0\xA0\x80"), u"\u0800");
  EXPECT_EQ(utf8_to_utf16("\xED\x9F\xBF"), u"\uD7FF");
  EXPECT_EQ(utf8_to_utf16("\xEE\x80\x80"), u"\uE000");
  EXPECT_EQ(utf8_to_utf16("\xEF\xBF\xBF"), u"\uFFFF");
  EXPECT_EQ(utf8_to_utf16("\xF0\x90\x80\x80"), u"\xD800\xDC00");
  EXPECT_EQ(utf8_to_utf16("\xF4\x8F\xBF\xBF"), u"\xDBFF\xDFFF");
}

TEST(RoutingUtf8ToUtf16, Overlong) {
  EXPECT_EQ(utf8_to_utf16("\xC0\x80"), fffd(2));
  EXPECT_EQ(utf8_to_utf16("\xC1\xBF"), fffd(2));
  EXPECT_EQ(utf8_to_utf16("\xC0\xAF"), fffd(2));
  EXPECT_EQ(utf8_to_utf16("\xE0\x80\xAF"), fffd(3));
  EXPECT_EQ(utf8_to_utf16("\xE0\x9F\xBF"), fffd(3));
  EXPECT_EQ(utf8_to_utf16("\xF0\x80\x80\xAF"), fffd(4));
  EXPECT_EQ(utf8_to_utf16("\xF0\x8F\xBF\xBF"), fffd(4));
}

TEST(RoutingUtf8ToUtf16, EncodedSurrogates) {
  EXPECT_EQ(utf8_to_utf16("\xED\xA0\x80"), fffd(3));
  EXPECT_EQ(utf8_to_utf16("\xED\xBF\xBF"), fffd(3));
  // A CESU-8 style pair: six errors, not one character.
  EXPECT_EQ(utf8_to_utf16("\xED\xA0\xBD\xED\xB8\x80"), fffd(6));
}

TEST(RoutingUtf8ToUtf16, AboveMaxCodePoint) {
  EXPECT_EQ(utf8_to_utf16("\xF4\x90"), fffd(2));
  EXPECT_EQ(utf8_to_utf16("\xF4\x90\x80\x80"), fffd(4));
  EXPECT_EQ(utf8_to_utf16("\xF5\x80\x80\x80"), fffd(4));
  EXPECT_EQ(utf8_to_utf16("\xF8\x88\x80\x80\x80"), fffd(5));
  EXPECT_EQ(utf8_to_utf16("\xFE\xFF"), fffd(2));
}

TEST(RoutingUtf8ToUtf16, TruncatedAtEnd) {
  // A truncated but otherwise valid prefix is one maximal subpart: one U+FFFD.
  EXPECT_EQ(utf8_to_utf16("\xC3"), fffd(1));
  EXPECT_EQ(utf8_to_utf16("a\xE2\x82"), u"a\uFFFD");
  EXPECT_EQ(utf8_to_utf16("\xE2"), fffd(1));
  EXPECT_EQ(utf8_to_utf16("\xF0\x9F\x98"), fffd(1));
  EXPECT_EQ(utf8_to_utf16("\xF0\x9F"), fffd(1));
  EXPECT_EQ(utf8_to_utf16("\xF0"), fffd(1));
}

TEST(RoutingUtf8ToUtf16, TruncatedInTheMiddle) {
  // The byte that breaks a sequence is not swallowed: it is decoded afresh.
  EXPECT_EQ(utf8_to_utf16("\xE2\x82x"), u"\uFFFDx");
  EXPECT_EQ(utf8_to_utf16("\xC3Zo\xC3\xAB"), u"\uFFFDZo\u00EB");
  EXPECT_EQ(utf8_to_utf16("\xF0\x9F\xC3\xAB"), u"\uFFFD\u00EB");
  EXPECT_EQ(utf8_to_utf16("\xE2\xF0\x9F\x98\x80"), u"\uFFFD\xD83D\xDE00");
}

TEST(RoutingUtf8ToUtf16, LoneContinuationBytes) {
  EXPECT_EQ(utf8_to_utf16("\x80"), fffd(1));
  EXPECT_EQ(utf8_to_utf16("\x80\xBF"), fffd(2));
  EXPECT_EQ(utf8_to_utf16("a\xBF"
                          "b"),
            u"a\uFFFDb");
  EXPECT_EQ(utf8_to_utf16("\xC3\xAB\xAB"), u"\u00EB\uFFFD");
}

TEST(RoutingUtf8ToUtf16, UnicodeTable3_8Example) {
  // Unicode 15 §3.9, Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(utf8_to_utf16("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            u"a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd");
}

}  // namespace
}  // namespace figshift
