#pragma once
// The chunked transfer coding as the body pump writes it (RFC 9112 §7.1): each
// piece it read becomes one chunk; the body's end is the last chunk, with no
// extensions and no trailers (those of the source are not passed on). Pure;
// the pump and the chunked re-framing fuzz target call the same function.
// Thread-safety: none needed.

#include <array>
#include <charconv>
#include <cstddef>
#include <string_view>

namespace figshift::proxy {

// What goes on the wire for one piece of a body: up to three parts, in order.
struct ChunkFrame {
  std::array<std::string_view, 3> parts;
  std::size_t count = 0;
};

// `data` as one chunk (none when empty), followed by the last chunk when
// `last`; `size_line` holds the chunk's size line and must outlive the frame.
inline ChunkFrame frame_chunk(std::string_view data, bool last, char (&size_line)[20]) {
  static constexpr std::string_view crlf = "\r\n";
  static constexpr std::string_view crlf_last_chunk = "\r\n0\r\n\r\n";
  static constexpr std::string_view last_chunk = "0\r\n\r\n";
  ChunkFrame frame;
  if (data.empty()) {
    if (last) frame.parts[frame.count++] = last_chunk;
    return frame;
  }
  char* end = std::to_chars(size_line, size_line + 16, data.size(), 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  frame.parts[frame.count++] = std::string_view(size_line, end - size_line);
  frame.parts[frame.count++] = data;
  frame.parts[frame.count++] = last ? crlf_last_chunk : crlf;
  return frame;
}

}  // namespace figshift::proxy
