// A chunked request body through the proxy's streaming path, as the body pump
// runs it: Beast's parser (converted after the head, as the session converts
// it) decodes the client's chunks into a small buffer, read after read, and
// each decoded piece is re-framed by frame_chunk(). Invariants:
//  - no crash, no sanitizer report;
//  - when the client's body is complete and valid (Beast's own string-body
//    parser, fed the same bytes in one go, is the reference), what we send
//    parses back as exactly one chunked body with the same bytes, and nothing
//    follows it;
//  - when it is not (malformed, cut short, past the limit), what we send is
//    never a complete body: no last chunk ever goes out.
//
// Input: byte 0 picks the pump's buffer size (1 to 256 bytes, to cross every
// boundary), byte 1 the size of each read (1 to 256 bytes); the rest is the
// body's bytes as the client sent them.

#include <spdlog/spdlog.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "proxy/chunk_framing.hpp"
#include "proxy/exchange.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using figshift::fuzz::as_view;

constexpr std::string_view head =
    "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::uint64_t body_limit = 64 * 1024;

// Feeds `bytes` to a string-body parser in one go; the body when complete.
bool reference_decode(std::string_view bytes, std::string& body) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  beast::error_code ec;
  std::size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    const auto n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == http::error::need_more && n > 0) {
      ec = {};
      continue;
    }
    if (ec) return false;
  }
  if (!parser.is_done()) return false;
  body = parser.get().body();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t capacity = data[0] % 256 + 1;
  const std::size_t read_size = data[1] % 256 + 1;
  const std::string_view body_bytes = as_view(data + 2, size - 2);

  // The head is read first, then the parser converted: as the session does.
  static figshift::proxy::Exchange exchange;
  exchange.reset();
  auto& head_parser = exchange.start_request();
  beast::error_code ec;
  head_parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  FUZZ_CHECK(!ec && head_parser.is_header_done());
  auto& parser = exchange.stream_request_body();
  parser.body_limit(body_limit);

  // The pump's loop: read into the flat buffer, decode into its buffer, frame.
  std::vector<char> pump_buffer(capacity);
  beast::flat_buffer received;
  std::string sent;
  std::size_t fed = 0;
  bool failed = false;
  auto read_more = [&] {  // one read's worth of what the client sent, if any is left
    if (fed == body_bytes.size()) return false;
    const auto n = std::min(read_size, body_bytes.size() - fed);
    boost::asio::buffer_copy(received.prepare(n), boost::asio::buffer(body_bytes.data() + fed, n));
    received.commit(n);
    fed += n;
    return true;
  };
  while (!parser.is_done()) {
    if (received.size() == 0 && !read_more()) break;  // the client stopped sending
    auto& body = parser.get().body();
    body.data = pump_buffer.data();
    body.size = capacity;
    body.more = true;
    const auto used = parser.put(received.data(), ec);
    received.consume(used);
    if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
    if (ec) {
      failed = true;
      break;
    }
    const std::size_t n = capacity - parser.get().body().size;
    char size_line[20];
    const auto frame = figshift::proxy::frame_chunk(std::string_view(pump_buffer.data(), n),
                                                    parser.is_done(), size_line);
    for (std::size_t i = 0; i < frame.count; ++i) sent += frame.parts[i];
    // Beast keeps a partial chunk line in the buffer until more arrives.
    if (used == 0 && n == 0 && !parser.is_done() && !read_more()) break;
  }

  std::string expected;
  const bool complete = reference_decode(std::string(head) + std::string(body_bytes), expected);
  std::string decoded;
  const bool sent_complete = reference_decode(std::string(head) + sent, decoded);
  if (complete && parser.is_done()) {
    FUZZ_CHECK(sent_complete);
    FUZZ_CHECK(decoded == expected);
    // Exactly one body: its last chunk is the end of what was sent.
    FUZZ_CHECK(sent.size() >= 5 && sent.compare(sent.size() - 5, 5, "0\r\n\r\n") == 0);
  } else {
    // Invalid, cut short or past the limit: never passed off as a complete body.
    FUZZ_CHECK(!sent_complete);
  }
  // Beast and the reference agree on what is a complete body.
  if (!failed && parser.is_done()) FUZZ_CHECK(complete);
  return 0;
}
