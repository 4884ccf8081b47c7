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
