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
