// RouteTable::match against a brute-force oracle: random prefixes, random
// paths; the match must be a segment-boundary prefix of the path and the
// longest one, and no match means no prefix matches at all.
//
// Input: lines. The first byte picks the alphabet (raw bytes, or '/', 'a', 'b'
// so that prefixes and paths collide often); line 1 is the number of routes,
// the next lines are the prefixes, the rest are paths.

#include <cstdint>
#include <string>
#include <vector>

#include "figshift/routing.hpp"
#include "fuzz_support.hpp"

namespace {

using figshift::fuzz::as_view;
using figshift::fuzz::split;

// Written from the definition (docs/design.md §1 step 4), not from the implementation:
// the path is the prefix, or continues it with a new segment, or the prefix
// itself ends a segment.
bool oracle_matches(const std::string& prefix, const std::string& path) {
  if (path == prefix) return true;
  if (path.compare(0, prefix.size() + 1, prefix + "/") == 0 && path.size() > prefix.size())
    return true;
  return !prefix.empty() && prefix.back() == '/' && path.size() >= prefix.size() &&
         path.substr(0, prefix.size()) == prefix;
}

std::string translate(std::string_view piece, bool small_alphabet) {
  std::string out(piece);
  if (small_alphabet)
    for (char& c : out) c = "/ab"[static_cast<unsigned char>(c) % 3];
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool small_alphabet = (data[0] & 1) != 0;
  const auto lines = split(as_view(data + 1, size - 1), '\n');
  const std::size_t route_count = lines[0].empty() ? 0 : static_cast<unsigned char>(lines[0][0]) % 16;

  std::vector<figshift::Route> routes;
  std::vector<std::string> paths;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string text = translate(lines[i], small_alphabet);
    if (routes.size() < route_count) {
      routes.push_back(figshift::Route{text, routes.size(), std::nullopt});
    } else {
      paths.push_back(std::move(text));
    }
  }
  const std::vector<figshift::Route> given = routes;
  const figshift::RouteTable table(std::move(routes));
  FUZZ_CHECK(table.routes().size() == given.size());

  // Every prefix matches itself, so each route's own prefix is a useful path too.
  for (const auto& route : given) paths.push_back(route.prefix);

  for (const std::string& path : paths) {
    const figshift::Route* got = table.match(path);
    const figshift::Route* best = nullptr;
    for (const auto& route : given)
      if (oracle_matches(route.prefix, path) && (!best || route.prefix.size() > best->prefix.size()))
        best = &route;
    if (!best) {
      FUZZ_CHECK(got == nullptr);
      continue;
    }
    FUZZ_CHECK(got != nullptr);
    FUZZ_CHECK(got >= table.routes().data() && got < table.routes().data() + table.routes().size());
    FUZZ_CHECK(oracle_matches(got->prefix, path));
    FUZZ_CHECK(got->prefix == best->prefix);  // the longest; equal length and both match -> equal
    // The table keeps each route's data together.
    FUZZ_CHECK(given[got->upstream].prefix == got->prefix);
  }
  return 0;
}
