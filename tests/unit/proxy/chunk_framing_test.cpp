// frame_chunk(): the chunked coding the body pump writes (RFC 9112 §7.1).
#include "proxy/chunk_framing.hpp"

#include <gtest/gtest.h>

#include <string>

namespace figshift::proxy {
namespace {

std::string wire(std::string_view data, bool last) {
  char line[20];
  const auto frame = frame_chunk(data, last, line);
  std::string out;
  for (std::size_t i = 0; i < frame.count; ++i) out += frame.parts[i];
  return out;
}

TEST(ChunkFraming, OnePieceIsOneChunk) {
  EXPECT_EQ(wire("hello", false), "5\r\nhello\r\n");
  EXPECT_EQ(wire(std::string(255, 'x'), false), "ff\r\n" + std::string(255, 'x') + "\r\n");
  EXPECT_EQ(wire(std::string(65536, 'y'), false), "10000\r\n" + std::string(65536, 'y') + "\r\n");
}

TEST(ChunkFraming, TheLastPieceCarriesTheLastChunk) {
  EXPECT_EQ(wire("ab", true), "2\r\nab\r\n0\r\n\r\n");
  EXPECT_EQ(wire("", true), "0\r\n\r\n");
}

TEST(ChunkFraming, AnEmptyPieceIsNothing) {
  // A zero-size chunk would end the body: an empty read must write nothing.
  EXPECT_EQ(wire("", false), "");
}

}  // namespace
}  // namespace figshift::proxy
