#include <algorithm>
#include <string>
#include <string_view>

#include "figshift/routing.hpp"

namespace figshift {

// Exactly one '/' where the parts meet: the base path of an upstream and the
// request path are written by different people, and "/prod" + "/x",
// "/prod/" + "/x" and "/prod" + "x" must all reach "/prod/x".
std::string join_path(std::string_view base, std::string_view path) {
  if (base.empty()) return std::string(path);
  if (path.empty()) return std::string(base);
  const bool base_slash = base.ends_with('/');
  const bool path_slash = path.starts_with('/');
  std::string out(base);
  if (base_slash && path_slash) {
    path.remove_prefix(1);
  } else if (!base_slash && !path_slash) {
    out += '/';
  }
  out += path;
  return out;
}

}  // namespace figshift

namespace figshift {
namespace {

bool starts_with_ignoring_case(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    const char c = s[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != lower_prefix[i])
      return false;
  }
  return true;
}

// "%2e" (any case) at `at`: an encoded '.'.
bool encoded_dot_at(std::string_view s, std::size_t at) {
  return s.size() >= at + 3 && s[at] == '%' && s[at + 1] == '2' && (s[at + 2] | 0x20) == 'e';
}

// A segment (without its '/') that is "." or ".." followed by ';' parameters,
// with '.' possibly spelled %2E and ';' %3B.
bool dot_segment_with_parameters(std::string_view segment) {
  std::size_t i = 0;
  int dots = 0;
  while (dots < 2) {
    if (i < segment.size() && segment[i] == '.') {
      i += 1;
    } else if (encoded_dot_at(segment, i)) {
      i += 3;
    } else {
      break;
    }
    ++dots;
  }
  if (dots == 0) return false;
  return (i < segment.size() && segment[i] == ';') || starts_with_ignoring_case(segment.substr(i), "%3b");
}

}  // namespace

PathAndQuery split_target(std::string_view target) {
  if (starts_with_ignoring_case(target, "http://") ||
      starts_with_ignoring_case(target, "https://")) {
    target.remove_prefix(target.find("://") + 3);
    const std::size_t path_start = target.find_first_of("/?");
    target = path_start == std::string_view::npos ? std::string_view{} : target.substr(path_start);
  }
  PathAndQuery out;
  const std::size_t q = target.find('?');
  out.path = target.substr(0, q);
  if (q != std::string_view::npos) out.query = target.substr(q + 1);
  if (out.path.empty()) out.path = "/";
  return out;
}

std::string_view path_problem(std::string_view path) {
  // Nearly every path has none of these: one scan decides (a plain loop:
  // find_first_of calls memchr once per character).
  if (std::none_of(path.begin(), path.end(), [](char c) { return c == '%' || c == '\\' || c == ';'; }))
    return {};
  if (path.find('\\') != std::string_view::npos) return "backslash in the request path";
  for (std::size_t i = path.find('%'); i != std::string_view::npos; i = path.find('%', i + 1)) {
    const std::string_view escape = path.substr(i, 3);
    if (starts_with_ignoring_case(escape, "%2f")) return "encoded slash (%2F) in the request path";
    if (starts_with_ignoring_case(escape, "%5c")) return "encoded backslash (%5C) in the request path";
    if (escape == "%00") return "encoded NUL (%00) in the request path";
    if (escape == "%25") {
      const std::string_view twice = path.substr(i + 3, 2);
      if (starts_with_ignoring_case(twice, "2e") || starts_with_ignoring_case(twice, "2f") ||
          starts_with_ignoring_case(twice, "5c") || twice == "00")
        return "doubly encoded '.', '/', '\\' or NUL in the request path";
    }
  }
  for (std::size_t start = 0; start < path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (dot_segment_with_parameters(path.substr(start, end - start)))
      return "dot segment with parameters (\"..;\") in the request path";
    start = end + 1;
  }
  return {};
}

std::string normalize_path(std::string_view path) {
  // "%2e" is an encoded '.', and upstreams may decode it: treat it as one so
  // that "/orders/%2e%2e/admin" cannot climb out of a rewritten prefix either.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && path[i + 1] == '2' && (path[i + 2] == 'e' || path[i + 2] == 'E')) {
      decoded += '.';
      i += 2;
    } else {
      decoded += path[i];
    }
  }
  // RFC 3986 §5.2.4 remove_dot_segments, over whole segments.
  std::string out;
  out.reserve(decoded.size());
  std::size_t i = 0;
  while (i < decoded.size()) {
    const std::size_t end = decoded.find('/', i + 1);
    const std::string_view segment =
        std::string_view(decoded).substr(i, end == std::string::npos ? std::string::npos : end - i);
    // segment includes its leading '/', e.g. "/..", "/.", "/x"
    if (segment == "/." || segment == "/..") {
      if (segment == "/.." && !out.empty()) out.erase(out.rfind('/'));
      if (end == std::string::npos) out += '/';  // "/a/.." and "/a/." end on a directory
    } else {
      out += segment;
    }
    if (end == std::string::npos) break;
    i = end;
  }
  return out.empty() ? std::string("/") : out;
}

}  // namespace figshift
